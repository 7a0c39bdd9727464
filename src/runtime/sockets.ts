/**
 * Listen sockets held by smoothd and handed to workers.
 *
 * smoothd binds but never listens or accepts (DESIGN §9): a master that calls
 * listen() on the socket would accept connections itself and starve the
 * workers. We bind the way Node's cluster module does, with the internal
 * `net._createServerHandle`, and pass the raw fd in each worker's stdio. The
 * first worker's `listen({fd: 3})` turns it into a listening socket; the
 * kernel queue belongs to the socket, so a moment with no worker loses nothing.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { ListenAddress, ListenEntry } from '../config/types.js';

interface RawHandle {
  fd: number;
  close(cb?: () => void): void;
  getsockname?(out: Record<string, unknown>): number;
}

type CreateServerHandle = (address: string, port: number, addressType: number, fd?: number, flags?: number) => RawHandle | number;

export interface HeldSocket {
  key: string;
  address: ListenAddress;
  fd: number;
  /** Real address once bound (the kernel's port when the config said 0). */
  bound: string;
  /** Closed by smoothd when the last spec using it is gone. Adopted systemd sockets are never closed. */
  handle: RawHandle | null;
  unixPath: string | null;
}

export class ListenError extends Error {
  constructor(
    readonly entry: string,
    message: string,
  ) {
    super(message);
    this.name = 'ListenError';
  }
}

function createServerHandle(): CreateServerHandle {
  const fn = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof fn !== 'function') {
    throw new Error('this Node.js has no net._createServerHandle; smoothd needs Node 20.19 or newer');
  }
  return fn;
}

function errnoName(code: number): string {
  const names = os.constants.errno as Record<string, number>;
  const found = Object.entries(names).find(([, v]) => v === -code || v === code);
  return found ? found[0] : `errno ${code}`;
}

function explainBindError(entry: ListenEntry, code: string): string {
  const where = `listen ${JSON.stringify(entry.text)}`;
  switch (code) {
    case 'EADDRINUSE':
      return `${where}: address already in use; stop whatever holds it (ss -ltnp shows it) or choose another port`;
    case 'EACCES':
      return entry.address.kind === 'tcp' && entry.address.port < 1024
        ? `${where}: permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE (run smoothd as root, or grant the capability in the systemd unit with AmbientCapabilities=CAP_NET_BIND_SERVICE)`
        : `${where}: permission denied; check the folder's permissions`;
    case 'EADDRNOTAVAIL':
      return `${where}: that address is not assigned to any interface of this machine`;
    default:
      return `${where}: cannot bind (${code})`;
  }
}

/** Systemd-passed sockets: fd 3.. named by LISTEN_FDNAMES, meant for this process. */
export function inheritedSystemdSockets(env: NodeJS.ProcessEnv, pid: number): Map<string, number> {
  const out = new Map<string, number>();
  const count = Number(env.LISTEN_FDS ?? '0');
  if (!Number.isInteger(count) || count <= 0) return out;
  // As sd_listen_fds(): the fds are ours only when LISTEN_PID names this process.
  if (env.LISTEN_PID === undefined || Number(env.LISTEN_PID) !== pid) return out;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  for (let i = 0; i < count; i++) {
    const name = names[i] || `unknown${i}`;
    if (!out.has(name)) out.set(name, 3 + i);
  }
  return out;
}

export class SocketTable {
  private readonly held = new Map<string, HeldSocket>();

  constructor(private readonly systemdFds: Map<string, number> = new Map()) {}

  get(key: string): HeldSocket | undefined {
    return this.held.get(key);
  }

  keys(): string[] {
    return [...this.held.keys()];
  }

  boundAddress(key: string): string | null {
    return this.held.get(key)?.bound ?? null;
  }

  /**
   * Bind every address not held yet. All or nothing: on any failure the
   * sockets bound by this call are closed again and a ListenError is thrown.
   */
  async bindAll(entries: ListenEntry[]): Promise<void> {
    const fresh: HeldSocket[] = [];
    try {
      for (const entry of entries) {
        if (this.held.has(entry.address.key) || fresh.some((s) => s.key === entry.address.key)) continue;
        if (entry.address.kind === 'unix') await clearUnixPath(entry, entry.address.path);
        fresh.push(this.bindOne(entry));
      }
    } catch (err) {
      for (const s of fresh) closeHeld(s);
      throw err;
    }
    for (const s of fresh) this.held.set(s.key, s);
  }

  private bindOne(entry: ListenEntry): HeldSocket {
    const a: ListenAddress = entry.address;
    switch (a.kind) {
      case 'systemd': {
        const fd = this.systemdFds.get(a.fdName);
        if (fd === undefined) {
          const have = [...this.systemdFds.keys()];
          throw new ListenError(
            entry.text,
            `listen ${JSON.stringify(entry.text)}: systemd passed no socket named ${JSON.stringify(a.fdName)}` +
              (have.length ? ` (it passed: ${have.join(', ')})` : ' (no LISTEN_FDS: start smoothd through smoothd.socket, or listen on an address)') +
              '; set FileDescriptorName= in the .socket unit',
          );
        }
        return { key: a.key, address: a, fd, bound: `systemd:${a.fdName} (fd ${fd})`, handle: null, unixPath: null };
      }
      case 'tcp': {
        const h = createServerHandle()(a.host, a.port, a.family);
        if (typeof h === 'number') throw new ListenError(entry.text, explainBindError(entry, errnoName(h)));
        // libuv defers a bind() error such as EADDRINUSE to listen(), which only
        // the worker calls: the handle comes back unbound and getsockname()
        // reports the deferred error. Catch it here, or the worker's listen
        // would be the first to fail.
        const out: Record<string, unknown> = {};
        const rc = h.getsockname?.(out) ?? 0;
        if (rc !== 0 || typeof out.port !== 'number' || (a.port !== 0 && out.port !== a.port)) {
          h.close();
          throw new ListenError(entry.text, explainBindError(entry, rc !== 0 ? errnoName(rc) : 'EADDRINUSE'));
        }
        const port = out.port;
        const bound = a.family === 6 ? `[${a.host}]:${port}` : `${a.host}:${port}`;
        return { key: a.key, address: a, fd: h.fd, bound, handle: h, unixPath: null };
      }
      case 'unix': {
        const h = createServerHandle()(a.path, -1, -1);
        if (typeof h === 'number') throw new ListenError(entry.text, explainBindError(entry, errnoName(h)));
        const mode = entry.mode ?? 0o666;
        try {
          fs.chmodSync(a.path, mode);
        } catch (err) {
          h.close();
          throw new ListenError(entry.text, `listen ${JSON.stringify(entry.text)}: cannot set mode ${mode.toString(8)}: ${(err as Error).message}`);
        }
        return { key: a.key, address: a, fd: h.fd, bound: `unix:${a.path}`, handle: h, unixPath: a.path };
      }
    }
  }

  /** Close every held socket whose key is not in `keep`. */
  release(keep: Set<string>): string[] {
    const closed: string[] = [];
    for (const [key, s] of this.held) {
      if (keep.has(key)) continue;
      closeHeld(s);
      this.held.delete(key);
      closed.push(key);
    }
    return closed;
  }

  closeAll(): void {
    this.release(new Set());
  }
}

function closeHeld(s: HeldSocket): void {
  if (!s.handle) return;
  s.handle.close();
  if (s.unixPath) {
    try {
      fs.unlinkSync(s.unixPath);
    } catch {
      // already gone
    }
  }
}

/**
 * Make room for a unix listen socket: a socket file nothing answers on (left
 * by a dead process) is removed; a socket that answers a connect belongs to a
 * live process and is never removed (the same probe as the control socket);
 * anything that is not a socket is never removed. The bind follows in the
 * same tick as the last check.
 */
async function clearUnixPath(entry: ListenEntry, path: string): Promise<void> {
  const where = `listen ${JSON.stringify(entry.text)}`;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new ListenError(entry.text, `${where}: ${path} exists and is not a socket; smoothd will not remove it — move it away or choose another path`);
  }
  const state = await probeUnixSocket(path);
  if (state === 'live') {
    throw new ListenError(
      entry.text,
      `${where}: address in use by another process (something accepts connections on ${path}); ` +
        'stop it (ss -xlp shows which process) or choose another path; smoothd will not remove a live socket',
    );
  }
  if (state === 'denied') {
    throw new ListenError(entry.text, `${where}: a socket exists at ${path} and smoothd may not connect to it to see whether it is in use; remove it if it is stale, or choose another path`);
  }
  // Stale: nothing listens. Remove it only if it is still the file we examined.
  const now = lstatOrNull(path);
  if (now !== null && now.ino === st.ino && now.dev === st.dev) fs.unlinkSync(path);
}

function lstatOrNull(path: string): fs.Stats | null {
  try {
    return fs.lstatSync(path);
  } catch {
    return null;
  }
}

/** Does a process accept connections on this unix socket? (Connects and closes at once.) */
function probeUnixSocket(path: string, timeoutMs = 1000): Promise<'live' | 'stale' | 'denied'> {
  return new Promise((resolve) => {
    const sock = net.createConnection({ path });
    const done = (state: 'live' | 'stale' | 'denied'): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(state);
    };
    // A connect that neither succeeds nor fails means someone holds the socket (its queue is full).
    const timer = setTimeout(() => done('live'), timeoutMs);
    sock.once('connect', () => done('live'));
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EACCES' || err.code === 'EPERM') done('denied');
      else if (err.code === 'EAGAIN') done('live');
      else done('stale'); // ECONNREFUSED: nothing listens; ENOENT: gone meanwhile
    });
  });
}
