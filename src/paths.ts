/**
 * Where the control socket lives (DESIGN §2). smoothd and smoothctl use this
 * same resolution, so a bare `smoothctl status` finds the daemon that a bare
 * `smoothd` started, whoever runs it.
 *
 * Imports only node: built-ins: smoothctl loads it on its fast path.
 */
import { chmodSync, lstatSync, mkdirSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';

/** sockaddr_un.sun_path is 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export const SOCKET_FILE_NAME = 'smoothd.sock';

export class SocketPathError extends Error {
  override readonly name = 'SocketPathError';
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

export interface ResolveSocketPathOptions {
  /** The value of `--socket`, when given. */
  flag?: string | undefined;
  env: NodeJS.ProcessEnv;
  /** The uid (`process.getuid()`, the shell's $UID); -1 where there is none (Windows). */
  uid: number;
  /** Base for relative paths; default `process.cwd()`. */
  cwd?: string;
}

/** Which rule of the resolution order produced the path (for messages and tests). */
export type SocketPathSource = 'flag' | 'SMOOTHD_SOCKET' | 'RUNTIME_DIRECTORY' | 'root' | 'XDG_RUNTIME_DIR' | 'tmp';

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== '' ? value : undefined;
}

/**
 * Resolve the socket path without checking it:
 * `--socket` > `$SMOOTHD_SOCKET` > `$RUNTIME_DIRECTORY/smoothd.sock` >
 * `/run/smoothd/smoothd.sock` (uid 0) > `$XDG_RUNTIME_DIR/smoothd/smoothd.sock` >
 * `/tmp/smoothd-$UID/smoothd.sock`.
 *
 * - Empty values count as unset.
 * - `$RUNTIME_DIRECTORY` may hold several colon-separated folders (several
 *   `RuntimeDirectory=` entries); the first one is used.
 * - A relative `$XDG_RUNTIME_DIR` is ignored, as the XDG spec says.
 * - A relative `--socket` / `$SMOOTHD_SOCKET` is made absolute against `cwd`,
 *   so the daemon and smoothctl agree whatever folder each runs in.
 */
export function resolveSocketPathWithSource(opts: ResolveSocketPathOptions): { path: string; source: SocketPathSource } {
  const cwd = opts.cwd ?? process.cwd();
  const flag = nonEmpty(opts.flag);
  if (flag !== undefined) return { path: resolve(cwd, flag), source: 'flag' };
  const fromEnv = nonEmpty(opts.env.SMOOTHD_SOCKET);
  if (fromEnv !== undefined) return { path: resolve(cwd, fromEnv), source: 'SMOOTHD_SOCKET' };
  const runtimeDirs = nonEmpty(opts.env.RUNTIME_DIRECTORY);
  if (runtimeDirs !== undefined) {
    const first = runtimeDirs.split(':').find((d) => d !== '');
    if (first !== undefined) return { path: resolve(cwd, first, SOCKET_FILE_NAME), source: 'RUNTIME_DIRECTORY' };
  }
  if (opts.uid === 0) return { path: `/run/smoothd/${SOCKET_FILE_NAME}`, source: 'root' };
  const xdg = nonEmpty(opts.env.XDG_RUNTIME_DIR);
  if (xdg !== undefined && isAbsolute(xdg)) {
    return { path: resolve(xdg, 'smoothd', SOCKET_FILE_NAME), source: 'XDG_RUNTIME_DIR' };
  }
  const uid = opts.uid >= 0 ? String(opts.uid) : 'user';
  return { path: `/tmp/smoothd-${uid}/${SOCKET_FILE_NAME}`, source: 'tmp' };
}

/**
 * Throw a SocketPathError when the kernel would truncate the path
 * (more than 107 bytes, counted as UTF-8) or the path is unusable.
 * Returns the path unchanged otherwise.
 */
export function checkSocketPath(path: string): string {
  if (path.includes('\0')) {
    throw new SocketPathError(`socket path ${JSON.stringify(path)} contains a NUL byte`, path);
  }
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new SocketPathError(
      `socket path is ${bytes} bytes long, over the ${MAX_SOCKET_PATH_BYTES}-byte limit of Unix sockets ` +
        `(the kernel would truncate it): ${path}; choose a shorter path with --socket or $SMOOTHD_SOCKET`,
      path,
    );
  }
  return path;
}

/** resolveSocketPathWithSource + checkSocketPath: the path both programs use. */
export function resolveSocketPath(opts: ResolveSocketPathOptions): string {
  return checkSocketPath(resolveSocketPathWithSource(opts).path);
}

/** The current uid (what the shell calls $UID), or -1 where the platform has none. */
export function currentUid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : -1;
}

// ---------------------------------------------------------------------------
// The /tmp/smoothd-$UID fallback: the one socket folder another user can plant
// (anyone may create /tmp/smoothd-1000 before user 1000 does). There both
// programs require a real folder owned by the user with mode 0700; the paths
// an operator names (--socket, $SMOOTHD_SOCKET, $RUNTIME_DIRECTORY, /run)
// keep the server's ordinary rules, so socketGroup sharing still works.

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

function mode(info: Stats): string {
  return `0${(info.mode & 0o7777).toString(8)}`;
}

/**
 * Why `dir` is not a private socket folder of `uid` (examined with lstat, so a
 * symlink is seen as one), or null when it is: a real folder, owned by `uid`,
 * with no permission for group or others. 'missing' when it does not exist.
 */
export function privateSocketFolderProblem(dir: string, uid: number): string | 'missing' | null {
  let info: Stats;
  try {
    info = lstatSync(dir);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return 'missing';
    return `cannot examine the socket folder ${dir}: ${(error as Error).message}`;
  }
  const fix = `remove it (rm -r ${dir}; smoothd creates it again, mode 0700) or choose a socket path with --socket or $SMOOTHD_SOCKET`;
  if (info.isSymbolicLink()) {
    return `the socket folder ${dir} is a symbolic link, which another user may have planted; refusing to use it — ${fix}`;
  }
  if (!info.isDirectory()) return `the socket folder ${dir} exists but is not a folder; ${fix}`;
  if (info.uid !== uid) {
    return `the socket folder ${dir} belongs to uid ${info.uid}, not to this user (uid ${uid}), so another user may have planted it; refusing to use it — ${fix}`;
  }
  if ((info.mode & 0o077) !== 0) {
    return `the socket folder ${dir} has mode ${mode(info)}; it must be 0700 (only its owner may enter it) — run chmod 0700 ${dir}, or choose a socket path with --socket or $SMOOTHD_SOCKET`;
  }
  return null;
}

/** smoothd's side: create the private folder (mode 0700) when absent; the problem when it cannot be used. */
export function ensurePrivateSocketFolder(dir: string, uid: number): string | null {
  let problem = privateSocketFolderProblem(dir, uid);
  if (problem !== 'missing') return problem;
  try {
    mkdirSync(dir, { mode: 0o700 }); // not recursive: the parent (/tmp) exists; EEXIST means someone raced us
    chmodSync(dir, 0o700); // the umask may have taken bits away; set exactly 0700
  } catch (error) {
    if (errnoOf(error) !== 'EEXIST') return `cannot create the socket folder ${dir}: ${(error as Error).message}`;
  }
  problem = privateSocketFolderProblem(dir, uid);
  return problem === 'missing' ? `the socket folder ${dir} vanished while smoothd created it; start smoothd again` : problem;
}

/**
 * smoothctl's side, before it connects to a socket in the private folder: the
 * folder must be private (see above) and the socket, when there is one, a
 * socket owned by `uid` — one planted by another user could forge any answer
 * ("reload succeeded"). Null when it may connect (also when nothing is there:
 * connecting then reports that smoothd is not running).
 */
export function privateSocketProblem(path: string, uid: number): string | null {
  const folder = privateSocketFolderProblem(dirname(path), uid);
  if (folder === 'missing') return null;
  if (folder !== null) return folder;
  let info: Stats;
  try {
    info = lstatSync(path);
  } catch (error) {
    return errnoOf(error) === 'ENOENT' ? null : `cannot examine the control socket ${path}: ${(error as Error).message}`;
  }
  if (info.isSymbolicLink() || !info.isSocket()) {
    return `${path} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a socket'}; refusing to talk to it — remove it and start smoothd again`;
  }
  if (info.uid !== uid) {
    return `the control socket ${path} belongs to uid ${info.uid}, not to this user (uid ${uid}); refusing to talk to it, since a planted socket could answer anything — remove it and start smoothd again`;
  }
  return null;
}
