import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  callRpc,
  connectError,
  ConnectionLostError,
  DaemonUnreachableError,
  openRpcCall,
  PermissionDeniedError,
  probeControlSocket,
  ProtocolError,
  RpcCallError,
  TimeoutError,
} from '../../src/control/client.js';
import { ERROR_CODES, RpcError } from '../../src/control/errors.js';
import { eventually, fakeHandlers, Harness, sleep } from './helpers.js';

let h: Harness;
const rawServers: Server[] = [];
beforeEach(() => {
  h = new Harness();
});
afterEach(async () => {
  await Promise.all(rawServers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await h.cleanup();
});

/** A non-smoothd server that does `onConnection` with each socket. */
async function rawServer(onConnection: (s: import('node:net').Socket) => void): Promise<string> {
  const path = join(h.dir(), 'raw.sock');
  const server = createServer(onConnection);
  rawServers.push(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
}

describe('callRpc', () => {
  it('resolves with the result', async () => {
    const server = await h.server({ handlers: fakeHandlers({ status: async () => ({ version: 1, ok: true }) }) });
    await expect(callRpc(server.path, 'status', {})).resolves.toEqual({ version: 1, ok: true });
  });

  it('delivers notifications in order before resolving', async () => {
    const server = await h.server({
      handlers: fakeHandlers({
        reload: async (_p, ctx) => {
          ctx.notify('reload.progress', { n: 1 });
          ctx.notify('reload.progress', { n: 2 });
          return { id: 2, state: 'succeeded' };
        },
      }),
    });
    const seen: unknown[] = [];
    const result = await callRpc(server.path, 'reload', { wait: true }, { onNotification: (m, p) => seen.push([m, p]) });
    expect(result).toEqual({ id: 2, state: 'succeeded' });
    expect(seen).toEqual([
      ['reload.progress', { n: 1 }],
      ['reload.progress', { n: 2 }],
    ]);
  });

  it('rejects with RpcCallError carrying code, message and data', async () => {
    const report = { id: 3, state: 'failed' };
    const server = await h.server({
      handlers: fakeHandlers({
        reload: async () => {
          throw new RpcError(ERROR_CODES.RELOAD_FAILED, 'reload 3 failed', report);
        },
      }),
    });
    const err = await callRpc(server.path, 'reload', { wait: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcCallError);
    expect(err).toMatchObject({ code: -32001, message: 'reload 3 failed', data: report, socketPath: server.path });
  });

  it('rejects with DaemonUnreachableError when there is no socket', async () => {
    const path = join(h.dir(), 'none.sock');
    const err = await callRpc(path, 'status', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonUnreachableError);
    expect((err as Error).message).toBe(
      `smoothd is not running (no socket at ${path}); start it with \`systemctl start smoothd\` or \`smoothd --config FILE\``,
    );
    expect(await probeControlSocket(path)).toBe('unreachable');
  });

  it('rejects with DaemonUnreachableError on a stale socket (ECONNREFUSED)', async () => {
    const path = join(h.dir(), 'stale.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`]);
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const err = await callRpc(path, 'status', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonUnreachableError);
    expect((err as DaemonUnreachableError).errno).toBe('ECONNREFUSED');
    expect((err as Error).message).toMatch(/smoothd is not running \(nothing listens on/);
  });

  it('maps EACCES to PermissionDeniedError naming the socket', () => {
    const e = connectError('/run/smoothd/smoothd.sock', Object.assign(new Error('x'), { code: 'EACCES' }));
    expect(e).toBeInstanceOf(PermissionDeniedError);
    expect(e.message).toMatch(/permission denied on the control socket \/run\/smoothd\/smoothd.sock/);
    expect(e.message).toMatch(/sudo/);
    expect(e.message).toMatch(/socketGroup/);
  });

  it('rejects with TimeoutError when no answer comes in time, and closes the connection', async () => {
    let signal: AbortSignal | null = null;
    const server = await h.server({
      handlers: fakeHandlers({
        reload: (_p, ctx) => {
          signal = ctx.signal;
          return new Promise(() => undefined);
        },
      }),
    });
    const started = Date.now();
    const err = await callRpc(server.path, 'reload', { wait: true }, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).timeoutMs).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    // the daemon sees the disconnect (the connection itself lives as long as the handler)
    await eventually(() => signal?.aborted === true, 2000, 'abort');
  });

  it('rejects with ConnectionLostError when the daemon closes before answering', async () => {
    const path = await rawServer((s) => {
      s.once('data', () => s.destroy());
    });
    await expect(callRpc(path, 'stop', {})).rejects.toBeInstanceOf(ConnectionLostError);
  });

  it('rejects with ProtocolError when something else answers', async () => {
    const path = await rawServer((s) => {
      s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    });
    const err = await callRpc(path, 'status', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/is it a smoothd socket/);
  });

  it('treats an unattributable error (id null) as the answer, e.g. too many connections', async () => {
    const path = await rawServer((s) => {
      s.resume(); // read (and so notice the client's close)
      s.end('{"jsonrpc":"2.0","error":{"code":-32008,"message":"too many control connections"},"id":null}\n');
    });
    await expect(callRpc(path, 'status', {})).rejects.toMatchObject({ code: -32008 });
  });

  it('openRpcCall keeps the connection until the daemon closes it', async () => {
    const server = await h.server();
    const call = openRpcCall(server.path, 'stop', { wait: true });
    await expect(call.result).resolves.toMatchObject({ state: 'stopping' });
    let closed = false;
    void call.closed.then(() => (closed = true));
    await sleep(50);
    expect(closed).toBe(false);
    await server.close();
    await call.closed;
    expect(await probeControlSocket(server.path)).toBe('unreachable');
  });
});
