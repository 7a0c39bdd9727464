/**
 * The shipped gateway example (examples/gateway) with real processes: a
 * `reloadable: false` WebSocket gateway keeps its clients connected while the
 * business workers behind it roll, and every message gets exactly one answer.
 *
 * Load: SMOOTHD_GATEWAY_CLIENTS clients (default 100), each scheduled to send
 * a message every SMOOTHD_GATEWAY_EVERY_MS ms (default 20: 5 000 msg/s
 * offered), while the business group is reloaded SMOOTHD_GATEWAY_RELOADS times
 * (default 5). The load is open-loop: one timer sends every message that is
 * due by the schedule (a late timer catches up), and latency is measured from
 * the scheduled time, so a slow answer cannot hide by delaying the next send.
 * Like a real client, each keeps at most SMOOTHD_GATEWAY_WINDOW messages
 * unanswered (default 10) and skips a scheduled message when its window is
 * full. The test prints offered vs sent and served, and the latencies. With
 * SMOOTHD_GATEWAY_MIN_SENT=0.95 it also requires that share of the scheduled
 * messages to be sent; that is off by default because on a shared 2-core
 * machine (load 9-15 from other test runs) runs reached 82-100%: the
 * machine is oversubscribed and every process of the run waits for a core.
 * SMOOTHD_GATEWAY_CPU_PROF=DIR runs the gateway with `node --cpu-prof` into DIR.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, alive, boundPort, freePort, smoothctl, startDaemon, tempDir, track, waitFor, type Daemon, cleanup } from './harness.js';

const EXAMPLE = path.join(ROOT, 'examples/gateway');
const CLIENTS = Number(process.env.SMOOTHD_GATEWAY_CLIENTS ?? 100);
const EVERY_MS = Number(process.env.SMOOTHD_GATEWAY_EVERY_MS ?? 20);
const RELOADS = Number(process.env.SMOOTHD_GATEWAY_RELOADS ?? 5);
const WINDOW = Number(process.env.SMOOTHD_GATEWAY_WINDOW ?? 10);
const MIN_SENT = Number(process.env.SMOOTHD_GATEWAY_MIN_SENT ?? 0);

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
  const prof = process.env.SMOOTHD_GATEWAY_CPU_PROF;
  if (prof) replace('command: [node, gateway.js]', `command: [node, --cpu-prof, ${JSON.stringify(`--cpu-prof-dir=${path.resolve(prof)}`)}, gateway.js]`, 1);
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

  /** Sends one message now; `scheduledAt` (default now) is where its latency is measured from. */
  send(client: Client, window = Infinity, scheduledAt = performance.now()): void {
    if (client.inflight >= window) {
      this.skipped++;
      return;
    }
    const id = this.nextId++;
    this.sentAt.set(id, scheduledAt);
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
  /** When its next message is due (performance.now() time). */
  next: number;
  /** Messages sent and not answered yet. */
  inflight: number;
}

/**
 * The open-loop load: client i's k-th message is due at
 * start + (i / clients + k) * everyMs; one timer sends all that are due.
 */
class Schedule {
  scheduled = 0;
  /** How late each send was against its schedule, ms. */
  readonly lateness: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ledger: Ledger,
    private readonly clients: Client[],
    private readonly everyMs: number,
    private readonly window: number,
  ) {
    const start = performance.now();
    clients.forEach((c, i) => (c.next = start + (i / clients.length) * everyMs));
    this.timer = setInterval(() => this.tick(), Math.max(1, Math.min(5, everyMs / 4)));
  }

  private tick(): void {
    const now = performance.now();
    for (const c of this.clients) {
      while (c.next <= now) {
        this.scheduled++;
        this.lateness.push(now - c.next);
        this.ledger.send(c, this.window, c.next);
        c.next += this.everyMs;
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (clock ticks of 10 ms); NaN once it is gone. */
function cpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

const meters = new Set<CpuMeter>();

/** The CPU used by a changing set of processes: each pid's last reading, sampled every 200 ms. */
class CpuMeter {
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private readonly timer = setInterval(() => this.sample(), 200);

  constructor() {
    meters.add(this);
  }

  add(pid: number): void {
    if (this.first.has(pid)) return;
    const now = cpuMs(pid);
    this.first.set(pid, now);
    this.last.set(pid, now);
  }

  sample(): void {
    for (const pid of this.last.keys()) {
      const now = cpuMs(pid);
      if (!Number.isNaN(now)) this.last.set(pid, now);
    }
  }

  /** ms of CPU used since each pid was added. */
  stop(): number {
    clearInterval(this.timer);
    meters.delete(this);
    this.sample();
    let total = 0;
    for (const [pid, first] of this.first) total += (this.last.get(pid) ?? first) - first;
    return total;
  }
}

const clients = new Set<Client>();

function connect(port: number, ledger: Ledger): Promise<Client> {
  // The clients are the load generator and share the 2 cores with what they
  // measure: an all-zero mask (valid WebSocket framing; ws then skips the
  // XOR) and no UTF-8 check of the gateway's answers keep their cost down.
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { generateMask: () => {}, skipUTF8Validation: true });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const client: Client = { ws, closed, next: 0, inflight: 0 };
  clients.add(client);
  ws.on('message', (data) => ledger.receive(data));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('error', reject);
  });
}

let schedule: Schedule | null = null;

function stopSending(): void {
  schedule?.stop();
  schedule = null;
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

let daemon: Daemon | null = null;

afterEach(async () => {
  stopSending();
  for (const m of meters) m.stop();
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
    for (const c of clients) void c.closed.then((code) => disconnects.push(code));
    const gatewayCpu = new CpuMeter();
    gatewayCpu.add(gateway!);
    const businessCpu = new CpuMeter();
    for (const pid of await daemon.workerPids('business')) businessCpu.add(pid);
    const daemonCpu = new CpuMeter();
    daemonCpu.add(daemon.pid);
    const testCpu = process.cpuUsage();
    const startedAt = performance.now();
    schedule = new Schedule(ledger, [...clients], EVERY_MS, WINDOW);
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
      for (const pid of await daemon.workerPids('business')) {
        track(pid);
        businessCpu.add(pid);
      }
      // Let the new generation serve alone for a moment before the next roll.
      const mark = ledger.nextId;
      await waitFor(`answers to messages sent after reload ${i}`, () => ledger.maxAnswered >= mark + CLIENTS, 15_000);
      lastBeforeGen = mark;
    }
    const loadMs = performance.now() - startedAt;
    const scheduled = schedule!.scheduled;
    const lateness = schedule!.lateness;
    const answeredInLoad = ledger.answers.size;
    stopSending();
    const testCpuMs = (() => {
      const u = process.cpuUsage(testCpu);
      return (u.user + u.system) / 1000;
    })();
    const cpu = { gateway: gatewayCpu.stop(), business: businessCpu.stop(), smoothd: daemonCpu.stop(), test: testCpuMs };
    await ledger.allAnswered(15_000);

    const sent = ledger.sentAt.size;
    const seconds = loadMs / 1000;
    const byGeneration = new Map<number, number>();
    for (const a of ledger.answers.values()) byGeneration.set(a.generation ?? -1, (byGeneration.get(a.generation ?? -1) ?? 0) + 1);
    const perMessage = (ms: number): string => `${Math.round((ms * 1000) / sent)}`;
    console.log(
      `gateway: ${CLIENTS} clients every ${EVERY_MS} ms, ${RELOADS} reloads in ${seconds.toFixed(1)} s: ` +
        `offered ${Math.round((CLIENTS * 1000) / EVERY_MS)}/s, scheduled ${scheduled}, sent ${sent} (${((100 * sent) / scheduled).toFixed(1)}%, ` +
        `${ledger.skipped} skipped on a full window of ${WINDOW}), served ${Math.round(answeredInLoad / seconds)}/s; ` +
        `latency from schedule p50 ${percentile(ledger.latencies, 50).toFixed(1)} ms p99 ${percentile(ledger.latencies, 99).toFixed(1)} ms, ` +
        `send lateness p99 ${percentile(lateness, 99).toFixed(1)} ms; ${ledger.errors.length} errors, ${ledger.duplicates} duplicates, ${disconnects.length} disconnects; ` +
        `CPU µs per message: gateway ${perMessage(cpu.gateway)}, business ${perMessage(cpu.business)}, smoothd ${perMessage(cpu.smoothd)}, ` +
        `test process (clients) ${perMessage(cpu.test)}; reload ms ${durations.join(', ')}; answers by generation ${JSON.stringify(Object.fromEntries(byGeneration))}`,
    );
    expect(disconnects).toEqual([]);
    expect(ledger.errors.slice(0, 5)).toEqual([]);
    expect(ledger.duplicates).toBe(0);
    expect(ledger.unknown).toBe(0);
    expect(ledger.answers.size).toBe(sent);
    // The offered rate was served: at least MIN_SENT of the scheduled messages went out (a full window skips one).
    if (MIN_SENT > 0) expect(sent, 'messages sent of those scheduled').toBeGreaterThanOrEqual(MIN_SENT * scheduled);
    // The version advanced through every generation, and after the last
    // reload only the newest generation answered.
    expect([...byGeneration.keys()].sort((a, b) => a - b)).toEqual([...Array(RELOADS + 1)].map((_, i) => i + 1));
    const late = [...ledger.answers].filter(([id]) => id >= lastBeforeGen).map(([, a]) => a.generation);
    expect(late.length).toBeGreaterThan(0);
    expect(new Set(late)).toEqual(new Set([RELOADS + 1]));
    expect(await daemon.workerPids('gateway')).toEqual([gateway]);
    // The business workers count their answers for smoothd without HTTP: the
    // newest generation's counter reaches exactly the answers it gave.
    const newest = byGeneration.get(RELOADS + 1) ?? 0;
    const counted = (text: string): number | null => {
      const m = new RegExp(`^smoothd_worker_requests_total\\{group="business",generation="${RELOADS + 1}"\\} (\\d+)$`, 'm').exec(text);
      return m ? Number(m[1]) : null;
    };
    let lastCount: number | null = null;
    await waitFor(`smoothctl metrics to count ${newest} answers of business generation ${RELOADS + 1}`, async () => {
      const metrics = await smoothctl(daemon!.socket, ['metrics']);
      lastCount = counted(metrics.stdout);
      return lastCount === newest;
    }, 5000, 200).catch((err: Error) => {
      throw new Error(`${err.message} (last count: ${lastCount})`);
    });

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
 * The business protocol of examples/gateway/gateway.js, against a scripted
 * business server on a unix socket: the gateway runs on its own (the kit's
 * fallback port), so the test decides exactly when a worker drains or a
 * connection fails.
 */
describe('examples/gateway: each message is written to one business connection and answered once, also when a worker drains or fails', () => {
  let gatewayProc: ChildProcess | null = null;
  let business: net.Server | null = null;

  afterEach(async () => {
    if (gatewayProc?.pid) {
      const exited = new Promise((r) => gatewayProc!.once('exit', r));
      if (gatewayProc.exitCode === null && gatewayProc.signalCode === null) {
        gatewayProc.kill('SIGKILL');
        await exited;
      }
    }
    gatewayProc = null;
    if (business) {
      for (const c of conns) c.destroy();
      await new Promise((r) => business!.close(r));
    }
    business = null;
    conns.clear();
  });

  const conns = new Set<net.Socket>();

  /** A business connection as the scripted server sees it. */
  interface Conn {
    no: number;
    socket: net.Socket;
    /** The gateway ended its side. */
    ended: boolean;
  }

  /**
   * A scripted business server speaking the example's protocol. `script` sees
   * each call (its message's text) and answers it by returning true (the
   * default answer) or handles it itself. `deliveries`: per message id, the
   * numbers of the connections it arrived on.
   */
  function businessServer(socketPath: string, script: (text: string, conn: Conn, answer: () => void) => boolean) {
    const deliveries = new Map<number, number[]>();
    const connections: Conn[] = [];
    business = net.createServer({ allowHalfOpen: true }, (socket) => {
      conns.add(socket);
      const conn: Conn = { no: connections.length + 1, socket, ended: false };
      connections.push(conn);
      socket.setEncoding('utf8');
      let buffered = '';
      socket.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) !== -1) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          const space = line.indexOf(' ');
          const n = line.slice(0, space);
          const msg = JSON.parse(line.slice(space + 1)) as { id: number; text: string };
          deliveries.set(msg.id, [...(deliveries.get(msg.id) ?? []), conn.no]);
          const answer = (): void => void socket.write(`${n} ${JSON.stringify({ id: msg.id, echo: msg.text, generation: 1 })}\n`);
          if (script(msg.text, conn, answer)) answer();
        }
      });
      socket.on('end', () => {
        conn.ended = true;
        socket.end();
      });
      socket.on('error', () => socket.destroy());
      socket.on('close', () => conns.delete(socket));
    });
    return { deliveries, connections, listening: new Promise<void>((r) => business!.listen(socketPath, r)) };
  }

  async function startGateway(socketPath: string, connections: number) {
    // The gateway runs alone here (no smoothd to bind for it and report the port): it needs a port number before it starts.
    const port = await freePort();
    gatewayProc = spawn(process.execPath, [path.join(EXAMPLE, 'gateway.js')], {
      cwd: EXAMPLE,
      env: { ...process.env, PORT: String(port), BUSINESS_SOCKET: socketPath, BUSINESS_CONNECTIONS: String(connections), LISTEN_FDS: '', SMOOTHD_READY: '' },
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
    return { ledger, client };
  }

  it('a draining worker ("D"): calls already written are answered on that connection, the rest go to another, and the gateway ends it', async () => {
    const socketPath = path.join(tempDir(), 'business.sock');
    let drained: Conn | null = null;
    const held: Array<() => void> = [];
    const { deliveries, connections, listening } = businessServer(socketPath, (text, conn, answer) => {
      if (text === 'message 5' && drained === null) {
        // Drain while calls 1-5 are unanswered on this connection: hold them, answer after the D.
        drained = conn;
        conn.socket.write('D\n');
        held.push(answer);
        setTimeout(() => held.splice(0).forEach((a) => a()), 200);
        return false;
      }
      if (conn === drained || drained === null) {
        held.push(answer);
        return false;
      }
      return true;
    });
    await listening;
    const { ledger, client } = await startGateway(socketPath, 1);
    for (let i = 0; i < 5; i++) ledger.send(client);
    await ledger.allAnswered(10_000);
    for (let i = 0; i < 20; i++) ledger.send(client);
    await ledger.allAnswered(10_000);
    expect(ledger.errors).toEqual([]);
    expect(ledger.duplicates).toBe(0);
    expect(ledger.answers.size).toBe(25);
    // Each message reached the business group exactly once; 1-5 on the draining connection, the rest elsewhere.
    for (let id = 1; id <= 25; id++) expect(deliveries.get(id), `message ${id}`).toEqual([id <= 5 ? 1 : 2]);
    await waitFor('the gateway to end the drained connection', () => connections[0]!.ended);
    expect(connections[1]!.ended).toBe(false);
  });

  it('a connection that breaks with calls written: each of them gets one error answer and is not sent again', async () => {
    const socketPath = path.join(tempDir(), 'business.sock');
    const { deliveries, listening } = businessServer(socketPath, (text, conn) => {
      if (text === 'message 2') {
        conn.socket.destroy();
        return false;
      }
      return true;
    });
    await listening;
    const { ledger, client } = await startGateway(socketPath, 1);
    ledger.send(client);
    await ledger.allAnswered(10_000);
    ledger.send(client);
    await ledger.allAnswered(10_000);
    expect(ledger.errors).toEqual([expect.stringMatching(/^#2: the business group did not answer: /)]);
    expect(deliveries.get(2)).toEqual([1]);
    // The gateway opens a new connection for the next calls.
    ledger.send(client);
    await ledger.allAnswered(10_000);
    expect(ledger.answers.get(3)).toMatchObject({ id: 3, echo: 'message 3' });
    expect(deliveries.get(3)).toEqual([2]);
  });

  it('calls made while no business connection can be opened wait and are sent once it can', async () => {
    const socketPath = path.join(tempDir(), 'business.sock');
    const { ledger, client } = await startGateway(socketPath, 2);
    for (let i = 0; i < 10; i++) ledger.send(client);
    // Nothing listens yet (ENOENT): the calls wait in the gateway.
    const { deliveries, listening } = businessServer(socketPath, () => true);
    await listening;
    await ledger.allAnswered(10_000);
    expect(ledger.errors).toEqual([]);
    for (let id = 1; id <= 10; id++) expect(deliveries.get(id)).toHaveLength(1);
  });
});
