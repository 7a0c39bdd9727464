/**
 * `ready: notify` (DESIGN §4): each worker gets its own NOTIFY_SOCKET, a
 * datagram socket bound by smoothd in a private runtime folder, so a message
 * is attributed to the worker by the socket it arrived on — no credentials
 * needed, and it works for short-lived senders such as the `systemd-notify`
 * command, whose pid is not the worker's.
 *
 * Understood: READY=1, STATUS=text, STOPPING=1. Everything else (BARRIER=1,
 * MAINPID=, WATCHDOG=1, ERRNO=, …) is ignored. File descriptors passed with a
 * message are dropped: unix-dgram calls recvmsg() without a control buffer,
 * so the kernel closes any SCM_RIGHTS fds at once (MSG_CTRUNC). That is what
 * makes a plain `systemd-notify --ready` (which sends BARRIER=1 with a pipe
 * and waits for its other end to close) return at once instead of after 5 s.
 *
 * Node has no AF_UNIX datagram sockets: this needs the optional `unix-dgram`
 * package, loaded on first use; `notifyUnavailable` tells smoothd --check and
 * start how to fix a config that needs it when it is missing.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config, ConfigIssue, WorkerAccount } from '../config/types.js';

/** The part of unix-dgram's API smoothd uses. */
export interface UnixDgramSocket {
  fd: number;
  on(event: 'message', fn: (buf: Buffer, rinfo: unknown) => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  on(event: string, fn: (...args: never[]) => void): this;
  bind(path: string): void;
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  close(): void;
}

export interface UnixDgramModule {
  createSocket(type: 'unix_dgram', listener?: (buf: Buffer) => void): UnixDgramSocket;
}

let cached: { mod: UnixDgramModule | null; error: string | null } | null = null;

/**
 * unix-dgram, or null when it is not installed (or its native part did not
 * build). Loaded synchronously (it is CommonJS) and only on first use, so
 * smoothd without `ready: notify` and outside systemd never pays for it.
 */
export function loadUnixDgram(): UnixDgramModule | null {
  if (!cached) {
    try {
      const req = createRequire(import.meta.url);
      cached = { mod: req('unix-dgram') as UnixDgramModule, error: null };
    } catch (err) {
      cached = { mod: null, error: (err as Error).message.split('\n')[0] ?? String(err) };
    }
  }
  return cached.mod;
}

/** Why unix-dgram could not be loaded, or null. */
export function unixDgramLoadError(): string | null {
  loadUnixDgram();
  return cached?.error ?? null;
}

/**
 * Config issues for groups with `ready: notify` when the datagram package is
 * not available (empty when it is, or when no group needs it).
 */
export function notifyUnavailable(config: Pick<Config, 'groups'>, load: () => UnixDgramModule | null = loadUnixDgram): ConfigIssue[] {
  const groups = config.groups.filter((g) => g.ready.kind === 'notify');
  if (groups.length === 0 || load()) return [];
  const why = unixDgramLoadError();
  return groups.map((g) => ({
    path: `groups.${g.name}.ready`,
    message:
      'got "notify", but the optional package unix-dgram (AF_UNIX datagram sockets, which Node lacks) is not installed' +
      (why ? ` (${why})` : '') +
      '; install it next to smoothd (npm install -g unix-dgram for a global install, or npm install unix-dgram in the project; it builds with python3, make and g++), or use ready: ipc or a duration',
  }));
}

/** What a worker said in one datagram. */
export interface NotifyMessage {
  ready: boolean;
  stopping: boolean;
  status: string | null;
  /** X_SMOOTHD_REQUESTS / X_SMOOTHD_ERRORS: cumulative counters for deploy verification (DESIGN §10). */
  requests: number | null;
  errors: number | null;
}

/** A counter value: a non-negative safe integer in decimal, else ignored. */
function counter(value: string): number | null {
  if (!/^\d{1,15}$/.test(value)) return null;
  return Number(value);
}

/** Parses an sd_notify datagram: newline-separated KEY=VALUE; unknown keys and malformed lines are ignored. */
export function parseNotify(text: string): NotifyMessage {
  const out: NotifyMessage = { ready: false, stopping: false, status: null, requests: null, errors: null };
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'READY' && value === '1') out.ready = true;
    else if (key === 'STOPPING' && value === '1') out.stopping = true;
    else if (key === 'STATUS') out.status = value.slice(0, 200);
    else if (key === 'X_SMOOTHD_REQUESTS') out.requests = counter(value);
    else if (key === 'X_SMOOTHD_ERRORS') out.errors = counter(value);
  }
  return out;
}

export interface NotifyHandlers {
  onReady(): void;
  onStatus(text: string): void;
  onStopping(): void;
  /** Optional: deploy verification's counters (X_SMOOTHD_REQUESTS / X_SMOOTHD_ERRORS). */
  onStats?(requests: number | null, errors: number | null): void;
}

/** Who may write to a worker's socket: the worker's uid/gid when it runs as another user. */
export interface SocketOwner {
  uid: number;
  gid: number;
}

export interface WorkerNotifySocket {
  path: string;
  close(): void;
}

/**
 * The folder of worker notify sockets and the open sockets in it. Created on
 * first use with mkdtemp as `<base>/notify-XXXXXX`, mode 0700 — never by a
 * predictable name, so nothing another user planted in a shared folder is
 * ever used or removed. For workers that run as another user a second fresh
 * mkdtemp folder is made — in `base` when every folder above it is
 * searchable by others, else in the temp folder — and set to 0711 (names not
 * listable) through its descriptor (opened with O_NOFOLLOW); each socket in it
 * is checked with lstat, then chowned to the worker's user, mode 0600, so
 * only that user (and root) can send to it.
 */
export class WorkerNotifySockets {
  private dir: string | null = null;
  private shared: string | null = null;
  private readonly made: string[] = [];
  private readonly open = new Map<number, { sock: UnixDgramSocket; path: string }>();

  constructor(
    private readonly base: string,
    private readonly log: Pick<Logger, 'info' | 'warn' | 'debug'>,
    private readonly load: () => UnixDgramModule | null = loadUnixDgram,
  ) {}

  private folder(forOtherUser: boolean): string {
    if (forOtherUser) {
      if (this.shared === null) {
        // Another user must traverse every folder on the way: the control socket's
        // folder may be 0750 (smoothd creates it so), then use a fresh one in /tmp.
        const shared =
          this.dirMode(this.base) & 0o001
            ? fs.mkdtempSync(path.join(this.base, 'notify-'))
            : fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-notify-'));
        this.made.push(shared);
        chmodFolder(shared, 0o711);
        this.shared = shared;
      }
      return this.shared;
    }
    return this.privateFolder();
  }

  private privateFolder(): string {
    if (this.dir === null) {
      const dir = fs.mkdtempSync(path.join(this.base, 'notify-')); // a fresh name, mode 0700
      this.made.push(dir);
      this.dir = dir;
    }
    return this.dir;
  }

  private dirMode(dir: string): number {
    // Every folder from / down to `dir` must let others search it.
    let mode = 0o777;
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      try {
        mode &= fs.statSync(d).mode;
      } catch {
        return 0;
      }
      if (d === path.dirname(d)) return mode;
    }
  }

  /** Binds the socket for one worker before it is spawned; an Error says why it cannot. */
  openFor(workerId: number, owner: SocketOwner | null, handlers: NotifyHandlers): WorkerNotifySocket | Error {
    const mod = this.load();
    if (!mod) {
      return new Error(
        'ready: notify needs the optional package unix-dgram, which is not installed; install it next to smoothd (npm install -g unix-dgram) or use ready: ipc or a duration',
      );
    }
    let file: string;
    try {
      file = path.join(this.folder(owner !== null), `${workerId}.sock`);
      fs.rmSync(file, { force: true });
    } catch (err) {
      return new Error(`cannot create the folder for worker notify sockets under ${this.base}: ${(err as Error).message}`);
    }
    if (Buffer.byteLength(file) > 107) return new Error(`the worker notify socket path ${file} is longer than 107 bytes; use a shorter control socket folder`);
    let sock: UnixDgramSocket;
    try {
      sock = mod.createSocket('unix_dgram');
    } catch (err) {
      return new Error(`cannot create a notify socket: ${(err as Error).message}`);
    }
    let bindError: Error | null = null;
    sock.on('error', (err: Error) => {
      bindError = err;
    });
    sock.bind(file);
    if (bindError) {
      safeClose(sock);
      return new Error(`cannot bind the worker notify socket ${file}: ${(bindError as Error).message}`);
    }
    try {
      // The folder is ours (mkdtemp) and nobody else may write in it; still check what bind made before chown.
      const info = fs.lstatSync(file);
      if (!info.isSocket() || info.uid !== (process.geteuid?.() ?? info.uid)) throw new Error('it is not the socket smoothd bound');
      if (owner) fs.chownSync(file, owner.uid, owner.gid);
      fs.chmodSync(file, 0o600);
    } catch (err) {
      safeClose(sock);
      fs.rmSync(file, { force: true });
      return new Error(`cannot give the worker notify socket ${file} to its user: ${(err as Error).message}`);
    }
    sock.on('error', (err: Error) => this.log.debug({ workerId, err: err.message }, 'worker notify socket error'));
    sock.on('message', (buf: Buffer) => {
      const m = parseNotify(buf.toString('utf8'));
      if (m.status !== null) handlers.onStatus(m.status);
      if (m.requests !== null || m.errors !== null) handlers.onStats?.(m.requests, m.errors);
      if (m.ready) handlers.onReady();
      if (m.stopping) handlers.onStopping();
    });
    this.open.set(workerId, { sock, path: file });
    return { path: file, close: () => this.close(workerId) };
  }

  close(workerId: number): void {
    const s = this.open.get(workerId);
    if (!s) return;
    this.open.delete(workerId);
    safeClose(s.sock);
    fs.rmSync(s.path, { force: true });
  }

  /** Closes every socket and removes the folder. */
  closeAll(): void {
    for (const id of [...this.open.keys()]) this.close(id);
    for (const d of this.made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    this.dir = null;
    this.shared = null;
  }
}

/** chmod a folder through its descriptor, refusing a symlink in its place (O_NOFOLLOW). */
function chmodFolder(dir: string, mode: number): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  try {
    fs.fchmodSync(fd, mode);
  } finally {
    fs.closeSync(fd);
  }
}

function safeClose(sock: UnixDgramSocket): void {
  try {
    sock.close();
  } catch {
    // already closed
  }
}

/**
 * uid and gid a worker runs as: the account resolved (through NSS) when the
 * config was checked, else from /etc/passwd and /etc/group; null when it runs
 * as smoothd's user.
 */
export function workerOwner(
  spec: { user: string | null; group: string | null; account?: WorkerAccount | null },
  files = { passwd: '/etc/passwd', group: '/etc/group' },
): SocketOwner | null {
  if (spec.user === null && spec.group === null) return null;
  if (spec.account) return { uid: spec.account.uid ?? process.geteuid?.() ?? 0, gid: spec.account.gid };
  const read = (f: string): string[][] => {
    try {
      return fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .map((l) => l.split(':'));
    } catch {
      return [];
    }
  };
  let uid = process.geteuid?.() ?? 0;
  let gid = process.getegid?.() ?? 0;
  if (spec.user !== null) {
    const u = read(files.passwd).find((f) => f[0] === spec.user || f[2] === spec.user);
    if (u) {
      uid = Number(u[2]);
      gid = Number(u[3]);
    } else if (/^\d+$/.test(spec.user)) {
      uid = Number(spec.user);
    }
  }
  if (spec.group !== null) {
    const g = read(files.group).find((f) => f[0] === spec.group || f[2] === spec.group);
    if (g) gid = Number(g[2]);
    else if (/^\d+$/.test(spec.group)) gid = Number(spec.group);
  }
  return { uid, gid };
}
