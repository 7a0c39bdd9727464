/**
 * The control protocol against the REAL daemon (DESIGN §5): the JSON-RPC 2.0
 * spec's own examples (section 7) that apply to smoothd's methods, hostile
 * input on the real socket, connection limits and the idle timeout. After
 * each hostile step the daemon still answers status and completes a reload,
 * and its resident memory stays bounded.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STALL_MESSAGE } from '../../src/control/server.js';
import { LineClient, sleep } from '../control/helpers.js';
import { alive, cleanup, FIXTURES, rpc, startDaemon, stopDaemon, tempDir, waitFor, type Daemon } from './harness.js';

const APP = path.join(FIXTURES, 'http-app.mjs');
const CTL_WORKER = path.join(FIXTURES, 'ctl-worker.mjs');
const GC_PROBE = path.join(FIXTURES, 'gc-probe.mjs');

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}


const clients: LineClient[] = [];
const sockets: net.Socket[] = [];

async function client(socketPath: string): Promise<LineClient> {
  const c = await LineClient.connect(socketPath);
  clients.push(c);
  return c;
}

function rawSocket(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    sockets.push(s);
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const s of sockets.splice(0)) s.destroy();
});

// One daemon for the protocol and hostile-input tests (they run in order in this file).
let d: Daemon;
const rss: Array<{ step: string; kb: number }> = [];
const heap: Array<{ step: string; used: number }> = [];

/**
 * Connections the daemon holds open on its control socket. The kernel lists
 * each accepted socket under the path the listener was bound to, which is a
 * temporary name in the socket's folder (smoothd binds there, then renames the
 * file into place): the listener is the entry with the listening flag (0x10000).
 */
/** How many times smoothd logged that a control client's unread replies passed the bound. */
function stallLogs(): number {
  return d.logs.filter((l) => l.msg === STALL_MESSAGE).length;
}

function controlConnections(): number {
  const entries = fs
    .readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 8 && f[7]!.startsWith(`${path.dirname(d.socket)}/`));
  const listener = entries.find((f) => (parseInt(f[3]!, 16) & 0x10000) !== 0);
  if (!listener) throw new Error(`no listening control socket under ${path.dirname(d.socket)} in /proc/net/unix`);
  return entries.filter((f) => f !== listener && f[7] === listener[7]).length;
}

/**
 * The daemon's heapUsed right after a full GC (via the gc-probe preload): what it really retains.
 * Measured only once the daemon has closed every connection of the steps before (`open` are kept
 * on purpose): on a busy machine the daemon may not yet have seen the close of hundreds of
 * sockets a step just ended, and each one still holds its buffers.
 */
async function heapAfterGc(step: string, open = 0): Promise<number> {
  const stillOpen = controlConnections() - open;
  if (stillOpen > 0) console.log(`heap probe "${step}": waited for smoothd to close ${stillOpen} control connection(s) first`);
  await waitFor(`smoothd to close its control connections before measuring "${step}" (${open} kept open)`, () => controlConnections() === open, 30_000);
  const out = path.join(d.dir, 'gc.json');
  fs.rmSync(out, { force: true });
  process.kill(d.pid, 'SIGUSR2');
  const text = await waitFor('the gc probe', () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : null), 5000);
  // Compiled code is left out: V8 compiles the paths a step runs (its code spaces grew ~0.6 MiB
  // over the first pass, ~30 KB over the second), and that is not data kept.
  const { heapUsed, codeBytes } = JSON.parse(text) as { heapUsed: number; codeBytes: number };
  const used = heapUsed - codeBytes;
  heap.push({ step, used });
  return used;
}

async function healthy(step: string): Promise<void> {
  const status = await d.status();
  expect(status.daemon.state).toBe('running');
  const report = await d.rpc('reload', { wait: true });
  expect(report.state).toBe('succeeded');
  rss.push({ step, kb: rssKb(d.pid) });
}

beforeAll(async () => {
  const dir = tempDir();
  d = await startDaemon(`
groups:
  web:
    command: [node, ${APP}]
    count: 1
    listen: ["127.0.0.1:0"]
    ready: ipc
    readyTimeout: 10s
    stopTimeout: 5s
`,
    // Log level info, not the harness's debug: smoothd logs every control connection at debug,
    // and when this test process falls behind reading them (a busy machine) the log sink holds
    // the backlog in smoothd's heap (up to 4 MiB) — which the heap probe would count as retained.
    { dir, args: ['--log-level', 'info'], env: { NODE_OPTIONS: `--import ${GC_PROBE}`, GC_PROBE_OUT: path.join(dir, 'gc.json') } },
  );
  // Warm up (first reload, first status, JIT) before the baseline.
  await healthy('warm-up');
  await healthy('baseline');
  await heapAfterGc('baseline');
}, 30_000);

afterAll(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of sockets.splice(0)) s.destroy();
  await cleanup();
});

describe('JSON-RPC 2.0 spec examples (section 7) on the real socket', () => {
  it('rpc call with invalid JSON: -32700 with id null', async () => {
    const c = await client(d.socket);
    expect(await c.call('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')).toEqual({
      jsonrpc: '2.0',
      error: { code: -32700, message: 'Parse error' },
      id: null,
    });
  });

  it('rpc call of a non-existent method: -32601 with its id', async () => {
    const c = await client(d.socket);
    expect(await c.call('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}')).toEqual({
      jsonrpc: '2.0',
      error: { code: -32601, message: 'Method not found' },
      id: '1',
    });
  });

  it('rpc call with an invalid Request object: -32600 with id null', async () => {
    const c = await client(d.socket);
    expect(await c.call('{"jsonrpc": "2.0", "method": 1, "params": "bar"}')).toMatchObject({
      jsonrpc: '2.0',
      error: { code: -32600, message: expect.stringContaining('Invalid Request') },
      id: null,
    });
  });

  it('invalid params: -32602 naming the field', async () => {
    const c = await client(d.socket);
    expect(await c.call('{"jsonrpc": "2.0", "method": "reload", "params": {"grups": ["web"]}, "id": 7}')).toMatchObject({
      jsonrpc: '2.0',
      error: { code: -32602, message: expect.stringContaining('grups'), data: { field: 'grups' } },
      id: 7,
    });
    expect(await c.call('{"jsonrpc": "2.0", "method": "restart", "params": {}, "id": 8}')).toMatchObject({
      error: { code: -32602, data: { field: 'group' } },
      id: 8,
    });
  });

  it('rpc call Batch with invalid JSON: one -32700', async () => {
    const c = await client(d.socket);
    expect(await c.call('[{"jsonrpc": "2.0", "method": "status", "id": "1"},{"jsonrpc": "2.0", "method"]')).toEqual({
      jsonrpc: '2.0',
      error: { code: -32700, message: 'Parse error' },
      id: null,
    });
  });

  it('rpc call with an empty Array: one -32600 object, not an array', async () => {
    const c = await client(d.socket);
    const reply = await c.call('[]');
    expect(Array.isArray(reply)).toBe(false);
    expect(reply).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 }, id: null });
  });

  it('rpc call with an invalid Batch [1]: an array of one -32600', async () => {
    const c = await client(d.socket);
    expect(await c.call('[1]')).toEqual([{ jsonrpc: '2.0', error: expect.objectContaining({ code: -32600 }), id: null }]);
  });

  it('rpc call with invalid Batch [1,2,3]: three -32600', async () => {
    const c = await client(d.socket);
    const reply = (await c.call('[1,2,3]')) as unknown[];
    expect(reply).toHaveLength(3);
    for (const r of reply) expect(r).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 }, id: null });
  });

  it('a mixed Batch: status, a notification, an unknown method, an invalid member', async () => {
    const c = await client(d.socket);
    const reply = (await c.call(
      '[{"jsonrpc": "2.0", "method": "status", "id": "1"},' +
        '{"jsonrpc": "2.0", "method": "status"},' +
        '{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},' +
        '{"foo": "boo"},' +
        '{"jsonrpc": "2.0", "method": "status", "params": [], "id": "9"}]',
    )) as Array<Record<string, any>>;
    expect(reply).toHaveLength(4);
    const byId = (id: unknown) => reply.filter((r) => r.id === id);
    expect(byId('1')).toHaveLength(1);
    expect(byId('1')[0]!.result).toMatchObject({ version: 1, daemon: { pid: d.pid } });
    expect(byId('9')[0]!.result).toMatchObject({ version: 1 });
    expect(byId('5')).toEqual([{ jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: '5' }]);
    expect(byId(null)).toEqual([{ jsonrpc: '2.0', error: expect.objectContaining({ code: -32600 }), id: null }]);
  });

  it('notifications and an all-notification Batch get no reply at all', async () => {
    const c = await client(d.socket);
    c.write('{"jsonrpc": "2.0", "method": "status"}\n');
    c.write('{"jsonrpc": "2.0", "method": "foobar"}\n');
    c.write('[{"jsonrpc": "2.0", "method": "status"},{"jsonrpc": "2.0", "method": "status", "params": {}}]\n');
    await c.expectSilence(300);
    // The next line answered is the next request's.
    expect(await c.call('{"jsonrpc": "2.0", "method": "status", "id": "after"}')).toMatchObject({ id: 'after', result: { version: 1 } });
  });

  it('still serves status and a reload', async () => {
    await healthy('spec examples');
  });
});

describe('hostile input on the real socket', () => {
  it('random bytes: every line gets an error, then a real request is answered', async () => {
    await randomNoise();
    await healthy('random bytes');
  });

  async function randomNoise(): Promise<void> {
    const c = await client(d.socket);
    // 1 MiB of noise, in chunks, with ~4 000 newlines among it.
    for (let i = 0; i < 16; i++) c.socket.write(randomBytes(64 * 1024));
    const reply = (await c.call('\n{"jsonrpc":"2.0","method":"status","id":"end"}', 15_000)) as Record<string, any>;
    // Everything before our request was noise: each answer was an error with id null.
    let r = reply;
    let errors = 0;
    while (r.id !== 'end') {
      expect(r).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: expect.any(Number) } });
      expect([-32700, -32600]).toContain(r.error.code);
      errors++;
      r = (await c.next(15_000)) as Record<string, any>;
    }
    expect(r.result).toMatchObject({ version: 1 });
    expect(errors).toBeGreaterThan(1000);
    c.close();
  }

  it('truncated lines: cut mid-request (reset or half-close) do no harm', async () => {
    const truncated = '{"jsonrpc":"2.0","method":"status","id":1';
    for (let i = 0; i < 200; i++) {
      const s = await rawSocket(d.socket);
      s.write(truncated.slice(0, 1 + (i % truncated.length)));
      s.destroy();
    }
    // Half-closed after a truncated line: the line is judged as it is (not JSON) and answered.
    const s = await rawSocket(d.socket);
    let got = '';
    s.on('data', (b) => (got += b.toString()));
    const closed = new Promise((r) => s.once('close', r));
    s.end(truncated);
    await closed;
    expect(JSON.parse(got)).toMatchObject({ error: { code: -32700 }, id: null });
    await healthy('truncated lines');
  });

  it('an oversized (32 MiB) line is refused with -32600 and the connection closed without reading it all', async () => {
    const s = await rawSocket(d.socket);
    let got = '';
    s.on('data', (b) => (got += b.toString()));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    let closedYet = false;
    void closed.then(() => (closedYet = true));
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    let accepted = 0;
    // Like a client would: keep writing until an answer (or the close) says to stop.
    for (let i = 0; i < 32 && got === '' && !closedYet && !s.destroyed; i++) {
      // Write with backpressure: wait until the kernel took the chunk (or the daemon closed).
      await new Promise<void>((resolve) => {
        s.write(chunk, (err) => {
          if (!err) accepted += chunk.length;
          resolve();
        });
      });
    }
    await Promise.race([closed, sleep(5000)]);
    expect(closedYet).toBe(true);
    expect(JSON.parse(got.split('\n')[0]!)).toMatchObject({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: expect.stringMatching(/too large/) },
    });
    // The daemon refused at its 1 MiB limit (then discards at most 4 MiB while the error reaches
    // the client): far less than 32 MiB ever left this side.
    expect(accepted).toBeLessThan(8 * 1024 * 1024);
    await healthy('oversized line');
  });

  it('10 000 malformed messages on one connection: 10 000 errors, the daemon keeps serving', async () => {
    await malformed();
    await healthy('10 000 malformed messages');
  });

  async function malformed(): Promise<void> {
    const kinds = [
      'not json at all',
      '{"jsonrpc":"2.0","method":1}',
      '{"jsonrpc":"1.0","method":"status","id":1}',
      '{"jsonrpc":"2.0","method":"nope","id":2}',
      '{"jsonrpc":"2.0","method":"reload","params":{"groups":"web"},"id":3}',
      '{"jsonrpc":"2.0","method":"status","params":"x","id":4}',
      '{"jsonrpc":"2.0","method":"status","id":{"a":1}}',
      '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
      '"a string"',
      '{"jsonrpc":"2.0","method":"restart","params":{"group":"no/such"},"id":5}',
    ];
    const n = 10_000;
    const c = await client(d.socket);
    let text = '';
    for (let i = 0; i < n; i++) text += kinds[i % kinds.length] + '\n';
    c.write(text);
    const codes = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const r = (await c.next(15_000)) as { error?: { code: number } };
      expect(r.error, JSON.stringify(r)).toBeDefined();
      codes.set(r.error!.code, (codes.get(r.error!.code) ?? 0) + 1);
    }
    expect([...codes.keys()].sort()).toEqual([-32700, -32602, -32601, -32600].sort());
    c.close();
  }

  it('500 idle connections: the daemon keeps serving', async () => {
    const idle = await Promise.all(Array.from({ length: 500 }, () => rawSocket(d.socket)));
    expect(idle.every((s) => !s.destroyed)).toBe(true);
    await healthy('500 idle connections');
    for (const s of idle) s.destroy();
  });

  it('a client that pipelines status requests and never reads: bounded, and the daemon keeps serving', async () => {
    const s = await rawSocket(d.socket);
    s.pause(); // never reads a byte
    const n = 20_000; // ~20 000 status documents would be tens of MB if the daemon queued them all
    let text = '';
    for (let i = 1; i <= n; i++) text += `{"jsonrpc":"2.0","method":"status","id":${i}}\n`;
    const stallsBefore = stallLogs();
    s.write(text);
    // Measure once smoothd has answered up to the bound and stopped reading this connection (it logs that).
    await waitFor('smoothd to stop reading the connection that never reads its replies', () => stallLogs() > stallsBefore, 30_000);
    await healthy('client that never reads (connected)');
    const heapWith = await heapAfterGc('client that never reads (connected)', 1);
    s.destroy();
    await healthy('client that never reads (gone)');
    const heapWithout = await heapAfterGc('client that never reads (gone)');
    // What that client costs while connected: the replies queued for it (reading its requests
    // pauses above 256 KiB) and the requests held from one read — not the ~30 MiB it asked for.
    expect(heapWith - heapWithout).toBeLessThan(2 * 1024 * 1024);
  });

  it('serves at least 1 024 concurrent connections', async () => {
    await concurrent();
    await healthy('1 100 concurrent connections');
  });

  async function concurrent(): Promise<void> {
    const n = 1100;
    const conns = await Promise.all(Array.from({ length: n }, () => LineClient.connect(d.socket)));
    clients.push(...conns);
    // All are open at once; each asks for status and gets it.
    const replies = (await Promise.all(conns.map((c, i) => c.call({ jsonrpc: '2.0', method: 'status', id: i }, 20_000)))) as Array<{
      id: number;
      result?: { version: number };
    }>;
    expect(replies.filter((r, i) => r.id === i && r.result?.version === 1)).toHaveLength(n);
    expect(conns.every((c) => !c.isClosed)).toBe(true);
    for (const c of conns) c.close();
  }

  it('resident memory stays bounded through all of it, and a second pass retains nothing', async () => {
    const heapFirst = await heapAfterGc('after the first pass');
    // The same hostile input again: every code path is compiled by now, so what the heap keeps
    // after a full GC is what the steps retain.
    await randomNoise();
    await malformed();
    await concurrent();
    await healthy('second pass');
    const heapSecond = await heapAfterGc('after the second pass');
    const base = rss.find((r) => r.step === 'baseline')!.kb;
    const peak = Math.max(...rss.map((r) => r.kb));
    const mib = (n: number) => (n / 1048576).toFixed(1);
    console.log(
      `smoothd RSS (MiB) through hostile input: ${rss.map((r) => `${r.step} ${(r.kb / 1024).toFixed(1)}`).join(', ')}; ` +
        `peak +${((peak - base) / 1024).toFixed(1)} MiB over the baseline; ` +
        `heapUsed without compiled code after a full GC (MiB): ${heap.map((h) => `${h.step} ${mib(h.used)}`).join(', ')}`,
    );
    // Retention: the second pass (1 MiB of noise, 10 000 malformed messages, 1 100 connections)
    // leaves under 1 MiB behind: a leak of ~1 KB per connection or ~100 bytes per message would
    // show. Measured: +0.0..0.2 MiB on Node 20, 22 and 24. This check found that each closed
    // connection stayed in the heap for a second (its linger timer held it): measured within
    // that second, the 1 100 just closed counted ~1.5-3 MiB, so the check failed at random.
    expect(heapSecond - heapFirst).toBeLessThan(1024 * 1024);
    // RSS, a coarse bound: the growth measured here (+12..16 MiB) is V8 sizing its heap after
    // bursts of garbage, not data kept (heapUsed after a GC grows ~0.6 MiB on the first pass, as
    // many sockets' worth of V8 and Node structures settle; ~0.1 MiB on the second). While closed
    // connections lingered for a second the peak was +33..45 MiB (+72.7 MiB on Node 24).
    expect(peak - base).toBeLessThan(96 * 1024);
    expect(alive(d.pid)).toBe(true);
  });
});

describe('idle timeout (SMOOTHD_CONTROL_IDLE_MS=300)', () => {
  let slow: Daemon | null = null;
  afterAll(async () => {
    await stopDaemon(slow);
  });

  it('closes an idle connection, but never one with a reload pending longer than the timeout', async () => {
    slow = await startDaemon(
      `
groups:
  slow:
    command: [node, ${CTL_WORKER}]
    env: { READY_DELAY_MS: "1200" }
    ready: ipc
    readyTimeout: 10s
`,
      { env: { SMOOTHD_CONTROL_IDLE_MS: '300' } },
    );
    // An idle connection goes after ~300 ms.
    const idle = await client(slow.socket);
    const t0 = Date.now();
    await Promise.race([idle.closed, sleep(3000)]);
    expect(idle.isClosed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);

    // A reload whose new worker takes 1.2 s to be ready: well past the idle timeout.
    const c = await client(slow.socket);
    const started = Date.now();
    c.send({ jsonrpc: '2.0', method: 'reload', params: { wait: true }, id: 'r' });
    let msg: Record<string, any>;
    const steps: string[] = [];
    for (;;) {
      msg = (await c.next(10_000)) as Record<string, any>;
      if (msg.id === 'r') break;
      expect(msg.method).toBe('reload.progress');
      steps.push(msg.params.event);
    }
    expect(Date.now() - started).toBeGreaterThan(1000);
    expect(msg.result).toMatchObject({ state: 'succeeded', groups: [{ name: 'slow', state: 'rolled' }] });
    expect(steps).toEqual(expect.arrayContaining(['worker.started', 'worker.ready', 'worker.stopping']));
    // Once answered it is idle again, and goes.
    await Promise.race([c.closed, sleep(3000)]);
    expect(c.isClosed).toBe(true);
    // The daemon itself was never in trouble.
    await waitFor('status', async () => (await rpc(slow!.socket, 'status')).daemon.state === 'running');
  });
});
