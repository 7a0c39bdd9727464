import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync, readFileSync, existsSync, lstatSync } from 'node:fs';
import { createConnection, Socket } from 'node:net';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ERROR_CODES, RpcError } from '../../src/control/errors.js';
import type { MethodSpec } from '../../src/control/methods.js';
import {
  ControlSocketInUseError,
  ControlSocketPathError,
  lookupGroupId,
  type CallContext,
  type ExtraMethod,
} from '../../src/control/server.js';
import { eventually, fakeHandlers, Harness, LineClient, sleep } from './helpers.js';

let h: Harness;
beforeEach(() => {
  h = new Harness();
});
afterEach(async () => {
  vi.restoreAllMocks();
  await h.cleanup();
});

const any = (name: string): MethodSpec => ({
  name,
  summary: name,
  help: '',
  params: 'any',
  result: '',
  errors: [],
  notifications: [],
});

const notified: unknown[] = [];

/** The methods of the JSON-RPC 2.0 spec, section 7. */
const specMethods: ExtraMethod[] = [
  {
    spec: {
      ...any('subtract'),
      params: [
        { name: 'minuend', type: 'number', required: true, description: 'a' },
        { name: 'subtrahend', type: 'number', required: true, description: 'b' },
      ],
    },
    handler: (p) => (p.minuend as number) - (p.subtrahend as number),
  },
  { spec: any('sum'), handler: (p) => (p as unknown as number[]).reduce((a, b) => a + b, 0) },
  { spec: any('update'), handler: (p) => void notified.push(['update', p]) },
  { spec: any('notify_hello'), handler: (p) => void notified.push(['notify_hello', p]) },
  { spec: any('notify_sum'), handler: (p) => void notified.push(['notify_sum', p]) },
  { spec: any('get_data'), handler: () => ['hello', 5] },
];

async function specServer(): Promise<{ c: LineClient; path: string }> {
  const server = await h.server({ extraMethods: specMethods });
  return { c: await h.client(server.path), path: server.path };
}

describe('JSON-RPC 2.0 spec examples (section 7)', () => {
  it('rpc call with positional parameters', async () => {
    const { c } = await specServer();
    expect(await c.call('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}')).toEqual({
      jsonrpc: '2.0',
      result: 19,
      id: 1,
    });
    expect(await c.call('{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}')).toEqual({
      jsonrpc: '2.0',
      result: -19,
      id: 2,
    });
  });

  it('rpc call with named parameters', async () => {
    const { c } = await specServer();
    expect(await c.call('{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}')).toEqual({
      jsonrpc: '2.0',
      result: 19,
      id: 3,
    });
    expect(await c.call('{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}')).toEqual({
      jsonrpc: '2.0',
      result: 19,
      id: 4,
    });
  });

  it('a notification gets no reply (also for an unknown method)', async () => {
    const { c } = await specServer();
    notified.length = 0;
    c.write('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}\n');
    c.write('{"jsonrpc": "2.0", "method": "foobar"}\n');
    await c.expectSilence(150);
    expect(notified).toEqual([['update', [1, 2, 3, 4, 5]]]);
    // the connection is still usable
    expect(await c.call({ jsonrpc: '2.0', method: 'get_data', id: 'after' })).toMatchObject({ id: 'after' });
  });

  it('rpc call of non-existent method', async () => {
    const { c } = await specServer();
    expect(await c.call('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}')).toEqual({
      jsonrpc: '2.0',
      error: { code: -32601, message: 'Method not found' },
      id: '1',
    });
  });

  it('rpc call with invalid JSON', async () => {
    const { c } = await specServer();
    expect(await c.call('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')).toEqual({
      jsonrpc: '2.0',
      error: { code: -32700, message: 'Parse error' },
      id: null,
    });
  });

  it('rpc call with invalid Request object', async () => {
    const { c } = await specServer();
    expect(await c.call('{"jsonrpc": "2.0", "method": 1, "params": "bar"}')).toMatchObject({
      jsonrpc: '2.0',
      error: { code: -32600 },
      id: null,
    });
  });

  it('rpc call Batch, invalid JSON', async () => {
    const { c } = await specServer();
    const reply = await c.call(
      '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]',
    );
    expect(reply).toEqual({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
  });

  it('rpc call with an empty Array: one error object, not an array', async () => {
    const { c } = await specServer();
    const reply = await c.call('[]');
    expect(Array.isArray(reply)).toBe(false);
    expect(reply).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 }, id: null });
  });

  it('rpc call with an invalid Batch (but not empty): an array of one', async () => {
    const { c } = await specServer();
    const reply = await c.call('[1]');
    expect(reply).toEqual([{ jsonrpc: '2.0', error: expect.objectContaining({ code: -32600 }), id: null }]);
  });

  it('rpc call with invalid Batch', async () => {
    const { c } = await specServer();
    const reply = (await c.call('[1,2,3]')) as unknown[];
    expect(reply).toHaveLength(3);
    for (const r of reply) expect(r).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 }, id: null });
  });

  it('rpc call Batch', async () => {
    const { c } = await specServer();
    notified.length = 0;
    const reply = (await c.call(
      '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},' +
        '{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},' +
        '{"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},' +
        '{"foo": "boo"},' +
        '{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},' +
        '{"jsonrpc": "2.0", "method": "get_data", "id": "9"}]',
    )) as Array<Record<string, unknown>>;
    expect(reply).toHaveLength(5);
    const byId = (id: unknown) => reply.filter((r) => r.id === id);
    expect(byId('1')).toEqual([{ jsonrpc: '2.0', result: 7, id: '1' }]);
    expect(byId('2')).toEqual([{ jsonrpc: '2.0', result: 19, id: '2' }]);
    expect(byId(null)).toEqual([{ jsonrpc: '2.0', error: expect.objectContaining({ code: -32600 }), id: null }]);
    expect(byId('5')).toEqual([{ jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: '5' }]);
    expect(byId('9')).toEqual([{ jsonrpc: '2.0', result: ['hello', 5], id: '9' }]);
    expect(notified).toEqual([['notify_hello', [7]]]);
  });

  it('rpc call Batch (all notifications): nothing is returned', async () => {
    const { c } = await specServer();
    notified.length = 0;
    c.write(
      '[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]\n',
    );
    await c.expectSilence(150);
    expect(notified).toEqual([
      ['notify_sum', [1, 2, 4]],
      ['notify_hello', [7]],
    ]);
  });

  it('a batch whose replies shrink to one is still answered with an array', async () => {
    const { c } = await specServer();
    const reply = await c.call('[{"jsonrpc":"2.0","method":"get_data","id":1},{"jsonrpc":"2.0","method":"update","params":[]}]');
    expect(reply).toEqual([{ jsonrpc: '2.0', result: ['hello', 5], id: 1 }]);
  });
});

describe('request shape and params', () => {
  it('answers -32600 with id null when the id is missing or invalid, with the id otherwise', async () => {
    const { c } = await specServer();
    expect(await c.call('{"jsonrpc":"2.0","method":1}')).toMatchObject({ error: { code: -32600 }, id: null });
    expect(await c.call('{"jsonrpc":"2.0","method":"get_data","id":{"a":1}}')).toMatchObject({ error: { code: -32600 }, id: null });
    expect(await c.call('{"jsonrpc":"2.0","method":"get_data","id":[1]}')).toMatchObject({ error: { code: -32600 }, id: null });
    expect(await c.call('{"jsonrpc":"1.0","method":"get_data","id":7}')).toMatchObject({ error: { code: -32600 }, id: 7 });
    expect(await c.call('{"method":"get_data","id":8}')).toMatchObject({ error: { code: -32600 }, id: 8 });
    expect(await c.call('"just a string"')).toMatchObject({ error: { code: -32600 }, id: null });
    expect(await c.call('null')).toMatchObject({ error: { code: -32600 }, id: null });
    // id null is a request (answered), not a notification
    expect(await c.call('{"jsonrpc":"2.0","method":"get_data","id":null}')).toEqual({
      jsonrpc: '2.0',
      result: ['hello', 5],
      id: null,
    });
  });

  it('answers -32602 naming the field for bad params of the product methods', async () => {
    const server = await h.server();
    const c = await h.client(server.path);
    const r1 = (await c.call({ jsonrpc: '2.0', method: 'status', params: 'bar', id: 1 })) as { error: { code: number; message: string } };
    expect(r1.error.code).toBe(-32602);
    expect(r1.error.message).toMatch(/params must be an object or an array/);
    const r2 = (await c.call({ jsonrpc: '2.0', method: 'reload', params: { groups: 'web' }, id: 2 })) as {
      error: { code: number; message: string; data: unknown };
    };
    expect(r2.error).toMatchObject({ code: -32602, data: { field: 'groups' } });
    expect(r2.error.message).toContain('"groups"');
    const r3 = (await c.call({ jsonrpc: '2.0', method: 'restart', params: {}, id: 3 })) as { error: { message: string } };
    expect(r3.error.message).toMatch(/"group" is required/);
    const r4 = (await c.call({ jsonrpc: '2.0', method: 'reload', params: { grups: ['web'] }, id: 4 })) as { error: { message: string } };
    expect(r4.error.message).toMatch(/unknown param "grups"/);
  });

  it('passes validated params to the handlers', async () => {
    const seen: unknown[] = [];
    const server = await h.server({
      handlers: fakeHandlers({
        reload: async (p) => (seen.push(['reload', p]), { id: 4, state: 'queued' }),
        restart: async (p) => (seen.push(['restart', p]), { id: 5, state: 'running' }),
        stop: async (p) => (seen.push(['stop', p]), { pid: 1, state: 'stopping' }),
      }),
    });
    const c = await h.client(server.path);
    expect(await c.call({ jsonrpc: '2.0', method: 'reload', params: { groups: ['web'] }, id: 1 })).toEqual({
      jsonrpc: '2.0',
      result: { id: 4, state: 'queued' },
      id: 1,
    });
    await c.call({ jsonrpc: '2.0', method: 'restart', params: ['api', true], id: 2 });
    await c.call({ jsonrpc: '2.0', method: 'stop', id: 3 });
    expect(seen).toEqual([
      ['reload', { groups: ['web'] }],
      ['restart', { group: 'api', wait: true }],
      ['stop', {}],
    ]);
  });

  it('answers a thrown RpcError with its code, message and data', async () => {
    const report = { id: 3, state: 'failed', error: 'web: worker 9 exited with code 1 before ready' };
    const server = await h.server({
      handlers: fakeHandlers({
        reload: async () => {
          throw new RpcError(ERROR_CODES.RELOAD_FAILED, 'reload 3 failed', report);
        },
      }),
    });
    const c = await h.client(server.path);
    expect(await c.call({ jsonrpc: '2.0', method: 'reload', params: { wait: true }, id: 1 })).toEqual({
      jsonrpc: '2.0',
      error: { code: -32001, message: 'reload 3 failed', data: report },
      id: 1,
    });
  });

  it('turns any other thrown error into -32099, logs it with pino, never the console, and keeps serving', async () => {
    const warn = vi.spyOn(console, 'warn');
    const error = vi.spyOn(console, 'error');
    const log = vi.spyOn(console, 'log');
    const server = await h.server({
      handlers: fakeHandlers({
        status: async () => {
          throw new TypeError('boom in status');
        },
        reload: () => {
          throw new Error('sync boom'); // not even a rejected promise
        },
        restart: async () => ({ big: 1n }), // not serializable
        stop: async () => undefined,
      }),
    });
    const c = await h.client(server.path);
    const r = (await c.call({ jsonrpc: '2.0', method: 'status', id: 1 })) as { error: { code: number; message: string } };
    expect(r.error.code).toBe(-32099);
    expect(r.error.message).toContain('boom in status');
    expect(await c.call({ jsonrpc: '2.0', method: 'reload', id: 2 })).toMatchObject({ error: { code: -32099 }, id: 2 });
    expect(await c.call({ jsonrpc: '2.0', method: 'restart', params: { group: 'web' }, id: 3 })).toMatchObject({
      error: { code: -32099 },
      id: 3,
    });
    // undefined result still yields a valid success reply
    expect(await c.call({ jsonrpc: '2.0', method: 'stop', id: 4 })).toEqual({ jsonrpc: '2.0', result: null, id: 4 });
    const errors = h.log.entries.filter((e) => e.level === 50);
    expect(errors.map((e) => (e.err as { message?: string } | undefined)?.message)).toEqual(
      expect.arrayContaining(['boom in status', 'sync boom']),
    );
    expect(warn).not.toHaveBeenCalled();
    expect(error).not.toHaveBeenCalled();
    expect(log).not.toHaveBeenCalled();
  });

  it('tolerates \\r\\n, requests split across writes, several requests in one write, and a last line without newline', async () => {
    const server = await h.server({ extraMethods: specMethods });
    const c = await h.client(server.path);
    c.write('{"jsonrpc":"2.0","method":"subtract","par');
    await sleep(30);
    c.write('ams":[5,3],"id":1}\r\n{"jsonrpc":"2.0","method":"get_data","id":2}\n');
    expect(await c.next()).toEqual({ jsonrpc: '2.0', result: 2, id: 1 });
    expect(await c.next()).toEqual({ jsonrpc: '2.0', result: ['hello', 5], id: 2 });
    // half-close after an unterminated request: still answered, then closed
    c.socket.end('{"jsonrpc":"2.0","method":"get_data","id":3}');
    expect(await c.next()).toMatchObject({ id: 3 });
    await c.closed;
  });
});

describe('limits', () => {
  it('refuses an oversized line with -32600 and closes the connection without reading it all', async () => {
    const server = await h.server({ maxLineBytes: 1024 });
    const c = await h.client(server.path);
    c.write('{"jsonrpc":"2.0","method":"status","params":{"x":"' + 'a'.repeat(5000));
    expect(await c.next()).toEqual({
      jsonrpc: '2.0',
      error: { code: -32600, message: 'request too large (limit 1024 bytes)' },
      id: null,
    });
    await c.closed;
    await eventually(() => server.connectionCount === 0, 3000, 'connection dropped');
    // the server still serves others
    const d = await h.client(server.path);
    expect(await d.call({ jsonrpc: '2.0', method: 'status', id: 1 })).toMatchObject({ result: { version: 1 } });
  });

  it('a client that streams megabytes without a newline is cut off after the limit', async () => {
    const server = await h.server({ maxLineBytes: 64 * 1024 });
    const c = await h.client(server.path);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let written = 0;
    while (!c.isClosed && written < 64 * 1024 * 1024) {
      if (!c.socket.write(chunk)) await Promise.race([new Promise((r) => c.socket.once('drain', r)), c.closed, sleep(200)]);
      written += chunk.length;
    }
    await c.closed;
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses JSON nested deeper than the limit with -32600 (and accepts the limit)', async () => {
    const server = await h.server({ maxDepth: 64, extraMethods: specMethods });
    const c = await h.client(server.path);
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(await c.call(deep)).toMatchObject({ error: { code: -32600, message: expect.stringMatching(/deeper than 64/) }, id: null });
    // 63 levels of params inside the request object = depth 64
    const params = '['.repeat(63) + ']'.repeat(63);
    expect(await c.call(`{"jsonrpc":"2.0","method":"update","params":${params},"id":1}`)).toEqual({
      jsonrpc: '2.0',
      result: null,
      id: 1,
    });
  });

  it('refuses oversized batches', async () => {
    const server = await h.server({ maxBatch: 3, extraMethods: specMethods });
    const c = await h.client(server.path);
    const req = { jsonrpc: '2.0', method: 'get_data', id: 1 };
    expect(await c.call([req, req, req, req])).toMatchObject({ error: { code: -32600, message: expect.stringMatching(/limit of 3/) } });
    expect(await c.call([req, req, req])).toHaveLength(3);
  });

  it('closes idle connections but never one with a request pending', async () => {
    let release!: () => void;
    const server = await h.server({
      idleTimeoutMs: 200,
      handlers: fakeHandlers({ reload: () => new Promise((resolve) => (release = () => resolve({ id: 1, state: 'succeeded' }))) }),
    });
    const idle = await h.client(server.path);
    const busy = await h.client(server.path);
    busy.send({ jsonrpc: '2.0', method: 'reload', params: { wait: true }, id: 1 });
    await idle.closed; // closed by the idle timeout
    // Two more idle timeouts pass (each a fresh connection closed for idling); the busy one stays.
    for (let i = 0; i < 2; i++) await (await h.client(server.path)).closed;
    expect(busy.isClosed).toBe(false);
    release();
    expect(await busy.next()).toEqual({ jsonrpc: '2.0', result: { id: 1, state: 'succeeded' }, id: 1 });
    await busy.closed; // idle again after the answer
  });

  it('keeps nothing of a closed connection: the 1 s linger timer is cleared on close', async () => {
    // After its FIN smoothd gives a peer 1 s to close before it destroys the socket. That timer
    // holds the connection (and its socket and buffers); left to run it kept every closed
    // connection in the heap for that second (1 100 clients that hung up: ~3 MiB).
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let signal: WeakRef<AbortSignal> | null = null;
    const server = await h.server({
      handlers: fakeHandlers({
        status: async (_p, ctx) => {
          signal = new WeakRef(ctx.signal); // reachable only through the connection
          return { version: 1 };
        },
      }),
    });
    const c = await h.client(server.path);
    expect(await c.call({ jsonrpc: '2.0', method: 'status', id: 1 })).toEqual({ jsonrpc: '2.0', result: { version: 1 }, id: 1 });
    c.socket.end(); // EOF: smoothd answers with its own FIN and arms the linger timer
    await c.closed;
    await eventually(() => server.connectionCount === 0, 3000, 'smoothd to see the close');
    const closedAt = Date.now();
    await new Promise((resolve) => setImmediate(resolve)); // leave the job that last touched the WeakRef
    gc();
    // Well inside the linger second (a stalled machine could pass it; then this proves nothing but cannot fail).
    const early = Date.now() - closedAt < 900;
    expect(early ? signal!.deref() : undefined).toBeUndefined();
  });

  it('at the connection limit closes the oldest idle connection, and refuses when all are busy', async () => {
    let reloads = 0;
    const server = await h.server({
      maxConnections: 2,
      handlers: fakeHandlers({
        reload: () => {
          reloads++;
          return new Promise(() => undefined);
        },
      }),
    });
    const a = await h.client(server.path);
    await eventually(() => server.connectionCount === 1); // a is registered first: it is the oldest
    const b = await h.client(server.path);
    await eventually(() => server.connectionCount === 2);
    const c = await h.client(server.path);
    await a.closed; // the oldest idle one made room
    expect(b.isClosed).toBe(false);
    b.send({ jsonrpc: '2.0', method: 'reload', id: 1 });
    c.send({ jsonrpc: '2.0', method: 'reload', id: 1 });
    await eventually(() => reloads === 2, 3000, 'both connections to have a request pending');
    const d = await h.client(server.path);
    expect(await d.next()).toMatchObject({ error: { code: ERROR_CODES.TOO_MANY_CONNECTIONS }, id: null });
    await d.closed;
    expect(b.isClosed).toBe(false);
    expect(c.isClosed).toBe(false);
  });

  it('serves more than 1024 concurrent connections by default', async () => {
    const server = await h.server();
    const clients: LineClient[] = [];
    try {
      // connect in bursts of 100 (a burst of 1030 at once is the kernel backlog's business, not ours)
      for (let i = 0; i < 1030; i += 100) {
        clients.push(...(await Promise.all(Array.from({ length: Math.min(100, 1030 - i) }, () => LineClient.connect(server.path)))));
      }
      await eventually(() => server.connectionCount === 1030, 5000, '1030 connections');
      const replies = await Promise.all(clients.map((c, i) => c.call({ jsonrpc: '2.0', method: 'status', id: i })));
      expect(replies.every((r) => (r as { result?: unknown }).result !== undefined)).toBe(true);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('drops a client that does not read while notifications pile up, and aborts its call', async () => {
    let signal: AbortSignal | null = null;
    const server = await h.server({
      maxWriteBufferBytes: 256 * 1024,
      handlers: fakeHandlers({
        reload: async (_p, ctx: CallContext) => {
          signal = ctx.signal;
          const big = 'x'.repeat(64 * 1024);
          for (let i = 0; i < 400 && !ctx.signal.aborted; i++) {
            ctx.notify('reload.progress', { message: big, i });
            await sleep(1);
          }
          return { id: 1, state: 'succeeded' };
        },
      }),
    });
    const sock = createConnection({ path: server.path });
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    sock.pause(); // never reads
    sock.write('{"jsonrpc":"2.0","method":"reload","params":{"wait":true},"id":1}\n');
    try {
      // the paused client never sees the close; watch the server side
      await eventually(() => server.connectionCount === 0, 10_000, 'the connection to be dropped');
    } finally {
      sock.destroy();
    }
    expect(signal).not.toBeNull();
    expect(signal!.aborted).toBe(true);
    expect(h.log.entries.some((e) => String(e.msg).includes('does not read'))).toBe(true);
  });

  it('stops reading a client that pipelines requests without reading the replies, and answers them all once it reads', async () => {
    let served = 0;
    const big = { version: 1, pad: 'x'.repeat(64 * 1024) };
    const server = await h.server({
      handlers: fakeHandlers({
        status: async () => {
          served++;
          return big;
        },
      }),
    });
    const sock = createConnection({ path: server.path });
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    sock.pause(); // reads nothing for now
    const n = 2000;
    let text = '';
    for (let i = 1; i <= n; i++) text += `{"jsonrpc":"2.0","method":"status","id":${i}}\n`;
    sock.write(text);
    try {
      await eventually(() => served > 0);
      await sleep(300);
      // 256 KiB queued + what the kernel buffers hold: a few dozen 64 KiB replies, not 2000 (125 MiB).
      const stuck = served;
      expect(stuck).toBeLessThan(100);
      await sleep(100);
      expect(served).toBe(stuck);
      // Now read: every request is answered, in order.
      let buf = '';
      const ids: number[] = [];
      await new Promise<void>((resolve) => {
        sock.on('data', (chunk: Buffer) => {
          buf += chunk.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) !== -1) {
            ids.push((JSON.parse(buf.slice(0, nl)) as { id: number }).id);
            buf = buf.slice(nl + 1);
          }
          if (ids.length === n) resolve();
        });
        sock.resume();
      });
      expect(ids).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(served).toBe(n);
    } finally {
      sock.destroy();
    }
  });

  it('drops a client whose replies stay unread for the idle timeout', async () => {
    const server = await h.server({
      idleTimeoutMs: 300,
      handlers: fakeHandlers({ status: async () => ({ version: 1, pad: 'x'.repeat(64 * 1024) }) }),
    });
    const sock = createConnection({ path: server.path });
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    sock.pause();
    let text = '';
    for (let i = 1; i <= 200; i++) text += `{"jsonrpc":"2.0","method":"status","id":${i}}\n`;
    sock.write(text);
    try {
      await eventually(() => server.connectionCount === 0, 5000, 'the stalled connection to be dropped');
    } finally {
      sock.destroy();
    }
    expect(h.log.entries.some((e) => String(e.msg).includes('took none of its replies'))).toBe(true);
  });

  it('pauses reading while too many requests of one connection are in flight', async () => {
    const releases: Array<() => void> = [];
    let started = 0;
    const server = await h.server({
      maxInFlightPerConnection: 2,
      handlers: fakeHandlers({
        status: () =>
          new Promise((resolve) => {
            started++;
            releases.push(() => resolve({ version: 1 }));
          }),
      }),
    });
    const c = await h.client(server.path);
    for (let i = 1; i <= 4; i++) c.send({ jsonrpc: '2.0', method: 'status', id: i });
    await eventually(() => started === 2);
    await sleep(50);
    expect(started).toBe(2);
    releases.shift()!();
    expect(await c.next()).toMatchObject({ id: 1 });
    await eventually(() => started === 3);
    while (releases.length > 0) releases.shift()!();
    await eventually(() => started === 4);
    releases.shift()!();
    const ids = [await c.next(), await c.next(), await c.next()].map((r) => (r as { id: number }).id).sort();
    expect(ids).toEqual([2, 3, 4]);
  });
});

describe('wait: notifications and disconnects', () => {
  it('delivers reload.progress notifications on the caller connection before the final answer', async () => {
    const server = await h.server({
      handlers: fakeHandlers({
        reload: async (p, ctx) => {
          expect(p).toEqual({ wait: true });
          for (let i = 1; i <= 3; i++) {
            ctx.notify('reload.progress', { id: 7, group: 'web', event: 'worker-ready', message: `worker ${i} ready`, done: i, total: 3 });
            await sleep(5);
          }
          return { id: 7, state: 'succeeded' };
        },
      }),
    });
    const c = await h.client(server.path);
    const other = await h.client(server.path);
    c.send({ jsonrpc: '2.0', method: 'reload', params: { wait: true }, id: 'r' });
    for (let i = 1; i <= 3; i++) {
      expect(await c.next()).toEqual({
        jsonrpc: '2.0',
        method: 'reload.progress',
        params: { id: 7, group: 'web', event: 'worker-ready', message: `worker ${i} ready`, done: i, total: 3 },
      });
    }
    expect(await c.next()).toEqual({ jsonrpc: '2.0', result: { id: 7, state: 'succeeded' }, id: 'r' });
    await other.expectSilence(50); // nothing leaked to another connection
  });

  it('sends the notifications of one task in one write, each its own line, in order; a later task writes again', async () => {
    let later!: () => void;
    const server = await h.server({
      handlers: fakeHandlers({
        reload: (_p, ctx) =>
          new Promise((resolve) => {
            for (let i = 1; i <= 3; i++) ctx.notify('reload.progress', { i });
            later = () => {
              ctx.notify('reload.progress', { i: 4 });
              resolve({ id: 1, state: 'succeeded' });
            };
          }),
      }),
    });
    // Every write the server's socket hands to the kernel, as the text of its chunks.
    const writes: string[] = [];
    const text = (c: unknown): string => (typeof c === 'string' ? c : Buffer.isBuffer(c) ? c.toString() : '');
    const proto = Socket.prototype as unknown as {
      _write(chunk: unknown, enc: string, cb: () => void): void;
      _writev(chunks: { chunk: unknown }[], cb: () => void): void;
    };
    const origWrite = proto._write;
    const origWritev = proto._writev;
    vi.spyOn(proto, '_write').mockImplementation(function (this: Socket, chunk, enc, cb) {
      if (text(chunk).includes('reload.progress')) writes.push(text(chunk));
      return origWrite.call(this, chunk, enc, cb);
    });
    vi.spyOn(proto, '_writev').mockImplementation(function (this: Socket, chunks, cb) {
      const all = chunks.map((c) => text(c.chunk)).join('');
      if (all.includes('reload.progress')) writes.push(all);
      return origWritev.call(this, chunks, cb);
    });
    const c = await h.client(server.path);
    c.send({ jsonrpc: '2.0', method: 'reload', params: { wait: true }, id: 1 });
    for (let i = 1; i <= 3; i++) expect(await c.next()).toEqual({ jsonrpc: '2.0', method: 'reload.progress', params: { i } });
    expect(writes).toEqual([[1, 2, 3].map((i) => `{"jsonrpc":"2.0","method":"reload.progress","params":{"i":${i}}}\n`).join('')]);
    later();
    expect(await c.next()).toEqual({ jsonrpc: '2.0', method: 'reload.progress', params: { i: 4 } });
    expect(await c.next()).toEqual({ jsonrpc: '2.0', result: { id: 1, state: 'succeeded' }, id: 1 });
    expect(writes).toHaveLength(2);
    expect(writes[1]).toContain('{"i":4}');
  });

  it('aborts ctx.signal when the client disconnects, and drops the late answer', async () => {
    let aborted = false;
    let finish!: () => void;
    const server = await h.server({
      handlers: fakeHandlers({
        reload: (_p, ctx) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener('abort', () => (aborted = true));
            finish = () => {
              ctx.notify('reload.progress', { late: true });
              resolve({ id: 1, state: 'succeeded' });
            };
          }),
      }),
    });
    const c = await h.client(server.path);
    c.send({ jsonrpc: '2.0', method: 'reload', params: { wait: true }, id: 1 });
    await eventually(() => finish !== undefined);
    c.close();
    await eventually(() => aborted, 2000, 'abort');
    finish(); // the late notification and answer go nowhere, and nothing throws
    await eventually(() => server.connectionCount === 0, 2000, 'the closed connection to be forgotten');
  });
});

describe('socket file', () => {
  it('creates the socket with the given mode, the parent folder with 0750, and leaves no temp folder', async () => {
    const dir = h.dir();
    const path = join(dir, 'sub', 'deeper', 'smoothd.sock');
    const server = await h.server({ path, mode: 0o600 });
    const st = statSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o750);
    expect(statSync(join(dir, 'sub', 'deeper')).mode & 0o777).toBe(0o750);
    expect(readdirSync(join(dir, 'sub', 'deeper'))).toEqual(['smoothd.sock']);
    expect(server.path).toBe(path);
    const c = await h.client(path);
    expect(await c.call({ jsonrpc: '2.0', method: 'status', id: 1 })).toMatchObject({ result: { version: 1 } });
  });

  it('honours another mode and a socket group', async () => {
    const dir = h.dir();
    const gid = process.getgid!();
    const groupFile = join(dir, 'group');
    writeFileSync(groupFile, `root:x:0:\nsdtest:x:${gid}:someone\n`);
    const path = join(dir, 'g.sock');
    await h.server({ path, mode: 0o660, group: 'sdtest', groupFile });
    const st = statSync(path);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(gid);
    await expect(lookupGroupId('nosuch', groupFile)).rejects.toThrow(/group "nosuch" not found/);
    await expect(lookupGroupId('1234', groupFile)).resolves.toBe(1234);
    await expect(h.server({ path: join(dir, 'x.sock'), group: 'nosuch', groupFile })).rejects.toThrow(/not found/);
  });

  it('binds in place when a temporary name would be too long, still with the right mode', async () => {
    const dir = h.dir();
    // target fits in 107 bytes, but dir + "/.sXXXXXX/s" does not
    const pad = 100 - dir.length - 1;
    const sub = join(dir, 'p'.repeat(pad));
    mkdirSync(sub);
    const path = join(sub, 's.sock');
    expect(Buffer.byteLength(path)).toBeLessThanOrEqual(107);
    expect(Buffer.byteLength(join(sub, '.sXXXXXX', 's'))).toBeGreaterThan(107);
    const server = await h.server({ path, mode: 0o600 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await server.close();
    expect(existsSync(path)).toBe(false);
  });

  it('removes the socket file on close, and close is idempotent', async () => {
    const server = await h.server();
    const c = await h.client(server.path);
    expect(existsSync(server.path)).toBe(true);
    await Promise.all([server.close(), server.close()]);
    await server.close();
    expect(existsSync(server.path)).toBe(false);
    await c.closed;
  });

  it('replaces a stale socket left by a daemon that died', async () => {
    const dir = h.dir();
    const path = join(dir, 'stale.sock');
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
    ]);
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(lstatSync(path).isSocket()).toBe(true);
    const server = await h.server({ path });
    const c = await h.client(path);
    expect(await c.call({ jsonrpc: '2.0', method: 'status', id: 1 })).toMatchObject({ result: { version: 1 } });
    expect(h.log.entries.some((e) => String(e.msg).includes('stale'))).toBe(true);
    expect(server.path).toBe(path);
  });

  it('refuses a live socket and leaves the running daemon alone', async () => {
    const first = await h.server();
    const err = await h.server({ path: first.path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlSocketInUseError);
    expect((err as Error).message).toMatch(/another smoothd is running on .*stale|another smoothd is running on/);
    expect((err as Error).message).toContain('stop');
    const c = await h.client(first.path);
    expect(await c.call({ jsonrpc: '2.0', method: 'status', id: 1 })).toMatchObject({ result: { version: 1 } });
  });

  it('never removes a path that is not a socket', async () => {
    const dir = h.dir();
    const file = join(dir, 'file.sock');
    writeFileSync(file, 'precious');
    await expect(h.server({ path: file })).rejects.toThrow(ControlSocketPathError);
    await expect(h.server({ path: file })).rejects.toThrow(/exists and is a regular file, not a socket/);
    expect(readFileSync(file, 'utf8')).toBe('precious');

    const folder = join(dir, 'folder.sock');
    mkdirSync(folder);
    await expect(h.server({ path: folder })).rejects.toThrow(/is a directory, not a socket/);
    expect(statSync(folder).isDirectory()).toBe(true);

    const live = await h.server();
    const link = join(dir, 'link.sock');
    symlinkSync(live.path, link);
    await expect(h.server({ path: link })).rejects.toThrow(/symbolic link/);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it('refuses a folder that others may write to or that belongs to another user', async () => {
    const dir = h.dir();
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await expect(h.server({ path: join(open, 'c.sock') })).rejects.toThrow(/writable by other users \(mode 0777\)/);
    chmodSync(open, 0o1777); // sticky, like /tmp: fine
    await expect(h.server({ path: join(open, 'c.sock') })).resolves.toBeDefined();
    if (process.getuid?.() === 0) {
      const theirs = join(dir, 'theirs');
      mkdirSync(theirs);
      chownSync(theirs, 65534, 65534);
      await expect(h.server({ path: join(theirs, 'c.sock') })).rejects.toThrow(/belongs to uid 65534/);
    }
  });

  it('refuses a path over 107 bytes', async () => {
    await expect(h.server({ path: '/tmp/' + 'x'.repeat(120) })).rejects.toThrow(/107-byte limit/);
  });

  it('examines the socket folder with lstat: a symlinked folder is refused, even to a good folder', async () => {
    const dir = h.dir();
    const real = join(dir, 'real');
    mkdirSync(real, { mode: 0o750 });
    const link = join(dir, 'link');
    symlinkSync(real, link);
    await expect(h.server({ path: join(link, 'c.sock') })).rejects.toThrow(/socket folder .*link is a symbolic link; refusing to follow it/);
    expect(readdirSync(real)).toEqual([]);
    await expect(h.server({ path: join(real, 'c.sock') })).resolves.toBeDefined();
  });

  it('privateFolder (the /tmp fallback): creates the folder 0700, refuses 0750 and a symlink', async () => {
    const dir = h.dir();
    const fresh = join(dir, 'smoothd-x');
    await h.server({ path: join(fresh, 'c.sock'), privateFolder: true });
    expect(statSync(fresh).mode & 0o7777).toBe(0o700);
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o750);
    await expect(h.server({ path: join(shared, 'c.sock'), privateFolder: true })).rejects.toThrow(/has mode 0750; it must be 0700/);
    const link = join(dir, 'link');
    symlinkSync(fresh, link);
    await expect(h.server({ path: join(link, 'd.sock'), privateFolder: true })).rejects.toThrow(/is a symbolic link, which another user may have planted/);
  });
});
