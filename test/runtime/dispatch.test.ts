/**
 * Runtime.dispatch when the state machine throws: the event is dropped, the
 * state stays as it was, and the request that sent the event is answered with
 * INTERNAL (-32099) over the real control socket instead of hanging; the next
 * requests work. The failing step is injected (RuntimeOptions.step).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { callRpc, RpcCallError } from '../../src/control/client.js';
import { ERROR_CODES } from '../../src/control/errors.js';
import { startControlServer } from '../../src/control/server.js';
import { controlHandlers } from '../../src/daemon.js';
import { step } from '../../src/supervisor/machine.js';
import { startRuntime } from './start-runtime.js';

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/ctl-worker.mjs');

let cleanup: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

describe('Runtime.dispatch when the machine throws', () => {
  it('answers the request INTERNAL, keeps the state, and serves the next requests', async () => {
    let failures = 1;
    const failingStep: typeof step = (state, event, now) => {
      if (event.type === 'reload.request' && failures > 0) {
        failures -= 1;
        throw new Error('injected bug');
      }
      return step(state, event, now);
    };
    const log = pino({ level: 'silent' });
    const yaml = `groups:\n  web:\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(WORKER)}]\n    ready: ipc\n    stopTimeout: 2s\n`;
    const runtime = await startRuntime(yaml, cleanup, { step: failingStep });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-dispatch-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const socket = path.join(dir, 'ctl.sock');
    const server = await startControlServer({ path: socket, mode: 0o600, handlers: controlHandlers(runtime, log), logger: log });
    cleanup.push(() => server.close());
    const before = runtime.snapshot;

    const err = await callRpc(socket, 'reload', { wait: true }, { timeoutMs: 5000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RpcCallError);
    expect((err as RpcCallError).code).toBe(ERROR_CODES.INTERNAL);
    expect((err as RpcCallError).message).toMatch(/could not handle the reload\.request event \(injected bug\); nothing changed/);
    expect(runtime.snapshot).toBe(before);

    const report = (await callRpc(socket, 'reload', { wait: true }, { timeoutMs: 15_000 })) as { id: number; state: string };
    expect(report).toMatchObject({ id: 1, state: 'succeeded' });
    const status = (await callRpc(socket, 'status', {}, { timeoutMs: 5000 })) as { daemon: { state: string } };
    expect(status.daemon.state).toBe('running');
    await runtime.stop();
    expect(await runtime.exited).toBe(0);
  });
});
