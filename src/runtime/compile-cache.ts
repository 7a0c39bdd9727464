/**
 * The per-group folder behind workers' NODE_COMPILE_CACHE (Node 22.1+ keeps
 * the compiled code of the modules it loads there, so the next worker of the
 * group starts with less CPU; older Nodes ignore the variable).
 *
 * Where: `$CACHE_DIRECTORY/compile-cache/GROUP` when systemd's CacheDirectory=
 * is set (the unit sets CacheDirectory=smoothd: /var/cache/smoothd), else
 * `compile-cache/GROUP` next to the control socket. smoothd creates the
 * folders; a group with `user:`/`group:` gets its folder owned by that account
 * (mode 0700), since the worker's Node writes into it (a group whose account
 * changed gets its folder handed over). A folder that is a symlink or not a
 * folder, a root folder smoothd does not own, or one the worker's account
 * cannot enter is never used: the worker then runs without a cache and
 * smoothd says why once per group.
 *
 * A folder is prepared once (`CompileCacheFolders`); each later spawn of the
 * group checks it with one `lstat` (still a folder, not a symlink, still the
 * worker's) and prepares it again only when that fails (deleted, replaced) or
 * the group's account changed.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { WorkerAccount } from '../config/types.js';

/** The folder under which each group's cache folder lives, or null when smoothd has none to offer. */
export function compileCacheRoot(env: NodeJS.ProcessEnv, socketDir: string | undefined): string | null {
  // systemd passes several folders separated by ':' when CacheDirectory= names several.
  const fromSystemd = env.CACHE_DIRECTORY?.split(':').find((d) => path.isAbsolute(d));
  if (fromSystemd) return path.join(fromSystemd, 'compile-cache');
  return socketDir ? path.join(socketDir, 'compile-cache') : null;
}

/**
 * Creates (or checks) ROOT/GROUP for a worker running as `account` (null: as
 * smoothd itself) and returns its path, or an Error saying why it cannot be used.
 */
export function prepareCompileCache(root: string, group: string, account: WorkerAccount | null | undefined): string | Error {
  const ownUid = process.getuid?.() ?? 0;
  const ownGid = process.getgid?.() ?? 0;
  const uid = account?.uid ?? ownUid;
  const gid = account ? account.gid : ownGid;
  const dir = path.join(root, group);
  try {
    fs.mkdirSync(root, { recursive: true, mode: 0o755 });
    const r = fs.lstatSync(root);
    if (r.isSymbolicLink() || !r.isDirectory()) return new Error(`${root} is not a folder (a symlink or a file): not used`);
    if (r.uid !== ownUid) return new Error(`${root} belongs to uid ${r.uid}, not to smoothd's uid ${ownUid}: not used`);
    if (uid !== ownUid) {
      const closed = closedFolder(root, uid);
      if (closed) return new Error(`${closed.dir} (mode ${closed.mode.toString(8)}) cannot be entered by the worker's uid ${uid}: not used`);
    }
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
      if (uid !== ownUid || gid !== ownGid) fs.chownSync(dir, uid, gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const d = fs.lstatSync(dir);
    if (d.isSymbolicLink() || !d.isDirectory()) return new Error(`${dir} is not a folder (a symlink or a file): not used`);
    if (d.uid !== uid) {
      // The group's user: changed since the folder was made: hand it over (only root can).
      if (ownUid !== 0) return new Error(`${dir} belongs to uid ${d.uid}, not to the worker's uid ${uid}: not used`);
      fs.chownSync(dir, uid, gid);
    }
    return dir;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return new Error(`cannot prepare ${dir}: ${e.message}`);
  }
}

/** What a spawn checks of a folder prepared before: the same account asked, and the folder is still a real folder of the worker's uid. */
interface Prepared {
  dir: string;
  uid: number;
  gid: number;
}

/** The groups' compile cache folders under one root, prepared once and checked with one lstat per spawn. */
export class CompileCacheFolders {
  private readonly prepared = new Map<string, Prepared>();

  constructor(readonly root: string) {}

  /** The folder for a worker of `group` running as `account` (null: as smoothd), or an Error saying why it cannot be used. */
  folderFor(group: string, account: WorkerAccount | null | undefined): string | Error {
    const uid = account?.uid ?? process.getuid?.() ?? 0;
    const gid = account ? account.gid : (process.getgid?.() ?? 0);
    const known = this.prepared.get(group);
    if (known !== undefined && known.uid === uid && known.gid === gid && stillFolderOf(known.dir, uid)) return known.dir;
    const got = prepareCompileCache(this.root, group, account);
    if (got instanceof Error) this.prepared.delete(group);
    else this.prepared.set(group, { dir: got, uid, gid });
    return got;
  }
}

function stillFolderOf(dir: string, uid: number): boolean {
  try {
    const st = fs.lstatSync(dir, { throwIfNoEntry: false });
    return st !== undefined && st.isDirectory() && st.uid === uid;
  } catch {
    return false;
  }
}

/** The first folder from `dir` up to / that `uid` cannot enter (no x bit for it as owner or other), if any. */
function closedFolder(dir: string, uid: number): { dir: string; mode: number } | null {
  for (let d = dir; ; d = path.dirname(d)) {
    const st = fs.statSync(d);
    const bit = st.uid === uid ? 0o100 : 0o001;
    if ((st.mode & bit) === 0) return { dir: d, mode: st.mode & 0o777 };
    if (path.dirname(d) === d) return null;
  }
}
