/**
 * Where the control socket lives (DESIGN §2). smoothd and smoothctl use this
 * same resolution, so a bare `smoothctl status` finds the daemon that a bare
 * `smoothd` started, whoever runs it.
 *
 * Imports only node:path: smoothctl loads it on its fast path.
 */
import { isAbsolute, resolve } from 'node:path';

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
