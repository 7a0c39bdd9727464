/**
 * The Node worker kit (smoothd/worker) with real processes and real sockets.
 *
 * The harness does what smoothd does: it binds a TCP socket without listening
 * (net._createServerHandle, DESIGN §9), passes it as fd 3 with LISTEN_FDS /
 * LISTEN_FDNAMES / LISTEN_PID (through `sh -c 'LISTEN_PID=$$ exec ...'`) and an
 * IPC channel after the listen fds, and waits for the 'ready' message.
 * Workers run test/fixtures/worker-app.mjs against the built dist/worker.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURE = path.join(root, 'test/fixtures/worker-app.mjs');
const EXAMPLE_DIR = path.join(root, 'examples/hello');
const KIT_SRC = path.join(root, 'src/worker/index.ts');
const KIT_JS = path.join(root, 'dist/worker/index.js');

// ---------------------------------------------------------------------------
// Harness

interface Bound {
  fd: number;
  port: number;
}

interface RawServerHandle {
  fd: number;
  close(): void;
  getsockname(out: { address?: string; port?: number }): number;
}

const handles: RawServerHandle[] = [];

/** Bind 127.0.0.1:0 without listening, the way smoothd holds its sockets. */
function bindSocket(): Bound {
  const create = (net as unknown as { _createServerHandle: (h: string, p: number, t: number) => RawServerHandle | number })
    ._createServerHandle;
  const handle = create('127.0.0.1', 0, 4);
  if (typeof handle === 'number') throw new Error(`bind failed: errno ${handle}`);
  handles.push(handle);
  const out: { port?: number } = {};
  const err = handle.getsockname(out);
  if (err !== 0 || typeof out.port !== 'number') throw new Error(`getsockname failed: ${err}`);
  return { fd: handle.fd, port: out.port };
}

interface AppEvent {
  event: string;
  pid: number;
  t: number;
  [key: string]: unknown;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

interface Worker {
  child: ChildProcess;
  pid: number;
  events: AppEvent[];
  stdout(): string;
  stderr(): string;
  /** performance.now() when 'ready' arrived over IPC; rejects if the worker exits first. */
  ready: Promise<number>;
  exit: Promise<Exit>;
  /** Resolves once `count` events named `name` were printed; rejects if the worker exits first. */
  waitEvent(name: string, count?: number): Promise<AppEvent>;
}

const children: ChildProcess[] = [];
const cleanups: Array<() => void | Promise<void>> = [];

interface StartOptions {
  script?: string;
  cwd?: string;
  /** Inherited listen fds (3, 4, ...); with them come LISTEN_* and SMOOTHD_READY=ipc. */
  fds?: number[];
  names?: string[];
  env?: Record<string, string>;
  /** Run through `sh -c 'LISTEN_PID=$$ exec ...'` (default when fds are given). */
  wrap?: boolean;
}

function startWorker(options: StartOptions = {}): Worker {
  const script = options.script ?? FIXTURE;
  const fds = options.fds ?? [];
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(LISTEN_|SMOOTHD_|NOTIFY_SOCKET$|PORT$|APP_|HELLO_|RELEASE$)/.test(k)) continue;
    env[k] = v;
  }
  if (fds.length > 0) {
    env.LISTEN_FDS = String(fds.length);
    env.LISTEN_FDNAMES = (options.names ?? fds.map((_, i) => `listen${i}`)).join(':');
    env.SMOOTHD_READY = 'ipc';
  }
  Object.assign(env, options.env);
  // The IPC channel comes after the listen fds, so the first listen socket is fd 3.
  const stdio: Array<'ignore' | 'pipe' | 'ipc' | number> = ['ignore', 'pipe', 'pipe', ...fds, 'ipc'];
  const wrap = options.wrap ?? fds.length > 0;
  const child = wrap
    ? spawn('/bin/sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, script], { stdio, env, cwd: options.cwd ?? root })
    : spawn(process.execPath, [script], { stdio, env, cwd: options.cwd ?? root });
  children.push(child);
  if (child.pid === undefined) throw new Error('spawn failed');
  const pid = child.pid;

  let out = '';
  let err = '';
  let partial = '';
  const events: AppEvent[] = [];
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line) as AppEvent);
    }
    for (const w of waiters.slice()) w();
  });
  child.stderr!.on('data', (chunk: string) => (err += chunk));

  const exit = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() }));
  });
  const exitedEarly = (what: string) =>
    exit.then((e) => {
      throw new Error(`worker ${pid} exited (code ${e.code}, signal ${e.signal}) before ${what}; stderr:\n${err}`);
    });
  const ready = Promise.race([
    new Promise<number>((resolve) => {
      child.on('message', (m) => {
        if (m === 'ready') resolve(performance.now());
      });
    }),
    exitedEarly('ready'),
  ]);
  ready.catch(() => {}); // tests that expect no readiness do not await it

  function waitEvent(name: string, count = 1): Promise<AppEvent> {
    const found = new Promise<AppEvent>((resolve) => {
      const check = (): void => {
        const matching = events.filter((e) => e.event === name);
        if (matching.length >= count) {
          waiters.splice(waiters.indexOf(check), 1);
          resolve(matching[count - 1]!);
        }
      };
      waiters.push(check);
      check();
    });
    // Stdout is flushed before 'exit' is seen only after 'close'; check again then.
    const closed = once(child, 'close').then(() => {
      const matching = events.filter((e) => e.event === name);
      if (matching.length >= count) return matching[count - 1]!;
      throw new Error(`worker ${pid} exited before event ${name}; stderr:\n${err}`);
    });
    return Promise.race([found, closed]);
  }

  return { child, pid, events, stdout: () => out, stderr: () => err, ready, exit, waitEvent };
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  const waiting: Array<Promise<unknown>> = [];
  for (const child of children.splice(0)) {
    if (alive(child) && child.pid !== undefined) {
      waiting.push(once(child, 'exit'));
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await Promise.all(waiting);
  for (const handle of handles.splice(0)) handle.close();
});

// ---------------------------------------------------------------------------
// Clients

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(port: number, urlPath = '/', agent: http.Agent | false = false): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
  });
}

/** A hand-driven HTTP/1.1 keep-alive connection, to see exactly when it closes. */
interface RawConn {
  socket: net.Socket;
  closedAt: Promise<number>;
  /** Send a GET (or `raw` bytes instead) and wait for one response. */
  request(urlPath: string, raw?: string): Promise<Response>;
}

async function rawConnect(port: number, secure = false): Promise<RawConn> {
  const socket = secure
    ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
    : net.connect({ host: '127.0.0.1', port });
  cleanups.push(() => void socket.destroy());
  socket.on('error', () => {}); // a close is what the tests look at
  await once(socket, secure ? 'secureConnect' : 'connect');
  const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  let buf = '';
  let pending: { resolve: (r: Response) => void; reject: (e: Error) => void } | null = null;
  socket.setEncoding('utf8');
  const parse = (): void => {
    if (!pending) return;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const [statusLine, ...lines] = buf.slice(0, end).split('\r\n');
    const headers: http.IncomingHttpHeaders = {};
    for (const line of lines) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (buf.length < end + 4 + length) return;
    const body = buf.slice(end + 4, end + 4 + length);
    buf = buf.slice(end + 4 + length);
    const p = pending;
    pending = null;
    p.resolve({ status: Number(statusLine!.split(' ')[1]), headers, body });
  };
  socket.on('data', (d: string) => {
    buf += d;
    parse();
  });
  let closed = false;
  socket.on('close', () => {
    closed = true;
    pending?.reject(new Error('connection closed before the response'));
  });
  return {
    socket,
    closedAt,
    request(urlPath, raw) {
      return new Promise<Response>((resolve, reject) => {
        if (closed) return reject(new Error('connection already closed'));
        pending = { resolve, reject };
        socket.write(raw ?? `GET ${urlPath} HTTP/1.1\r\nHost: test\r\n\r\n`);
      });
    },
  };
}

interface LoadStats {
  ok: number;
  failed: number;
  errors: Map<string, number>;
  byPid: Map<number, number>;
}

interface Load {
  stats: LoadStats;
  until(pred: (s: LoadStats) => boolean): Promise<void>;
  stop(): Promise<LoadStats>;
}

/** `clients` loops requesting GET / back to back until stopped. */
function startLoad(port: number, clients: number, keepAlive: boolean): Load {
  const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: clients }) : false;
  const stats: LoadStats = { ok: 0, failed: 0, errors: new Map(), byPid: new Map() };
  const waiters: Array<{ pred: (s: LoadStats) => boolean; resolve: () => void }> = [];
  let stopped = false;
  const fail = (why: string): void => {
    stats.failed++;
    stats.errors.set(why, (stats.errors.get(why) ?? 0) + 1);
  };
  const loop = async (): Promise<void> => {
    while (!stopped) {
      try {
        const res = await get(port, '/', agent);
        const m = /^ok (\d+)\n$/.exec(res.body);
        if (res.status === 200 && m) {
          stats.ok++;
          const pid = Number(m[1]);
          stats.byPid.set(pid, (stats.byPid.get(pid) ?? 0) + 1);
        } else {
          fail(`status ${res.status}`);
        }
      } catch (err) {
        fail((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
      for (const w of waiters.slice()) {
        if (w.pred(stats)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    }
  };
  const loops = Array.from({ length: clients }, loop);
  const stop = async (): Promise<LoadStats> => {
    stopped = true;
    await Promise.all(loops);
    if (agent) agent.destroy();
    return stats;
  };
  cleanups.push(async () => void (await stop()));
  return {
    stats,
    until: (pred) =>
      pred(stats) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ pred, resolve })),
    stop,
  };
}

// ---------------------------------------------------------------------------

beforeAll(() => {
  if (!fs.existsSync(KIT_JS)) throw new Error(`${KIT_JS} is missing: run \`npx tsc -p tsconfig.json\` first`);
  if (fs.statSync(KIT_JS).mtimeMs < fs.statSync(KIT_SRC).mtimeMs) {
    throw new Error(`${KIT_JS} is older than ${KIT_SRC}: run \`npx tsc -p tsconfig.json\` first`);
  }
});

describe('smoothd/worker: inherited socket and readiness', () => {
  it('sends ready over IPC only once the inherited socket listens, then answers', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_START_DELAY_MS: '400' } });
    // Bound but not listening yet: the kernel refuses.
    const early = net.connect({ host: '127.0.0.1', port: sock.port });
    const [err] = (await once(early, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
    await w.ready;
    const res = await get(sock.port);
    expect(res.status).toBe(200);
    expect(res.body).toBe(`ok ${w.pid}\n`);
    const listening = await w.waitEvent('listening');
    expect(listening.fd).toBe(3);
    expect(listening.name).toBe('listen0');
    expect(listening.address).toMatchObject({ address: '127.0.0.1', port: sock.port });
  });

  it('picks the socket named in LISTEN_FDNAMES', async () => {
    const admin = bindSocket();
    const web = bindSocket();
    const w = startWorker({ fds: [admin.fd, web.fd], names: ['admin', 'http'], env: { APP_LISTEN_NAME: 'http' } });
    await w.ready;
    expect((await get(web.port)).body).toBe(`ok ${w.pid}\n`);
    const listening = await w.waitEvent('listening');
    expect(listening).toMatchObject({ fd: 4, name: 'http' });
  });

  it('fails clearly, without readiness, when the named socket is missing', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], names: ['admin'], env: { APP_LISTEN_NAME: 'metrics' } });
    await expect(w.ready).rejects.toThrow(/exited/);
    const exit = await w.exit;
    expect(exit.code).not.toBe(0);
    expect(w.stderr()).toContain('no inherited socket named "metrics"; available: admin');
  });

  it('listens on the fallback address outside smoothd (PORT)', async () => {
    const w = startWorker({ env: { PORT: '0' } });
    const listening = await w.waitEvent('listening');
    expect(listening.fd).toBeNull();
    expect(listening.name).toBeNull();
    const address = listening.address as net.AddressInfo;
    expect(address.address).toBe('127.0.0.1');
    expect((await get(address.port)).body).toBe(`ok ${w.pid}\n`);
    w.child.kill('SIGTERM');
    expect((await w.exit).code).toBe(0);
  });

  it('ignores LISTEN_FDS meant for another process (LISTEN_PID mismatch) and warns', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], wrap: false, env: { LISTEN_PID: '1', PORT: '0', SMOOTHD_READY: '1s' } });
    const listening = await w.waitEvent('listening');
    expect(listening.fd).toBeNull();
    expect(w.stderr()).toContain('LISTEN_PID=1 is not this process');
    expect((await get((listening.address as net.AddressInfo).port)).status).toBe(200);
  });
});

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('smoothd/worker: ready: notify', () => {
  function tempDir(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-kit-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  // Node has no unix datagram sockets: a python3 one-liner plays smoothd's receiver.
  it.skipIf(!has('python3') || !has('systemd-notify'))('sends READY=1 to NOTIFY_SOCKET once listening', async () => {
    const socketPath = path.join(tempDir(), 'notify.sock');
    const receiver = spawn(
      'python3',
      [
        '-c',
        'import socket,sys\n' +
          's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.bind(sys.argv[1]); print("bound",flush=True)\n' +
          'while True: print(repr(s.recv(4096)),flush=True)',
        socketPath,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(receiver);
    receiver.stdout!.setEncoding('utf8');
    let got = '';
    const lines = (want: RegExp) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (want.test(got)) {
            receiver.stdout!.off('data', onData);
            resolve();
          }
        };
        const onData = (d: string): void => {
          got += d;
          check();
        };
        receiver.stdout!.on('data', onData);
        check();
      });
    await lines(/^bound\n/);
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { SMOOTHD_READY: 'notify', NOTIFY_SOCKET: socketPath } });
    await lines(/READY=1/);
    // listen() resolved only after systemd-notify succeeded.
    await w.waitEvent('listening');
    expect((await get(sock.port)).status).toBe(200);
  });

  it.skipIf(!has('systemd-notify'))('fails listen() clearly when the notification cannot be sent', async () => {
    const sock = bindSocket();
    const missing = path.join(tempDir(), 'nobody-here.sock');
    const w = startWorker({ fds: [sock.fd], env: { SMOOTHD_READY: 'notify', NOTIFY_SOCKET: missing } });
    const exit = await w.exit;
    expect(exit.code).not.toBe(0);
    expect(w.stderr()).toContain('`systemd-notify --ready --no-block` failed');
    expect(w.events.map((e) => e.event)).not.toContain('listening');
  });
});

describe('smoothd/worker: zero-loss swap under load', () => {
  // KIT_SWAPS=24 (with --testTimeout=120000) for a longer run.
  const SWAPS = Number(process.env.KIT_SWAPS ?? 4);
  const CLIENTS = 32;

  async function rollUnderLoad(keepAlive: boolean): Promise<void> {
    const sock = bindSocket();
    let current = startWorker({ fds: [sock.fd] });
    const workers = [current];
    await current.ready;
    const load = startLoad(sock.port, CLIENTS, keepAlive);
    const served = (w: Worker) => (s: LoadStats) => (s.byPid.get(w.pid) ?? 0) >= 200;
    await load.until(served(current));
    const drainMs: number[] = [];
    for (let i = 0; i < SWAPS; i++) {
      const next = startWorker({ fds: [sock.fd] });
      workers.push(next);
      await next.ready;
      const signalledAt = performance.now();
      current.child.kill('SIGTERM');
      const exit = await current.exit;
      expect(exit).toMatchObject({ code: 0, signal: null });
      drainMs.push(Math.round(exit.at - signalledAt));
      current = next;
      await load.until(served(current));
    }
    await delay(1500); // keep the load on the last worker a while longer
    const stats = await load.stop();
    const perWorker = workers.map((w) => stats.byPid.get(w.pid) ?? 0);
    console.log(
      `[kit] keepAlive=${keepAlive} clients=${CLIENTS} swaps=${SWAPS}: ${stats.ok} ok, ${stats.failed} failed` +
        ` ${JSON.stringify(Object.fromEntries(stats.errors))}; per worker ${perWorker.join('/')}; drain ms ${drainMs.join('/')}`,
    );
    expect(Object.fromEntries(stats.errors)).toEqual({});
    expect(stats.failed).toBe(0);
    for (const n of perWorker) expect(n).toBeGreaterThan(0);
  }

  it('loses no request with 32 keep-alive clients while workers are swapped', async () => {
    await rollUnderLoad(true);
  });

  it('loses no request with 32 clients without keep-alive while workers are swapped', async () => {
    await rollUnderLoad(false);
  });
});

describe('smoothd/worker: the drain', () => {
  it('finishes in-flight requests with Connection: close, then exits 0', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd] });
    await w.ready;
    const agent = new http.Agent({ keepAlive: true });
    cleanups.push(() => agent.destroy());
    const plain = get(sock.port, '/slow?ms=800', agent);
    const explicit = get(sock.port, '/slow?ms=800&explicit=1', agent);
    await w.waitEvent('request', 2);
    w.child.kill('SIGTERM');
    await w.waitEvent('drain-start');
    for (const res of await Promise.all([plain, explicit])) {
      expect(res.status).toBe(200);
      expect(res.body).toBe(`slow ${w.pid}\n`);
      expect(res.headers.connection).toBe('close');
    }
    expect((await w.exit).code).toBe(0);
    expect(await w.waitEvent('drained')).toMatchObject({ reason: 'SIGTERM', timedOut: false, destroyed: 0 });
  });

  it('closes an idle keep-alive connection only after the grace; a busy one gets Connection: close', async () => {
    const GRACE = 1000; // the default
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd] });
    await w.ready;
    const idle = await rawConnect(sock.port);
    const active = await rawConnect(sock.port);
    expect((await idle.request('/')).headers.connection).toBe('keep-alive');
    expect((await active.request('/')).headers.connection).toBe('keep-alive');

    const signalledAt = performance.now();
    w.child.kill('SIGTERM');
    await w.waitEvent('drain-start');
    // The next request on an idle connection during the grace is answered, with Connection: close.
    const res = await active.request('/');
    expect(res.status).toBe(200);
    expect(res.headers.connection).toBe('close');
    const activeClosed = (await active.closedAt) - signalledAt;
    expect(activeClosed).toBeLessThan(GRACE / 2);
    // The idle one is closed by the worker once the grace is over, not before.
    const idleClosed = (await idle.closedAt) - signalledAt;
    expect(idleClosed).toBeGreaterThanOrEqual(GRACE - 5);
    expect(idleClosed).toBeLessThan(GRACE + 500);
    expect((await w.exit).code).toBe(0);
  });

  it('answers a request that reached an idle connection while the event loop was busy as its grace ran out (no RST)', async () => {
    // The race of a loaded worker: the idle connection's grace timer falls due
    // while the event loop is held, and the client's next request lands in the
    // kernel meanwhile. Node runs due timers before it reads sockets, so a
    // close decided in the timer alone sees no new byte, closes a socket with
    // unread data and the kernel answers the client with RST (ECONNRESET).
    const GRACE = 1000;
    const BLOCK = 1500;
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_IDLE_GRACE_MS: String(GRACE) } });
    await w.ready;
    const idle = await rawConnect(sock.port);
    const busy = await rawConnect(sock.port);
    expect((await idle.request('/')).headers.connection).toBe('keep-alive');
    expect((await busy.request('/')).headers.connection).toBe('keep-alive');
    w.child.kill('SIGTERM');
    const drainStart = await w.waitEvent('drain-start');
    const blocked = busy.request(`/block?ms=${BLOCK}`);
    const blocking = await w.waitEvent('blocking');
    const sentAt = Date.now();
    const answer = idle.request('/');
    // The race is set up only if the grace ends inside the block and the request arrives in it.
    expect(blocking.t, 'the block started after the grace had ended').toBeLessThan(drainStart.t + GRACE);
    expect(sentAt, 'the request was sent after the block').toBeLessThan(blocking.t + BLOCK);
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.headers.connection).toBe('close');
    expect((await blocked).status).toBe(200);
    expect((await w.exit).code).toBe(0);
  });

  /**
   * `clients` keep-alive connections each send a request every 10 ms until the
   * worker answers one with Connection: close; returns when each got it, in ms
   * after `since`, and how many requests failed.
   */
  async function untilClosed(port: number, clients: number, start: () => number): Promise<{ closes: number[]; failed: number; ok: number }> {
    const conns = await Promise.all(Array.from({ length: clients }, () => rawConnect(port)));
    for (const c of conns) expect((await c.request('/')).headers.connection).toBe('keep-alive');
    const since = start();
    let failed = 0;
    let ok = 0;
    const closes = await Promise.all(
      conns.map(async (c) => {
        for (;;) {
          try {
            const res = await c.request('/');
            if (res.status === 200) ok++;
            else failed++;
            if (res.headers.connection === 'close') return performance.now() - since;
          } catch {
            failed++;
            return Number.NaN;
          }
          await delay(10);
        }
      }),
    );
    return { closes, failed, ok };
  }

  it('closeSpreadMs spreads the Connection: close answers over the window; the drain still ends in its bound, nothing fails', async () => {
    const SPREAD = 2000;
    const DRAIN_TIMEOUT = 5000;
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_CLOSE_SPREAD_MS: String(SPREAD), APP_DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT) } });
    await w.ready;
    let signalledAt = 0;
    const { closes, failed, ok } = await untilClosed(sock.port, 20, () => {
      signalledAt = performance.now();
      w.child.kill('SIGTERM');
      return signalledAt;
    });
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(20);
    const sorted = [...closes].sort((a, b) => a - b);
    // 20 points drawn uniformly over 2 s: their range is under 1 s with a chance of ~4e-5.
    expect(sorted[sorted.length - 1]! - sorted[0]!, `close answers at ${sorted.map(Math.round).join(', ')} ms`).toBeGreaterThan(SPREAD / 2);
    // Each close comes at its point of the window: one request (10 ms apart) after it, plus a loaded machine's delay.
    expect(sorted[sorted.length - 1]!).toBeLessThan(SPREAD + 500);
    const exit = await w.exit;
    expect(exit.code).toBe(0);
    expect(exit.at - signalledAt).toBeLessThan(DRAIN_TIMEOUT);
    expect(await w.waitEvent('drained')).toMatchObject({ timedOut: false, destroyed: 0 });
  });

  it('a closeSpreadMs longer than the drain is cut to drainTimeoutMs - idleGraceMs: the drain still ends by itself', async () => {
    const DRAIN_TIMEOUT = 3000;
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_CLOSE_SPREAD_MS: '60000', APP_DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT) } });
    await w.ready;
    let signalledAt = 0;
    const { closes, failed } = await untilClosed(sock.port, 10, () => {
      signalledAt = performance.now();
      w.child.kill('SIGTERM');
      return signalledAt;
    });
    expect(failed).toBe(0);
    expect(Math.max(...closes)).toBeLessThan(DRAIN_TIMEOUT - 1000 + 500);
    const exit = await w.exit;
    expect(exit.code).toBe(0);
    expect(exit.at - signalledAt).toBeLessThan(DRAIN_TIMEOUT);
    expect(await w.waitEvent('drained')).toMatchObject({ timedOut: false, destroyed: 0 });
  });

  it('without closeSpreadMs every keep-alive client gets Connection: close at once', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd] });
    await w.ready;
    const { closes, failed } = await untilClosed(sock.port, 20, () => {
      const at = performance.now();
      w.child.kill('SIGTERM');
      return at;
    });
    expect(failed).toBe(0);
    expect(Math.max(...closes), `close answers at ${closes.map(Math.round).join(', ')} ms`).toBeLessThan(500);
    expect((await w.exit).code).toBe(0);
  });

  it('answers a connection accepted just before the drain whose request arrives after it (DESIGN §9)', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_LOG_CONNECTIONS: '1' } });
    await w.ready;
    const fresh = await rawConnect(sock.port);
    await w.waitEvent('connection'); // accepted by the worker, no byte sent yet
    w.child.kill('SIGTERM');
    await w.waitEvent('drain-start');
    const res = await fresh.request('/');
    expect(res.status).toBe(200);
    expect(res.headers.connection).toBe('close');
    expect((await w.exit).code).toBe(0);
  });

  it('does not cut a request whose headers are still arriving when the grace ends', async () => {
    const GRACE = 300;
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_IDLE_GRACE_MS: String(GRACE) } });
    await w.ready;
    const slowClient = await rawConnect(sock.port);
    expect((await slowClient.request('/')).status).toBe(200);
    w.child.kill('SIGTERM');
    await w.waitEvent('drain-start');
    slowClient.socket.write('GET / HTTP/1.1\r\n');
    await delay(GRACE + 150); // the grace ends while the request is half sent
    const res = await slowClient.request('/', 'Host: test\r\n\r\n');
    expect(res.status).toBe(200);
    expect(res.headers.connection).toBe('close');
    expect((await w.exit).code).toBe(0);
  });

  it('leaves upgraded connections (WebSocket-like) to the app', async () => {
    const GRACE = 100;
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_IDLE_GRACE_MS: String(GRACE) } });
    await w.ready;
    const c = net.connect({ host: '127.0.0.1', port: sock.port });
    cleanups.push(() => void c.destroy());
    c.setEncoding('utf8');
    await once(c, 'connect');
    c.write('GET / HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    const [head] = (await once(c, 'data')) as [string];
    expect(head).toMatch(/^HTTP\/1.1 101 /);
    w.child.kill('SIGTERM');
    await w.waitEvent('drain-start');
    await delay(GRACE * 4); // well past the grace: an upgraded connection is not "idle"
    c.write('ping');
    expect((await once(c, 'data'))[0]).toBe('ping');
    expect(alive(w.child)).toBe(true);
    c.end();
    expect((await w.exit).code).toBe(0);
  });

  it('with exit: false, drain() resolves and the process then ends by itself (IPC channel unref)', async () => {
    const sock = bindSocket();
    // A 'message' listener refs the IPC channel; the kit must unref it.
    const w = startWorker({ fds: [sock.fd], env: { APP_EXIT: '0', APP_ON_MESSAGE: '1' } });
    await w.ready;
    const res = await get(sock.port, '/drain');
    expect(res.body).toBe('draining\n');
    expect(res.headers.connection).toBe('close');
    expect(await w.waitEvent('drained')).toMatchObject({ reason: 'manual', timedOut: false });
    expect((await w.exit).code).toBe(0);
    expect(w.events.map((e) => e.event)).toContain('exit');
  });

  it('with several servers, signals ready once both listen and exits when both have drained', async () => {
    const a = bindSocket();
    const b = bindSocket();
    const w = startWorker({
      fds: [a.fd, b.fd],
      names: ['a', 'b'],
      env: { APP_LISTEN_NAME: 'a', APP_SECOND_NAME: 'b' },
    });
    await w.ready;
    // Both listen by the time 'ready' arrives.
    expect((await get(a.port)).body).toBe(`ok ${w.pid}\n`);
    expect((await get(b.port)).body).toBe(`ok ${w.pid}\n`);
    const slow = get(b.port, '/slow?ms=700');
    await w.waitEvent('request');
    w.child.kill('SIGTERM');
    const first = await w.waitEvent('drained');
    expect(first.server).toBeUndefined(); // the idle server is done at once...
    expect(alive(w.child)).toBe(true); // ...but the process waits for the second
    expect((await slow).status).toBe(200);
    expect((await w.exit).code).toBe(0);
    expect(w.events.filter((e) => e.event === 'drained')).toHaveLength(2);
  });

  it('bounds a stuck request by drainTimeoutMs, then exits 1', async () => {
    const TIMEOUT = 1500;
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_DRAIN_TIMEOUT_MS: String(TIMEOUT) } });
    await w.ready;
    const stuck = get(sock.port, '/hang');
    stuck.catch(() => {});
    await w.waitEvent('request');
    const signalledAt = performance.now();
    w.child.kill('SIGTERM');
    const exit = await w.exit;
    const took = exit.at - signalledAt;
    expect(exit.code).toBe(1);
    expect(took).toBeGreaterThanOrEqual(TIMEOUT - 5);
    expect(took).toBeLessThan(TIMEOUT + 1000);
    await expect(stuck).rejects.toThrow();
    expect(await w.waitEvent('drained')).toMatchObject({ timedOut: true, destroyed: 1 });
    expect(w.stderr()).toContain('drain timeout (1500 ms): destroyed 1 connection(s)');
  });

  it('exits at once (130) on a second SIGINT during the drain', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd] });
    await w.ready;
    const stuck = get(sock.port, '/hang');
    stuck.catch(() => {});
    await w.waitEvent('request');
    w.child.kill('SIGINT');
    await w.waitEvent('drain-start');
    const secondAt = performance.now();
    w.child.kill('SIGINT');
    const exit = await w.exit;
    expect(exit.code).toBe(130);
    expect(exit.at - secondAt).toBeLessThan(1000);
  });

  it('ignores repeated SIGTERMs during the drain: the in-flight request completes and the exit is 0', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd] });
    await w.ready;
    const slow = get(sock.port, '/slow?ms=1000');
    await w.waitEvent('request');
    w.child.kill('SIGTERM');
    await w.waitEvent('drain-start');
    // A wrapper that forwards signals sends more: without the kit's handler each would kill the process.
    w.child.kill('SIGTERM');
    w.child.kill('SIGTERM');
    expect((await slow).status).toBe(200);
    const exit = await w.exit;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(w.events.filter((e) => e.event === 'drain-start')).toHaveLength(1);
    expect(w.events.filter((e) => e.event === 'drained')).toHaveLength(1);
  });

  it('exits 1 when the onDrain hook fails, and says why on stderr', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_ON_DRAIN_THROW: 'database pool would not close' } });
    await w.ready;
    w.child.kill('SIGTERM');
    const exit = await w.exit;
    expect(exit).toMatchObject({ code: 1, signal: null });
    expect(await w.waitEvent('drained')).toMatchObject({ timedOut: false });
    expect(w.stderr()).toContain('onDrain failed: Error: database pool would not close');
  });

  it('drains and exits when the supervisor goes away (IPC channel closed)', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd] });
    await w.ready;
    const inflight = get(sock.port, '/slow?ms=500');
    await w.waitEvent('request');
    w.child.disconnect();
    expect(await w.waitEvent('drain-start')).toMatchObject({ reason: 'disconnect' });
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(res.headers.connection).toBe('close');
    expect((await w.exit).code).toBe(0);
  });

  it('drains HTTPS: in-flight request completes, idle TLS connection closed after the grace', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_KIND: 'https', APP_IDLE_GRACE_MS: '500' } });
    await w.ready;
    const idle = await rawConnect(sock.port, true);
    expect((await idle.request('/')).body).toBe(`ok ${w.pid}\n`);
    const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });
    cleanups.push(() => agent.destroy());
    const slow = new Promise<http.IncomingMessage>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: sock.port, path: '/slow?ms=800', agent }, resolve).on('error', reject);
    });
    await w.waitEvent('request');
    const signalledAt = performance.now();
    w.child.kill('SIGTERM');
    const res = await slow;
    res.resume();
    expect(res.statusCode).toBe(200);
    expect(res.headers.connection).toBe('close');
    const idleClosed = (await idle.closedAt) - signalledAt;
    expect(idleClosed).toBeGreaterThanOrEqual(500 - 5);
    const exit = await w.exit;
    expect(exit.code).toBe(0);
    expect(exit.at - signalledAt).toBeLessThan(3000);
  });

  it('drains HTTP/2 (h2c): GOAWAY, the open stream completes', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_KIND: 'h2c' } });
    await w.ready;
    const client = http2.connect(`http://127.0.0.1:${sock.port}`);
    cleanups.push(() => void client.destroy());
    client.on('error', () => {});
    const goaway = once(client, 'goaway');
    const second = client.request({ ':path': '/slow?ms=600' });
    second.setEncoding('utf8');
    let body = '';
    second.on('data', (c: string) => (body += c));
    const response = once(second, 'response');
    const ended = once(second, 'end');
    await w.waitEvent('request');
    const signalledAt = performance.now();
    w.child.kill('SIGTERM');
    await goaway;
    const [headers] = (await response) as [http2.IncomingHttpHeaders];
    expect(headers[':status']).toBe(200);
    await ended;
    expect(body).toBe(`slow ${w.pid}\n`);
    const exit = await w.exit;
    expect(exit.code).toBe(0);
    expect(exit.at - signalledAt).toBeLessThan(3000);
  });

  it('for a plain net server waits for connections to end on their own', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_KIND: 'net', APP_IDLE_GRACE_MS: '100' } });
    await w.ready;
    const c = net.connect({ host: '127.0.0.1', port: sock.port });
    cleanups.push(() => void c.destroy());
    c.setEncoding('utf8');
    await once(c, 'connect');
    c.write('a');
    expect((await once(c, 'data'))[0]).toBe('a');
    w.child.kill('SIGTERM');
    await w.waitEvent('drain-start');
    await delay(400); // well past idleGraceMs: a net connection must not be closed for being idle
    c.write('b');
    expect((await once(c, 'data'))[0]).toBe('b');
    expect(alive(w.child)).toBe(true);
    const endedAt = performance.now();
    c.end();
    const exit = await w.exit;
    expect(exit.code).toBe(0);
    expect(exit.at - endedAt).toBeLessThan(1000);
    expect(await w.waitEvent('drained')).toMatchObject({ timedOut: false });
  });
});

/** The TCP sockets process `pid` holds (from /proc/PID/fd and /proc/net/tcp{,6}): local port and state (0A = LISTEN). */
function tcpSocketsOf(pid: number): Array<{ port: number; state: string }> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const out: Array<{ port: number; state: string }> = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || !inodes.has(cols[9]!)) continue;
      out.push({ port: parseInt(cols[1]!.split(':')[1]!, 16), state: cols[3]! });
    }
  }
  return out;
}

describe('smoothd/worker: warmup', () => {
  it('sends the marked warm-up requests through the app before it listens on the inherited socket and reports ready', async () => {
    const sock = bindSocket();
    const warmup = { requests: 30, paths: ['/', '/slow?ms=1'], headers: { 'x-custom': 'yes' } };
    const w = startWorker({ fds: [sock.fd], env: { APP_WARMUP: JSON.stringify(warmup) } });
    await w.ready;
    const listening = await w.waitEvent('listening');
    const warm = w.events.filter((e) => e.event === 'warmup');
    expect(warm).toHaveLength(30);
    // Every one of them came while the server was not listening yet (and so before ready).
    expect(warm.every((e) => e.listening === false)).toBe(true);
    expect(warm.every((e) => e.custom === 'yes' && e.method === 'GET')).toBe(true);
    expect(warm.map((e) => e.path).slice(0, 4)).toEqual(['/', '/slow?ms=1', '/', '/slow?ms=1']);
    // Mostly keep-alive, every tenth on a fresh connection without it.
    expect(warm.filter((e) => e.connection === 'close')).toHaveLength(3);
    expect(listening.address).toMatchObject({ address: '127.0.0.1', port: sock.port });
    // Real requests are not marked.
    expect((await get(sock.port)).body).toBe(`ok ${w.pid}\n`);
    expect(w.events.filter((e) => e.event === 'warmup')).toHaveLength(30);
    expect(w.stderr()).toBe('');
  });

  it('keeps warm-up answers out of the request counters smoothd reads', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_WARMUP: '1' } });
    await w.ready;
    expect(w.events.filter((e) => e.event === 'warmup')).toHaveLength(10);
    // The counters at the time /stats is handled: no response finished before it.
    expect(JSON.parse((await get(sock.port, '/stats')).body)).toEqual({ requests: 0, errors: 0 });
    expect(JSON.parse((await get(sock.port, '/stats')).body)).toEqual({ requests: 1, errors: 0 });
  });

  it('closes its private listener and every warm-up connection before listening: one TCP socket is left, the inherited one', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_WARMUP: '1' } });
    await w.ready;
    expect(tcpSocketsOf(w.pid)).toEqual([{ port: sock.port, state: '0A' }]);
  });

  it('a warm-up answered 500 warns once and the worker still listens and reports ready', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_WARMUP: JSON.stringify({ requests: 20, paths: ['/', '/fail'] }) } });
    await w.ready;
    // Before any request of the test's own (whose connection would show up here).
    expect(tcpSocketsOf(w.pid)).toEqual([{ port: sock.port, state: '0A' }]);
    expect((await get(sock.port)).body).toBe(`ok ${w.pid}\n`);
    // It stops at the first failure: request 2.
    expect(w.events.filter((e) => e.event === 'warmup')).toHaveLength(2);
    const warnings = w.stderr().split('\n').filter((l) => l.includes('warmup'));
    expect(warnings).toEqual([
      'smoothd/worker: warmup failed at request 2 of 20 (GET /fail): answered 500; listening anyway (warm-up is an optimisation, not a health check)',
    ]);
  });

  it('a warm-up request that never answers is cut at timeoutMs, warns once, and the worker still becomes ready', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_WARMUP: JSON.stringify({ paths: ['/hang'], timeoutMs: 300 }) } });
    await w.ready;
    // Before any request of the test's own (whose connection would show up here).
    expect(tcpSocketsOf(w.pid)).toEqual([{ port: sock.port, state: '0A' }]);
    expect((await get(sock.port)).body).toBe(`ok ${w.pid}\n`);
    const warnings = w.stderr().split('\n').filter((l) => l.includes('warmup'));
    expect(warnings).toEqual([
      'smoothd/worker: warmup failed at request 1 of 10 (GET /hang): timed out after 300 ms (warmup.timeoutMs); listening anyway (warm-up is an optimisation, not a health check)',
    ]);
  });

  it('skips a TLS server with one warning and still serves', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_KIND: 'https', APP_WARMUP: '1' } });
    await w.ready;
    expect(w.events.filter((e) => e.event === 'warmup')).toHaveLength(0);
    expect(w.stderr()).toBe(
      'smoothd/worker: warmup skipped: it is a TLS (https) server; the kit warms up plain HTTP/1.1 servers (http.createServer) only\n',
    );
  });

  it('refuses a bad warmup option with a clear message before listening or reporting ready', async () => {
    const sock = bindSocket();
    const w = startWorker({ fds: [sock.fd], env: { APP_WARMUP: JSON.stringify({ paths: ['health'] }) } });
    await expect(w.ready).rejects.toThrow(/exited/);
    expect((await w.exit).code).not.toBe(0);
    expect(w.stderr()).toContain(
      `smoothd/worker: listen() option warmup.paths[0] is "health"; each path must be a string starting with '/'`,
    );
  });

  it('runs outside smoothd too (fallback address), before listening', async () => {
    const w = startWorker({ env: { PORT: '0', APP_WARMUP: JSON.stringify({ requests: 5 }) } });
    const listening = await w.waitEvent('listening');
    const warm = w.events.filter((e) => e.event === 'warmup');
    expect(warm).toHaveLength(5);
    expect(warm.every((e) => e.listening === false)).toBe(true);
    expect((await get((listening.address as net.AddressInfo).port)).body).toBe(`ok ${w.pid}\n`);
  });
});

describe('examples/hello', () => {
  it('answers through smoothd/worker (package self-reference) on the inherited socket', async () => {
    const sock = bindSocket();
    const w = startWorker({
      script: path.join(EXAMPLE_DIR, 'server.js'),
      cwd: EXAMPLE_DIR,
      fds: [sock.fd],
      env: { SMOOTHD_WORKER_ID: '7', SMOOTHD_GENERATION: '3', RELEASE: 'r42', HELLO_DELAY_MS: '150' },
    });
    await w.ready;
    const startedAt = performance.now();
    const res = await get(sock.port);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(145);
    expect(res.status).toBe(200);
    expect(res.body).toBe(`hello from worker 7 pid ${w.pid} generation 3 (release r42)\n`);
    w.child.kill('SIGTERM');
    expect((await w.exit).code).toBe(0);
  });

  it('refuses a HELLO_WARMUP that is not a number of requests, saying what it must be', async () => {
    const sock = bindSocket();
    const w = startWorker({ script: path.join(EXAMPLE_DIR, 'server.js'), cwd: EXAMPLE_DIR, fds: [sock.fd], env: { HELLO_WARMUP: 'yes' } });
    await expect(w.ready).rejects.toThrow(/exited/);
    expect(w.stderr()).toContain('HELLO_WARMUP must be a number of requests (0 turns warm-up off), got "yes"');
  });

  it('says release "dev" when RELEASE is not set', async () => {
    const sock = bindSocket();
    const w = startWorker({ script: path.join(EXAMPLE_DIR, 'server.js'), cwd: EXAMPLE_DIR, fds: [sock.fd] });
    await w.ready;
    expect((await get(sock.port)).body).toMatch(new RegExp(`^hello from worker \\S+ pid ${w.pid} generation \\S+ \\(release dev\\)\n$`));
  });
});
