/**
 * Worker accounts through NSS: `getent passwd` and `getent group`, so users
 * and groups from LDAP or sssd resolve exactly as they do for login. The
 * config check resolves them once into numeric ids (WorkerAccount) that the
 * spec carries to every spawn, so start and spawn never disagree.
 */
import { execFile } from 'node:child_process';

/** How to get setpriv (which switches a worker to its account), named in messages. */
export const INSTALL_SETPRIV =
  "install util-linux's setpriv (Debian/Ubuntu/Fedora: util-linux; Alpine: apk add setpriv; NixOS: util-linux)";

/** One NSS lookup: the entry line, or null when the database has no such key. */
export type Getent = (database: 'passwd' | 'group', key: string) => Promise<string | null>;

/** getent itself could not be run (distroless images ship none). */
export class GetentUnavailable extends Error {
  constructor(reason: string) {
    super(
      `cannot look up accounts: getent could not be run (${reason}); ` +
        'install it (Debian/Ubuntu: libc-bin, Alpine: musl-utils) or use numeric ids for user and group',
    );
    this.name = 'GetentUnavailable';
  }
}

/** Runs `getent DATABASE KEY` (exit 2: no such key). */
export const systemGetent: Getent = (database, key) =>
  new Promise((done, fail) => {
    execFile('getent', [database, key], { timeout: 5000 }, (error, stdout) => {
      if (!error) return done(stdout.split('\n')[0] ?? null);
      const code = (error as NodeJS.ErrnoException).code;
      if (typeof code === 'string') return fail(new GetentUnavailable(code));
      if (code === 2) return done(null);
      fail(new GetentUnavailable(error.killed ? 'it timed out' : `exit ${String(code)}: ${error.message.trim()}`));
    });
  });

export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
}

/** A user by name or numeric uid, or null when NSS has no entry. */
export async function lookupUser(nameOrUid: string, getent: Getent = systemGetent): Promise<UserEntry | null> {
  const line = await getent('passwd', nameOrUid);
  if (line === null || line === '') return null;
  const [name = '', , uid = '', gid = '', , home = ''] = line.split(':');
  return { name, uid: Number(uid), gid: Number(gid), home };
}

/** A group by name or numeric gid, or null when NSS has no entry. */
export async function lookupGroup(nameOrGid: string, getent: Getent = systemGetent): Promise<GroupEntry | null> {
  const line = await getent('group', nameOrGid);
  if (line === null || line === '') return null;
  const [name = '', , gid = ''] = line.split(':');
  return { name, gid: Number(gid) };
}

/** A Getent over account files in passwd/group format, for tests and tools. */
export function getentFromText(passwd: string, group: string): Getent {
  return async (database, key) => {
    const byId = /^\d+$/.test(key);
    for (const line of (database === 'passwd' ? passwd : group).split('\n')) {
      const f = line.split(':');
      if (f.length < 3 || line.startsWith('#')) continue;
      if (byId ? f[2] === key : f[0] === key) return line;
    }
    return null;
  };
}
