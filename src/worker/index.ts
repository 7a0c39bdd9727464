/**
 * smoothd/worker — the Node worker kit.
 *
 * One call gives a Node server everything a smoothd worker needs: it listens
 * on the socket smoothd passes down (systemd socket activation: `LISTEN_FDS`,
 * `LISTEN_PID`, `LISTEN_FDNAMES`, fds from 3), tells smoothd it is ready
 * (`SMOOTHD_READY`: `ipc` or `notify`), and on the stop signal drains
 * gracefully so that no request is lost while workers are replaced. Outside
 * smoothd it listens on a development port instead, so the same code runs
 * everywhere. Only `node:` built-ins are imported.
 *
 * Plain Node (`http`, `https`, or a `net` server):
 *
 * ```js
 * import http from 'node:http';
 * import { listen } from 'smoothd/worker';
 * const server = http.createServer((req, res) => res.end('hello\n'));
 * await listen(server); // fd 3 under smoothd, else $PORT or 3000 on 127.0.0.1
 * ```
 *
 * Express (or Koa: `http.createServer(app.callback())`):
 *
 * ```js
 * const app = express();
 * await listen(http.createServer(app), { onDrain: () => db.end() });
 * ```
 *
 * Fastify (let the kit listen on fastify's own server; `app.close()` then only
 * runs the onClose hooks, since fastify itself never listened):
 *
 * ```js
 * const app = Fastify();
 * await app.ready();
 * await listen(app.server, { onDrain: () => app.close() });
 * ```
 *
 * Socket selection. Under smoothd (`LISTEN_FDS` set and `LISTEN_PID` equal to
 * this process) the kit listens on fd 3, or with `name` on the fd whose
 * `LISTEN_FDNAMES` entry matches (an error lists the available names). A
 * `LISTEN_PID` that names another process means the variables were meant for
 * a parent (a wrapper like `npm start` that does not `exec`): the kit warns on
 * stderr and uses the fallback. Outside smoothd it listens on
 * `fallback` (a port or `{port, host}`), default `$PORT` or 3000, host
 * 127.0.0.1.
 *
 * Warm-up (`warmup: true` or `{requests, paths, method, headers, timeoutMs}`,
 * off by default; see warmup.ts): before listening, the kit sends requests
 * marked `x-smoothd-warmup: 1` through the app's server over a private
 * 127.0.0.1 listener, so the first real requests find it warm. They are not
 * counted in the stats; a failure is one warning, and the kit listens anyway.
 *
 * Readiness, sent once per process after the server listens: `SMOOTHD_READY=ipc`
 * sends `process.send('ready')` (PM2's `wait_ready` message); `notify` runs
 * `systemd-notify --ready --no-block` (Node cannot send unix datagrams), which
 * reads `NOTIFY_SOCKET` itself. smoothd gives each worker its own
 * NOTIFY_SOCKET and attributes messages by socket, so it does not matter that
 * the datagram comes from the short-lived systemd-notify process. A duration
 * needs nothing. Without `SMOOTHD_READY` but with `NOTIFY_SOCKET` (the app run
 * directly by systemd with `Type=notify`) the kit runs `systemd-notify --ready`
 * (blocking on systemd's barrier); systemd attributes that message by pid, so
 * such a unit needs `NotifyAccess=all`. A worker that serves several sockets
 * passes `ready: false` to all but its last `listen()` (or calls `ready()` when
 * it is really ready).
 *
 * The drain (stop signal — `SIGTERM`/`SIGINT` by default — or the supervisor's
 * IPC channel closing, or `drain()`):
 * 1. Stop accepting (`net.Server.prototype.close`; the listening socket stays
 *    open in smoothd and the other workers, which accept what this one no
 *    longer does). `http.Server#close()` is never called: on Node >= 19 it
 *    destroys idle connections at once, including connections accepted a
 *    moment ago whose first request is still on the wire.
 * 2. HTTP/1: every response whose headers are not sent yet — in flight or
 *    started later — goes out with `Connection: close`, so keep-alive clients
 *    reconnect to another worker and Node closes the connection after it.
 *    With `closeSpreadMs` each connection starts doing so at its own random
 *    point of that window (answering keep-alive before it), so the clients do
 *    not all reconnect onto the new workers at the same moment.
 *    A connection idle since before the drain, or that goes idle without such
 *    a response, is closed once it has been idle for `idleGraceMs` (1 s) and
 *    has received no byte meanwhile: closing an idle keep-alive connection at
 *    once races with the request the client may be sending on it. Upgraded
 *    connections (WebSocket, CONNECT) are left to the app: close them in
 *    `onDrainStart`.
 *    HTTP/2: every session gets a GOAWAY (`session.close()`) and ends when
 *    its open streams are done; a stream the client opens while the GOAWAY
 *    is on its way is refused, which HTTP/2 marks as safe to retry. HTTP/1
 *    requests of an `allowHTTP1` server get `Connection: close` as above.
 *    Plain `net` servers: the kit cannot tell an idle connection from a busy
 *    one, so it waits for connections to end on their own (end them in
 *    `onDrainStart`).
 * 3. When no connection is left: `onDrain()` runs, `drained` resolves and,
 *    with `exit: true` (the default), the process exits 0.
 * 4. After `drainTimeoutMs` (25 s) whatever is left is destroyed and the
 *    process exits 1: a drain that had to cut requests is an error the
 *    operator should see in the worker's exit status (smoothd does not restart
 *    a worker it is stopping). The default stays below smoothd's default
 *    `stopTimeout` (30 s) so the worker ends itself before the SIGKILL; keep
 *    it below the group's `stopTimeout` when you lower that.
 * A second SIGINT during a drain (Ctrl-C twice) exits at once with code 130;
 * repeated SIGTERMs are ignored (a wrapper that forwards signals sends two).
 * With several servers in one process the process exits when all of them
 * have drained.
 */
import { execFile } from 'node:child_process';
import { ServerResponse } from 'node:http';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { countResponse, shouldShed, startStatsReporter } from './stats.js';
import { parseWarmup, warmUp, type WarmupOptions } from './warmup.js';

export { countResponse, reportStats, stats } from './stats.js';
export { WARMUP_HEADER, type WarmupOptions } from './warmup.js';

export interface ListenOptions {
  /** Pick the inherited socket whose LISTEN_FDNAMES entry is this name; default the first (fd 3). */
  name?: string;
  /** Where to listen outside smoothd: a port or {port, host}. Default $PORT or 3000, host 127.0.0.1. */
  fallback?: number | { port: number; host?: string };
  /** listen() backlog; default Node's 511. (Listening resets the backlog of an inherited socket.) */
  backlog?: number;
  /** Signal readiness to smoothd once listening; default true. */
  ready?: boolean;
  /** Signals that start the drain; default ['SIGTERM', 'SIGINT']; [] installs none. */
  signals?: NodeJS.Signals[];
  /** How long a connection must have been idle during a drain before it is closed; default 1000 ms. */
  idleGraceMs?: number;
  /**
   * Spread the `Connection: close` answers of a drain over this window instead
   * of sending them all at once: each HTTP/1 connection gets its own random
   * point of the window, answers keep-alive before it and `Connection: close`
   * after it (like HAProxy's close-spread-time). Bounded by drainTimeoutMs minus
   * idleGraceMs, so the drain still ends on its own. Default 0 (all at once).
   */
  closeSpreadMs?: number;
  /** Upper bound of the drain; then remaining connections are destroyed; default 25000 ms. */
  drainTimeoutMs?: number;
  /** Exit the process when the drain ends (0, or 1 after a timeout or a failing hook); default true. */
  exit?: boolean;
  /** Runs as soon as the drain starts (fail health checks, close WebSockets, stop jobs). */
  onDrainStart?: (reason: DrainReason) => void | Promise<void>;
  /** Runs once every connection is gone (close pools, flush logs), before `drained` resolves and the exit. */
  onDrain?: (result: DrainResult) => void | Promise<void>;
  /** Where warnings go; default stderr, prefixed with "smoothd/worker: ". */
  log?: (message: string) => void;
  /**
   * Before listening (and so before ready), send requests marked
   * `x-smoothd-warmup: 1` through the server over a private 127.0.0.1
   * listener, so the first real requests find it warm. `true` for the
   * defaults (10 x GET /, 5 s bound). Not counted in the kit's stats; a
   * failure is one warning, never fatal. Plain HTTP/1.1 servers only (TLS and
   * HTTP/2 servers are skipped with a warning). Default off.
   */
  warmup?: boolean | WarmupOptions;
}

/** What started the drain: a signal name, 'disconnect' (the supervisor's IPC channel closed) or 'manual'. */
export type DrainReason = NodeJS.Signals | 'disconnect' | 'manual';

export interface DrainResult {
  reason: DrainReason;
  /** True when drainTimeoutMs expired and connections were destroyed. */
  timedOut: boolean;
  /** Connections destroyed by the timeout. */
  destroyed: number;
  durationMs: number;
}

export interface Listening {
  /** The inherited fd listened on, or null when listening on the fallback address. */
  fd: number | null;
  /** Its LISTEN_FDNAMES entry, or null. */
  name: string | null;
  address: net.AddressInfo | string | null;
  /** Start the drain (as the stop signal would); resolves when it is done. Idempotent. */
  drain(): Promise<void>;
  /** Resolves when a drain, however started, is done. */
  drained: Promise<void>;
}

const DEFAULT_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
const DEFAULT_IDLE_GRACE_MS = 1000;
const DEFAULT_DRAIN_TIMEOUT_MS = 25_000;
const DEFAULT_PORT = 3000;
const DEFAULT_HOST = '127.0.0.1';
const FIRST_FD = 3;

function defaultLog(message: string): void {
  process.stderr.write(`smoothd/worker: ${message}\n`);
}

// ---------------------------------------------------------------------------
// Socket selection

interface Inherited {
  fd: number;
  name: string | null;
}

function findInheritedSocket(name: string | undefined, log: (m: string) => void): Inherited | null {
  const env = process.env;
  const fdsText = env.LISTEN_FDS;
  if (fdsText === undefined || fdsText === '') return null;
  const pidText = env.LISTEN_PID;
  if (pidText === undefined || Number(pidText) !== process.pid) {
    log(
      `LISTEN_FDS is set but LISTEN_PID=${pidText ?? '(unset)'} is not this process (${process.pid}); ` +
        'ignoring the inherited sockets and using the fallback address. ' +
        'If the app is started through a wrapper (npm, a shell script), make the wrapper exec node.',
    );
    return null;
  }
  const count = Number(fdsText);
  if (!Number.isInteger(count) || count < 0) {
    throw new Error(`smoothd/worker: LISTEN_FDS=${JSON.stringify(fdsText)} is not a number of sockets`);
  }
  if (count === 0) return null;
  const names = env.LISTEN_FDNAMES ? env.LISTEN_FDNAMES.split(':').slice(0, count) : [];
  if (name === undefined) return { fd: FIRST_FD, name: names[0] ?? null };
  const index = names.indexOf(name);
  if (index < 0) {
    const available = names.length > 0 ? names.join(', ') : '(none: LISTEN_FDNAMES is not set)';
    throw new Error(`smoothd/worker: no inherited socket named "${name}"; available: ${available}`);
  }
  return { fd: FIRST_FD + index, name };
}

function fallbackAddress(fallback: ListenOptions['fallback']): { port: number; host: string } {
  if (typeof fallback === 'number') return { port: fallback, host: DEFAULT_HOST };
  if (fallback) return { port: fallback.port, host: fallback.host ?? DEFAULT_HOST };
  const fromEnv = process.env.PORT;
  if (fromEnv !== undefined && fromEnv !== '') {
    const port = Number(fromEnv);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Error(`smoothd/worker: PORT=${JSON.stringify(fromEnv)} is not a port number`);
    }
    return { port, host: DEFAULT_HOST };
  }
  return { port: DEFAULT_PORT, host: DEFAULT_HOST };
}

/** Call `start` (a server.listen(...)) and resolve on 'listening', reject on 'error'. */
function listenOnce(server: net.Server, start: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    try {
      start();
    } catch (err) {
      server.off('error', onError);
      server.off('listening', onListening);
      reject(err);
    }
  });
}

// ---------------------------------------------------------------------------
// Readiness

let readyState: Promise<void> | null = null;

function runSystemdNotify(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('systemd-notify', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const detail = String(stderr).trim() || err.message;
      reject(new Error(`smoothd/worker: \`systemd-notify ${args.join(' ')}\` failed: ${detail}`, { cause: err }));
    });
  });
}

/**
 * Tell the supervisor this worker is ready, per SMOOTHD_READY. Done at most
 * once per process; listen() calls it unless `ready: false`.
 */
export function ready(): Promise<void> {
  readyState ??= sendReady();
  return readyState;
}

async function sendReady(): Promise<void> {
  const mode = process.env.SMOOTHD_READY;
  if (mode === 'ipc') {
    const send = process.send?.bind(process);
    if (!send) {
      throw new Error(
        'smoothd/worker: SMOOTHD_READY=ipc but this process has no IPC channel (process.send is undefined); ' +
          'start node directly (or exec it from a wrapper) so it inherits the channel',
      );
    }
    await new Promise<void>((resolve, reject) => {
      send('ready', undefined, undefined, (err: Error | null) => (err ? reject(err) : resolve()));
    });
  } else if (mode === 'notify') {
    if (!process.env.NOTIFY_SOCKET) throw new Error('smoothd/worker: SMOOTHD_READY=notify but NOTIFY_SOCKET is not set');
    // smoothd attributes by socket: no need to wait on the barrier.
    await runSystemdNotify(['--ready', '--no-block']);
  } else if (mode === undefined && process.env.NOTIFY_SOCKET) {
    // Run directly by systemd (Type=notify): let systemd-notify wait for the barrier.
    await runSystemdNotify(['--ready']);
  }
  // Anything else is a duration: ready once alive long enough, nothing to send.
}

// ---------------------------------------------------------------------------
// Process-wide exit coordination (several servers in one process)

interface Entry {
  finished: boolean;
  code: number;
  exit: boolean;
}

const entries = new Set<Entry>();

function maybeExit(): void {
  let exit = false;
  let code = 0;
  for (const e of entries) {
    if (!e.finished) return;
    exit ||= e.exit;
    code = Math.max(code, e.code);
  }
  // Let `drained` handlers run before the process goes.
  if (exit) setImmediate(() => process.exit(code));
}

// ---------------------------------------------------------------------------
// Connection tracking and the drain

interface Conn {
  socket: net.Socket;
  /** Requests received and not yet answered (pipelining can make it > 1). */
  inflight: number;
  idleSince: number;
  /** socket.bytesRead when it went idle: more means a request is arriving. */
  bytesAtIdle: number;
  /** During a drain: from this moment on (performance.now()) its responses carry Connection: close. */
  closeAt: number;
  timer: NodeJS.Timeout | null;
}

interface Closable {
  close(): void;
  destroy(): void;
}

type Kind = 'http1' | 'http2' | 'net';

function kindOf(server: net.Server): Kind {
  const s = server as unknown as Record<string, unknown>;
  if (typeof s.closeIdleConnections === 'function') return 'http1'; // http.Server, https.Server
  if (typeof s.updateSettings === 'function') return 'http2'; // http2 servers
  return 'net';
}

function isTls(server: net.Server): boolean {
  return typeof (server as unknown as Record<string, unknown>).setSecureContext === 'function';
}

const now = (): number => performance.now();

/** Node frees the HTTP parser of a socket handed to an 'upgrade' or 'connect' listener. */
function isUpgraded(socket: net.Socket): boolean {
  return 'parser' in socket && (socket as unknown as { parser: unknown }).parser === null;
}

/** Make a response that has not sent its headers go out with `Connection: close` while draining. */
function closeHeaders(res: ServerResponse, args: unknown[]): unknown[] {
  res.shouldKeepAlive = false;
  res.setHeader('connection', 'close');
  // Headers passed to writeHead() override setHeader(): drop a Connection entry there.
  const index = typeof args[1] === 'string' ? 2 : 1;
  const headers = args[index];
  const isConnection = (key: unknown): boolean => typeof key === 'string' && key.toLowerCase() === 'connection';
  if (Array.isArray(headers)) {
    const copy: unknown[] = [];
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const pair of headers as unknown[][]) if (!isConnection(pair[0])) copy.push(pair);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) {
        if (!isConnection(headers[i])) copy.push(headers[i], headers[i + 1]);
      }
    }
    const out = args.slice();
    out[index] = copy;
    return out;
  }
  if (headers !== null && typeof headers === 'object' && Object.keys(headers).some(isConnection)) {
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(headers)) if (!isConnection(k)) copy[k] = v;
    const out = args.slice();
    out[index] = copy;
    return out;
  }
  return args;
}

interface Drainer {
  start(reason: DrainReason): Promise<void>;
  readonly draining: boolean;
  readonly drained: Promise<void>;
  /** Remove every listener the kit added (listen failed, the drain ended, or the app closed the server itself). */
  dispose(): void;
  /** Also run `fn` on dispose (process-level listeners added by listen()). */
  onDispose(fn: () => void): void;
}

function createDrainer(server: net.Server, options: ListenOptions, entry: Entry, log: (m: string) => void): Drainer {
  const kind = kindOf(server);
  const tls = isTls(server);
  const idleGraceMs = options.idleGraceMs ?? DEFAULT_IDLE_GRACE_MS;
  const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  // The last close must leave room for the idle grace before the drain timeout.
  const closeSpreadMs = Math.max(0, Math.min(options.closeSpreadMs ?? 0, drainTimeoutMs - idleGraceMs));

  const raw = new Set<net.Socket>(); // every accepted connection
  const conns = new Map<net.Socket, Conn>(); // HTTP/1 connections (the TLS socket for https)
  const sessions = new Set<Closable>(); // HTTP/2 sessions

  let draining = false;
  let finishing = false;
  let startedAt = 0;
  let reason: DrainReason = 'manual';
  let timeout: NodeJS.Timeout | null = null;
  let startHook: Promise<void> = Promise.resolve();
  let resolveDrained!: () => void;
  const drained = new Promise<void>((resolve) => (resolveDrained = resolve));

  function scheduleIdleClose(conn: Conn): void {
    if (!draining || finishing || conn.timer || conn.inflight > 0) return;
    const at = Math.max(conn.closeAt, Math.max(conn.idleSince, startedAt) + idleGraceMs);
    conn.timer = setTimeout(() => {
      conn.timer = null;
      // Node runs due timers before it reads sockets: after a busy moment of
      // the event loop a request may already wait in the kernel unread, and
      // closing now would answer it with RST. Decide after one more poll
      // phase (setImmediate), which reads it.
      setImmediate(() => closeIfStillIdle(conn));
    }, Math.max(0, at - now()));
    conn.timer.unref();
  }

  function closeIfStillIdle(conn: Conn): void {
    // A request came meanwhile (inflight), or came and went and scheduled a new grace (timer).
    if (finishing || conn.socket.destroyed || conn.inflight > 0 || conn.timer !== null || isUpgraded(conn.socket)) return;
    if (conn.socket.bytesRead > conn.bytesAtIdle) {
      // A request is arriving: it will be answered with Connection: close.
      conn.bytesAtIdle = conn.socket.bytesRead;
      conn.idleSince = now();
      scheduleIdleClose(conn);
      return;
    }
    conn.socket.destroy();
  }

  /** A random point of the close-spread window (the drain's start when there is none). */
  function closeAtOf(): number {
    return startedAt + (closeSpreadMs > 0 ? Math.random() * closeSpreadMs : 0);
  }

  function trackConn(socket: net.Socket): Conn {
    const conn: Conn = { socket, inflight: 0, idleSince: now(), bytesAtIdle: socket.bytesRead, closeAt: draining ? closeAtOf() : 0, timer: null };
    conns.set(socket, conn);
    socket.once('close', () => {
      if (conn.timer) clearTimeout(conn.timer);
      conns.delete(socket);
    });
    scheduleIdleClose(conn);
    return conn;
  }

  const onConnection = (socket: net.Socket): void => {
    raw.add(socket);
    socket.once('close', () => {
      raw.delete(socket);
      check();
    });
    if (kind === 'http1' && !tls) trackConn(socket);
  };

  const onSecureConnection = (socket: net.Socket): void => {
    if (!conns.has(socket)) trackConn(socket);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (!(res instanceof ServerResponse)) return; // HTTP/2 compatibility API: sessions handle it
    const socket = req.socket;
    const conn = conns.get(socket) ?? trackConn(socket);
    conn.inflight++;
    if (conn.timer) {
      clearTimeout(conn.timer);
      conn.timer = null;
    }
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      if (((draining && now() >= conn.closeAt) || shouldShed()) && !this.headersSent) args = closeHeaders(this, args);
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['writeHead'];
    let done = false;
    const onDone = (): void => {
      if (done) return;
      done = true;
      if (res.writableFinished) countResponse(res.statusCode);
      conn.inflight--;
      if (conn.inflight === 0) {
        conn.idleSince = now();
        conn.bytesAtIdle = socket.bytesRead;
        scheduleIdleClose(conn);
      }
    };
    res.once('finish', onDone);
    res.once('close', onDone);
  };

  const onSession = (session: Closable): void => {
    sessions.add(session);
    (session as unknown as net.Socket).once('close', () => sessions.delete(session));
    if (draining) session.close();
  };

  const onServerClose = (): void => {
    // The app closed the server itself: it no longer needs the kit.
    if (!draining) {
      dispose();
      entries.delete(entry);
      maybeExit();
    }
  };

  server.on('connection', onConnection);
  if (kind === 'http1') {
    if (tls) server.on('secureConnection', onSecureConnection);
    // Prepended, so that responses are hooked before the app's handler runs.
    server.prependListener('request', onRequest);
  } else if (kind === 'http2') {
    server.on('session', onSession);
    // HTTP/1 requests of an `allowHTTP1` server come as 'request' too. Adding the
    // first 'request' listener would switch on the compatibility API: only join one.
    if (server.listenerCount('request') > 0) server.prependListener('request', onRequest);
  }
  server.on('close', onServerClose);

  const cleanups: Array<() => void> = [];
  let disposed = false;
  function dispose(): void {
    if (disposed) return;
    disposed = true;
    for (const fn of cleanups) fn();
    server.off('connection', onConnection);
    server.off('secureConnection', onSecureConnection);
    server.off('request', onRequest);
    server.off('session', onSession);
    server.off('close', onServerClose);
  }

  function check(): void {
    if (!draining || finishing || raw.size > 0 || server.listening) return;
    void finish(false, 0);
  }

  function forceClose(): void {
    if (finishing) return;
    let destroyed = 0;
    for (const socket of raw) {
      if (!socket.destroyed) destroyed++;
      socket.destroy();
    }
    for (const conn of conns.values()) conn.socket.destroy();
    for (const session of sessions) session.destroy();
    log(`drain timeout (${drainTimeoutMs} ms): destroyed ${destroyed} connection(s) still open`);
    void finish(true, destroyed);
  }

  async function finish(timedOut: boolean, destroyed: number): Promise<void> {
    finishing = true;
    if (timeout) clearTimeout(timeout);
    for (const conn of conns.values()) if (conn.timer) clearTimeout(conn.timer);
    let code = timedOut ? 1 : 0;
    await startHook;
    if (options.onDrain) {
      try {
        await options.onDrain({ reason, timedOut, destroyed, durationMs: Math.round(now() - startedAt) });
      } catch (err) {
        log(`onDrain failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        code = 1;
      }
    }
    dispose();
    entry.finished = true;
    entry.code = code;
    resolveDrained();
    maybeExit();
  }

  function start(why: DrainReason): Promise<void> {
    if (draining) return drained;
    draining = true;
    startedAt = now();
    reason = why;
    // Stop accepting without http.Server#close(), which would destroy idle
    // (and just-accepted) connections at once.
    if (server.listening) net.Server.prototype.close.call(server);
    if (options.onDrainStart) {
      const hook = options.onDrainStart;
      startHook = (async () => {
        try {
          await hook(why);
        } catch (err) {
          log(`onDrainStart failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        }
      })();
    }
    for (const conn of conns.values()) {
      conn.closeAt = closeAtOf();
      scheduleIdleClose(conn);
    }
    for (const session of sessions) session.close();
    timeout = setTimeout(forceClose, drainTimeoutMs);
    timeout.unref();
    check();
    return drained;
  }

  return {
    start,
    get draining() {
      return draining;
    },
    drained,
    dispose,
    onDispose: (fn) => void cleanups.push(fn),
  };
}

// ---------------------------------------------------------------------------
// listen()

/**
 * Listen on the socket smoothd passed down (or the fallback address outside
 * smoothd), signal readiness, and drain gracefully on the stop signal or when
 * the supervisor goes away. See the top of this file.
 */
export async function listen(server: net.Server, options: ListenOptions = {}): Promise<Listening> {
  const log = options.log ?? defaultLog;
  const warmup = parseWarmup(options.warmup);
  const inherited = findInheritedSocket(options.name, log);
  const entry: Entry = { finished: false, code: 0, exit: options.exit ?? true };
  // Before the drainer hooks the server: its request counting (stats) never sees warm-up answers.
  if (warmup) await warmUp(server, warmup, log);
  // Track connections from the first accept on.
  const drainer = createDrainer(server, options, entry, log);

  try {
    if (inherited) {
      try {
        // The handle form: {fd} (a backlog inside the object would be ignored).
        const handle = { fd: inherited.fd };
        await listenOnce(server, () =>
          options.backlog === undefined ? server.listen(handle) : server.listen(handle, options.backlog),
        );
      } catch (err) {
        const what = inherited.name === null ? '' : ` ("${inherited.name}")`;
        const message = err instanceof Error ? err.message : String(err);
        throw new Error(`smoothd/worker: cannot listen on inherited fd ${inherited.fd}${what}: ${message}`, {
          cause: err,
        });
      }
    } else {
      const { port, host } = fallbackAddress(options.fallback);
      await listenOnce(server, () => server.listen({ port, host, backlog: options.backlog }));
    }
  } catch (err) {
    drainer.dispose();
    throw err;
  }
  entries.add(entry);

  // Stop triggers.
  const signals = options.signals ?? DEFAULT_SIGNALS;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!drainer.draining) {
      void drainer.start(signal);
    } else if (signal === 'SIGINT') {
      log('second SIGINT during the drain: exiting now');
      process.exit(130);
    }
  };
  for (const signal of signals) process.on(signal, onSignal);
  const onDisconnect = (): void => void drainer.start('disconnect');
  const hasChannel = typeof process.send === 'function';
  if (hasChannel) {
    process.on('disconnect', onDisconnect);
    // The supervisor's channel must not keep a drained worker alive.
    process.channel?.unref();
  }
  drainer.onDispose(() => {
    for (const signal of signals) process.off(signal, onSignal);
    if (hasChannel) process.off('disconnect', onDisconnect);
  });

  startStatsReporter();
  if (options.ready ?? true) await ready();

  return {
    fd: inherited?.fd ?? null,
    name: inherited?.name ?? null,
    address: server.address(),
    drain: () => drainer.start('manual'),
    drained: drainer.drained,
  };
}
