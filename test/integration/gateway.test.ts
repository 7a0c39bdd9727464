/**
 * The shipped gateway example (examples/gateway) with real processes: a
 * `reloadable: false` WebSocket gateway keeps its clients connected while the
 * business workers behind it roll, and every message gets exactly one answer.
 *
 * Load: SMOOTHD_GATEWAY_CLIENTS clients (default 100), each sending a message
 * every SMOOTHD_GATEWAY_EVERY_MS ms (default 20), while the business group is
 * reloaded SMOOTHD_GATEWAY_RELOADS times (default 5). Like a real client, each
 * keeps at most SMOOTHD_GATEWAY_WINDOW messages unanswered (default 10) and
 * skips a tick when its window is full, so a machine too busy for the target
 * rate runs it at the rate it can answer (the test prints both) instead of
 * queueing without bound.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, alive, boundPort, freePort, smoothctl, startDaemon, tempDir, track, waitFor, type Daemon, cleanup } from './harness.js';

const EXAMPLE = path.join(ROOT, 'examples/gateway');
const CLIENTS = Number(process.env.SMOOTHD_GATEWAY_CLIENTS ?? 100);
const EVERY_MS = Number(process.env.SMOOTHD_GATEWAY_EVERY_MS ?? 20);
const RELOADS = Number(process.env.SMOOTHD_GATEWAY_RELOADS ?? 5);
const WINDOW = Number(process.env.SMOOTHD_GATEWAY_WINDOW ?? 10);

/** The example's own smoothd.yaml, with a kernel-chosen port, a socket in `dir`, and the example folder as cwd. */
function exampleConfig(socket: string): string {
  let yaml = fs.readFileSync(path.join(EXAMPLE, 'smoothd.yaml'), 'utf8');
  const replace = (from: string | RegExp, to: string, times: number): void => {
    const re = typeof from === 'string' ? new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gm') : from;
    const found = yaml.match(re)?.length ?? 0;
    if (found !== times) throw new Error(`examples/gateway/smoothd.yaml: expected ${times} match(es) of ${re}, found ${found}`);
    yaml = yaml.replace(re, to);
  };
  replace('"127.0.0.1:8090"', '"127.0.0.1:0"', 1);
  replace('"unix:business.sock"', `"unix:${socket}"`, 1);
  replace('BUSINESS_SOCKET: business.sock', `BUSINESS_SOCKET: ${socket}`, 1);
  // The config is written to a temp folder: run the scripts from the example's folder.
  replace(/^( +)command: (.*)$/gm, `$1command: $2\n$1cwd: ${EXAMPLE}`, 2);
  return yaml;
}

interface Answer {
  id: number;
  generation?: number;
  error?: string;
}

/** Every message sent, by id, and what came back. */
class Ledger {
  nextId = 1;
  readonly sentAt = new Map<number, number>();
  readonly sender = new Map<number, Client>();
  /** Ticks skipped because the client's window was full. */
  skipped = 0;
  readonly answers = new Map<number, Answer>();
  readonly latencies: number[] = [];
  /** The highest id answered so far. */
  maxAnswered = 0;
  duplicates = 0;
  unknown = 0;
  errors: string[] = [];
  private idle: (() => void) | null = null;

  send(client: Client, window = Infinity): void {
    if (client.inflight >= window) {
      this.skipped++;
      return;
    }
    const id = this.nextId++;
    this.sentAt.set(id, performance.now());
    this.sender.set(id, client);
    client.inflight++;
    client.ws.send(JSON.stringify({ id, text: `message ${id}` }));
  }

  receive(data: Buffer): void {
    const answer = JSON.parse(data.toString('utf8')) as Answer;
    const sentAt = this.sentAt.get(answer.id);
    if (sentAt === undefined) this.unknown++;
    else if (this.answers.has(answer.id)) this.duplicates++;
    else {
      this.answers.set(answer.id, answer);
      this.sender.get(answer.id)!.inflight--;
      this.maxAnswered = Math.max(this.maxAnswered, answer.id);
      this.latencies.push(performance.now() - sentAt);
    }
    if (answer.error) this.errors.push(`#${answer.id}: ${answer.error}`);
    if (this.idle && this.answers.size === this.sentAt.size) this.idle();
  }

  /** Resolves once every message sent has its answer (or rejects after `timeoutMs`, with the count). */
  allAnswered(timeoutMs: number): Promise<void> {
    if (this.answers.size === this.sentAt.size) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.idle = null;
        reject(new Error(`${this.sentAt.size - this.answers.size} of ${this.sentAt.size} messages still unanswered after ${timeoutMs} ms`));
      }, timeoutMs);
      this.idle = () => {
        clearTimeout(timer);
        this.idle = null;
        resolve();
      };
    });
  }
}

interface Client {
  ws: WebSocket;
  closed: Promise<number>;
  timer: NodeJS.Timeout | null;
  /** Messages sent and not answered yet. */
  inflight: number;
}

const clients = new Set<Client>();

function connect(port: number, ledger: Ledger): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const client: Client = { ws, closed, timer: null, inflight: 0 };
  clients.add(client);
  ws.on('message', (data) => ledger.receive(data));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('error', reject);
  });
}

function stopSending(): void {
  for (const c of clients) {
    if (c.timer) clearInterval(c.timer);
    c.timer = null;
  }
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

let daemon: Daemon | null = null;

afterEach(async () => {
  stopSending();
  for (const c of clients) c.ws.terminate();
  clients.clear();
  await cleanup();
  daemon = null;
});

describe('examples/gateway: a reloadable: false WebSocket gateway in front of rolling business workers', () => {
  it(`keeps ${CLIENTS} clients connected through ${RELOADS} business reloads, answers every message exactly once, and is replaced only by restart`, async () => {
    const dir = tempDir();
    const socket = path.join(dir, 'business.sock');
    daemon = await startDaemon(exampleConfig(socket), { dir });
    const port = await boundPort(daemon, 'gateway');
    const [gateway, ...moreGateways] = await daemon.workerPids('gateway');
    expect(moreGateways).toEqual([]);
    expect(await daemon.workerPids('business')).toHaveLength(2);

    // Phase 1: the load, while the business group rolls.
    const ledger = new Ledger();
    const disconnects: number[] = [];
    await Promise.all([...Array(CLIENTS)].map(() => connect(port, ledger)));
    for (const c of clients) {
      void c.closed.then((code) => disconnects.push(code));
      c.timer = setInterval(() => ledger.send(c, WINDOW), EVERY_MS);
    }
    const startedAt = performance.now();
    await waitFor('every client to get its first answers', () => ledger.answers.size >= CLIENTS * 2, 15_000);
    const durations: number[] = [];
    let lastBeforeGen = 0;
    for (let i = 1; i <= RELOADS; i++) {
      const r = await smoothctl(daemon.socket, ['reload', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout);
      expect(report.state).toBe('succeeded');
      expect(report.groups).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: 'gateway', state: 'skipped' }),
          expect.objectContaining({ name: 'business', state: 'rolled' }),
        ]),
      );
      durations.push(report.durationMs);
      expect(await daemon.workerPids('gateway')).toEqual([gateway]);
      for (const pid of await daemon.workerPids('business')) track(pid);
      // Let the new generation serve alone for a moment before the next roll.
      const mark = ledger.nextId;
      await waitFor(`answers to messages sent after reload ${i}`, () => ledger.maxAnswered >= mark + CLIENTS, 15_000);
      lastBeforeGen = mark;
    }
    const loadMs = performance.now() - startedAt;
    stopSending();
    await ledger.allAnswered(15_000);

    const sent = ledger.sentAt.size;
    const byGeneration = new Map<number, number>();
    for (const a of ledger.answers.values()) byGeneration.set(a.generation ?? -1, (byGeneration.get(a.generation ?? -1) ?? 0) + 1);
    console.log(
      `gateway: ${CLIENTS} clients every ${EVERY_MS} ms, ${RELOADS} reloads: ${sent} messages in ${(loadMs / 1000).toFixed(1)} s ` +
        `(${Math.round(sent / (loadMs / 1000))}/s, target ${Math.round((CLIENTS * 1000) / EVERY_MS)}/s), ` +
        `${ledger.skipped} ticks skipped on a full window of ${WINDOW}, ${ledger.errors.length} errors, ${ledger.duplicates} duplicates, ${disconnects.length} disconnects; ` +
        `latency p50 ${percentile(ledger.latencies, 50).toFixed(1)} ms p99 ${percentile(ledger.latencies, 99).toFixed(1)} ms; ` +
        `reload ms ${durations.join(', ')}; answers by generation ${JSON.stringify(Object.fromEntries(byGeneration))}`,
    );
    expect(disconnects).toEqual([]);
    expect(ledger.errors.slice(0, 5)).toEqual([]);
    expect(ledger.duplicates).toBe(0);
    expect(ledger.unknown).toBe(0);
    expect(ledger.answers.size).toBe(sent);
    // The version advanced through every generation, and after the last
    // reload only the newest generation answered.
    expect([...byGeneration.keys()].sort((a, b) => a - b)).toEqual([...Array(RELOADS + 1)].map((_, i) => i + 1));
    const late = [...ledger.answers].filter(([id]) => id >= lastBeforeGen).map(([, a]) => a.generation);
    expect(late.length).toBeGreaterThan(0);
    expect(new Set(late)).toEqual(new Set([RELOADS + 1]));
    expect(await daemon.workerPids('gateway')).toEqual([gateway]);

    // Phase 2: a reload aimed at the gateway leaves it alone.
    const skip = await smoothctl(daemon.socket, ['reload', '--group', 'gateway', '--json']);
    expect(skip.code, skip.stderr).toBe(0);
    expect(JSON.parse(skip.stdout).groups).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'gateway', state: 'skipped' })]));
    expect(await daemon.workerPids('gateway')).toEqual([gateway]);
    for (const c of clients) expect(c.ws.readyState).toBe(WebSocket.OPEN);

    // Phase 3: restart replaces it; clients are told "going away" and reconnect.
    const restart = await smoothctl(daemon.socket, ['restart', 'gateway']);
    expect(restart.code, restart.stderr).toBe(0);
    const codes = await Promise.all([...clients].map((c) => c.closed));
    expect(new Set(codes)).toEqual(new Set([1001]));
    const [replacement, ...others] = await daemon.workerPids('gateway');
    expect(others).toEqual([]);
    expect(replacement).not.toBe(gateway);
    track(replacement);
    await waitFor(`the old gateway ${gateway} to exit`, () => !alive(gateway!));
    const retried = daemon.logs.find((l) => l.pid === gateway && typeof l.msg === 'string' && l.msg.includes('drained'));
    console.log(`gateway: old gateway said: ${String(retried?.msg)}`);

    clients.clear();
    const again = new Ledger();
    const reconnected = await Promise.all([...Array(CLIENTS)].map(() => connect(port, again)));
    for (const c of reconnected) again.send(c);
    await again.allAnswered(15_000);
    expect(again.errors).toEqual([]);
    expect(new Set([...again.answers.values()].map((a) => a.generation))).toEqual(new Set([RELOADS + 1]));
  }, 180_000);
});

/**
 * The retry rule of examples/gateway/gateway.js, against a scripted business
 * server on a unix socket: the gateway runs on its own (the kit's fallback
 * port), so the test decides exactly when a connection fails.
 */
describe('examples/gateway: a call is retried once on a fresh connection only when it provably never reached the business worker', () => {
  let gatewayProc: ChildProcess | null = null;
  let business: http.Server | null = null;

  afterEach(async () => {
    if (gatewayProc?.pid) {
      const exited = new Promise((r) => gatewayProc!.once('exit', r));
      if (gatewayProc.exitCode === null && gatewayProc.signalCode === null) {
        gatewayProc.kill('SIGKILL');
        await exited;
      }
    }
    gatewayProc = null;
    await new Promise((r) => (business ? business.close(r) : r(undefined)));
    business = null;
  });

  /** What the scripted business server saw: per message id, the connection's request number for each delivery. */
  async function setup(script: (text: string, delivery: number, res: http.ServerResponse, socket: net.Socket) => void) {
    const dir = tempDir();
    const socket = path.join(dir, 'business.sock');
    const deliveries = new Map<number, number[]>();
    const perSocket = new WeakMap<net.Socket, number>();
    business = http.createServer((req, res) => {
      const nth = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, nth);
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const msg = JSON.parse(body) as { id: number; text: string };
        const seen = deliveries.get(msg.id) ?? [];
        seen.push(nth);
        deliveries.set(msg.id, seen);
        script(msg.text, seen.length, res, req.socket);
        if (!res.headersSent && !req.socket.destroyed) res.end(JSON.stringify({ id: msg.id, echo: msg.text, generation: 1 }));
      });
    });
    await new Promise<void>((r) => business!.listen(socket, r));
    // The gateway runs alone here (no smoothd to bind for it and report the port): it needs a port number before it starts.
    const port = await freePort();
    gatewayProc = spawn(process.execPath, [path.join(EXAMPLE, 'gateway.js')], {
      cwd: EXAMPLE,
      env: { ...process.env, PORT: String(port), BUSINESS_SOCKET: socket, LISTEN_FDS: '', SMOOTHD_READY: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    track(gatewayProc.pid);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      gatewayProc!.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('listening on')) resolve();
      });
      gatewayProc!.once('exit', (code) => reject(new Error(`gateway.js exited with ${code} before listening: ${out}`)));
    });
    const ledger = new Ledger();
    const client = await connect(port, ledger);
    // One answered call first, so the agent holds a pooled connection to reuse.
    ledger.send(client);
    await ledger.allAnswered(10_000);
    return { ledger, client, deliveries };
  }

  it('a reused pooled connection reset before any response byte: retried once on a new connection, one answer', async () => {
    const { ledger, client, deliveries } = await setup((text, delivery, _res, socket) => {
      if (text === 'message 2' && delivery === 1) socket.destroy();
    });
    ledger.send(client);
    await ledger.allAnswered(10_000);
    expect(ledger.errors).toEqual([]);
    expect(ledger.answers.get(2)).toMatchObject({ id: 2, echo: 'message 2' });
    // First on the reused connection (its 2nd request), then alone on a fresh one.
    expect(deliveries.get(2)).toEqual([2, 1]);
    expect(ledger.duplicates).toBe(0);
  });

  it('never more than one retry: a call whose retry fails too gets one error answer', async () => {
    const { ledger, client, deliveries } = await setup((text, _delivery, _res, socket) => {
      if (text === 'message 2') socket.destroy();
    });
    ledger.send(client);
    await ledger.allAnswered(10_000);
    expect(ledger.errors).toEqual([expect.stringMatching(/^#2: the business group did not answer: ECONNRESET /)]);
    expect(deliveries.get(2)).toEqual([2, 1]);
  });

  it('a connection cut after the response started is not retried (the worker had the call): one error answer', async () => {
    const { ledger, client, deliveries } = await setup((text, _delivery, res, socket) => {
      if (text !== 'message 2') return;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 100 });
      res.write('{"id": 2', () => socket.destroy());
    });
    ledger.send(client);
    await ledger.allAnswered(10_000);
    expect(ledger.errors).toEqual([expect.stringMatching(/^#2: the business group did not answer: /)]);
    expect(deliveries.get(2)).toEqual([2]);
  });
});
