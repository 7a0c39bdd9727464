/**
 * Real-process harness: starts the compiled smoothd with a config in a temp
 * folder, talks to it with the real smoothctl and a raw socket, drives HTTP
 * load, and kills by pid whatever a test leaves behind.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SMOOTHD = path.join(ROOT, 'bin/smoothd.js');
export const SMOOTHCTL = path.join(ROOT, 'bin/smoothctl.js');
export const FIXTURES = path.join(ROOT, 'test/fixtures');

/** Tracked pids with the start time they had when tracked (so a reused pid is never killed). */
const tracked = new Map<number, string | null>();
/** smoothctl children started by tests, killed on cleanup while they still run. */
const children = new Set<ChildProcess>();
/** Daemons started by `startDaemon` that `cleanup` has not stopped yet. */
const daemons = new Set<Daemon>();
/** Loads started by `startLoad` that are not stopped yet. */
const loads = new Set<Load>();

/** Field 22 of /proc/PID/stat: the start time in clock ticks since boot, or null when the pid is gone. */
export function startTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Remember a pid so `killAll` can clean it up even when a test fails. */
export function track(pid: number | undefined | null): void {
  if (pid && !tracked.has(pid)) tracked.set(pid, startTime(pid));
}

export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // A zombie (state Z) has exited; its parent has not reaped it yet.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * SIGKILL every tracked process and its process group, and every smoothctl
 * child still running. A pid whose start time changed was reused by another
 * process and is left alone. When the leader is gone its group can still hold
 * members (a wrapper's child): the kernel does not hand out a pid that is
 * still some group's id, so `-pid` then reaches only that old group.
 */
export function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  for (const [pid, started] of tracked) {
    const now = startTime(pid);
    if (now !== null && now !== started) continue;
    for (const target of now === null ? [-pid] : [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  tracked.clear();
}

/**
 * SIGTERM one daemon (by its pid, through its ChildProcess) and wait for its
 * exit; SIGKILL it if it has not exited within `graceMs`. Null, an already
 * exited daemon and a second call are fine.
 */
export async function stopDaemon(d: Daemon | null | undefined, graceMs = 5000): Promise<void> {
  if (!d) return;
  daemons.delete(d);
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return;
  d.proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), graceMs)));
  const how = await Promise.race([d.exit, late]);
  clearTimeout(timer);
  if (how === 'late') {
    d.proc.kill('SIGKILL');
    await d.exit;
  }
}

/** A child process the test started itself (e.g. a `smoothctl logs -f` follower): `cleanup` kills it if it still runs. */
export function adopt<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * The cleanup after every integration test (`afterEach(cleanup)`), also when it
 * failed: stops the loads, stops every daemon `startDaemon` started (SIGTERM,
 * then SIGKILL after 5 s), then `killAll` (tracked pids and their groups,
 * smoothctl children and adopted ones). Everything by pid, never by name.
 */
export async function cleanup(): Promise<void> {
  await Promise.all([...loads].map((l) => l.stop()));
  await Promise.all([...daemons].map((d) => stopDaemon(d)));
  killAll();
}

export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function tempDir(prefix = 'smoothd-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface Daemon {
  proc: ChildProcess;
  pid: number;
  dir: string;
  socket: string;
  configPath: string;
  logs: Record<string, unknown>[];
  stderr: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  rpc(method: string, params?: unknown): Promise<any>;
  status(): Promise<any>;
  workerPids(group?: string): Promise<number[]>;
  writeConfig(yaml: string): void;
}

export interface StartOptions {
  /** Wait until every worker is ready (default true). */
  waitReady?: boolean;
  dir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Run smoothd through this command prefix (e.g. setpriv to drop privileges). */
  wrap?: string[];
}

export async function startDaemon(configYaml: string, opts: StartOptions = {}): Promise<Daemon> {
  const dir = opts.dir ?? tempDir();
  const configPath = path.join(dir, 'smoothd.yaml');
  fs.writeFileSync(configPath, configYaml);
  const socket = path.join(dir, 'ctl.sock');
  const argv = [process.execPath, SMOOTHD, '--config', configPath, '--socket', socket, '--log-format', 'json', '--log-level', 'debug', ...(opts.args ?? [])];
  const full = [...(opts.wrap ?? []), ...argv];
  const proc = spawn(full[0]!, full.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  track(proc.pid);
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (typeof entry.pid === 'number' && entry.workerId !== undefined) track(entry.pid);
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  proc.stderr!.on('data', (b: Buffer) => stderr.push(b.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const d: Daemon = {
    proc,
    pid: proc.pid!,
    dir,
    socket,
    configPath,
    logs,
    stderr,
    exit,
    rpc: (method, params) => rpc(socket, method, params),
    status: () => rpc(socket, 'status', {}),
    async workerPids(group) {
      const s = await d.status();
      return s.groups
        .filter((g: any) => !group || g.name === group)
        .flatMap((g: any) => g.workers.filter((w: any) => w.pid).map((w: any) => w.pid as number));
    },
    writeConfig(yaml) {
      fs.writeFileSync(configPath, yaml);
    },
  };
  daemons.add(d);
  void exit.then(() => daemons.delete(d));
  if (opts.waitReady !== false) {
    await Promise.race([
      waitFor('smoothd to report every worker ready', () => logs.some((l) => l.msg === 'every worker is ready'), 15_000),
      exit.then((e) => {
        throw new Error(`smoothd exited during start (${JSON.stringify(e)}): ${stderr.join('')}`);
      }),
    ]);
    for (const pid of await d.workerPids()) track(pid);
  }
  return d;
}

/**
 * One JSON-RPC call over the control socket; notifications go to `onNote`.
 * Rejects with a message naming the method when no reply comes within
 * `timeoutMs` (default 30 s), so a hung daemon fails the test instead of hanging it.
 */
export function rpc(socket: string, method: string, params?: unknown, onNote?: (n: any) => void, timeoutMs = 30_000): Promise<any> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`rpc ${method} on ${socket}: no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    c.on('close', () => clearTimeout(timer));
    let buf = '';
    c.on('data', (b) => {
      buf += b.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.id === undefined) {
          onNote?.(msg);
          continue;
        }
        clearTimeout(timer);
        c.end();
        if (msg.error) reject(Object.assign(new Error(msg.error.message), msg.error));
        else resolve(msg.result);
      }
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: params ?? {} })}\n`);
  });
}

export interface CtlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real smoothctl; the child is tracked, so `killAll` ends it if a test fails first. */
export function smoothctl(socket: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CtlResult> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [SMOOTHCTL, '--socket', socket, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      children.delete(child);
      const code = err ? ((err as { code?: unknown }).code as number | null) ?? null : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
    children.add(child);
  });
}

export interface Load {
  ok: number;
  failed: number;
  errors: Map<string, number>;
  bodies: Map<string, number>;
  stop(): Promise<void>;
}

/** Continuous HTTP load: `concurrency` loops, each sending one request after another. */
export function startLoad(port: number, opts: { concurrency?: number; keepAlive?: boolean; path?: string } = {}): Load {
  const agent = opts.keepAlive ? new http.Agent({ keepAlive: true, maxSockets: opts.concurrency ?? 8 }) : false;
  const load: Load = { ok: 0, failed: 0, errors: new Map(), bodies: new Map(), stop: async () => undefined };
  let running = true;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: opts.path ?? '/', agent, timeout: 10_000 }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          if (res.statusCode === 200) {
            load.ok += 1;
            const key = body.split(' pid ')[0] ?? body;
            load.bodies.set(key, (load.bodies.get(key) ?? 0) + 1);
          } else {
            load.failed += 1;
            load.errors.set(`HTTP ${res.statusCode}`, (load.errors.get(`HTTP ${res.statusCode}`) ?? 0) + 1);
          }
          resolve();
        });
        res.on('error', (e) => fail(e, resolve));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => fail(e, resolve));
    });
  const fail = (e: Error, done: () => void): void => {
    load.failed += 1;
    const k = (e as NodeJS.ErrnoException).code ?? e.message;
    load.errors.set(k, (load.errors.get(k) ?? 0) + 1);
    done();
  };
  const loops = [...Array(opts.concurrency ?? 8)].map(async () => {
    while (running) await one();
  });
  load.stop = async () => {
    loads.delete(load);
    running = false;
    await Promise.all(loops);
    if (agent) agent.destroy();
  };
  loads.add(load);
  return load;
}

/**
 * The port smoothd really bound for a group's listen address (config said
 * `127.0.0.1:0`): read from `listen[].bound` in the status document, so no
 * test races another process for a port it released.
 */
export async function boundPort(d: Daemon, group?: string, index = 0): Promise<number> {
  const s = await d.status();
  const g = group ? s.groups.find((x: any) => x.name === group) : s.groups[0];
  const bound: unknown = g?.listen?.[index]?.bound;
  const m = typeof bound === 'string' ? /:(\d+)$/.exec(bound) : null;
  if (!m) throw new Error(`group ${group ?? '(first)'} listen[${index}] has no bound TCP address: ${JSON.stringify(g?.listen)}`);
  return Number(m[1]);
}

/** A TCP server the test holds on a kernel-chosen port of 127.0.0.1 (to make a bind fail); close it when done. */
export async function busyPort(): Promise<{ port: number; close(): void }> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  return { port: (s.address() as net.AddressInfo).port, close: () => s.close() };
}

/**
 * A free TCP port on 127.0.0.1 (bound then released; the caller binds it
 * right after, which races any other process on the machine). Only for a port
 * that must be known before smoothd starts; everything else lets smoothd bind
 * `127.0.0.1:0` and reads `boundPort`.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export function get(port: number, p = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}
