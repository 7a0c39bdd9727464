/**
 * src/daemon.ts controlHandlers over a real Runtime with an injected
 * platform: on Windows a reload (and a restart) is refused with -32002 and a
 * message that says "Windows", while status and stop keep working.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ERROR_CODES, RpcError } from '../src/control/errors.js';
import { controlHandlers } from '../src/daemon.js';
import { Runtime } from '../src/runtime/runtime.js';
import { startRuntime } from './runtime/start-runtime.js';

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/ctl-worker.mjs');

const runtimeOn = (platform: string): Promise<Runtime> =>
  startRuntime(`groups:\n  web:\n    command: [node, ${WORKER}]\n    ready: ipc\n`, cleanup, { platform });

const ctx = () => ({ notify: () => undefined, signal: new AbortController().signal });

let cleanup: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});


async function refusal(p: Promise<unknown>): Promise<RpcError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RpcError);
  return err as RpcError;
}

describe('control handlers on Windows (injected platform)', () => {
  it('refuses reload and restart with -32002 saying Windows; status and stop still work', async () => {
    const runtime = await runtimeOn('win32');
    const handlers = controlHandlers(runtime, pino({ level: 'silent' }));

    for (const wait of [false, true]) {
      const r = await refusal(handlers.reload({ wait }, ctx()));
      expect(r.code).toBe(ERROR_CODES.RELOAD_REFUSED_WINDOWS);
      expect(r.code).toBe(-32002);
      expect(r.message).toMatch(/Windows/);
    }
    const rr = await refusal(handlers.restart({ group: 'web', wait: true }, ctx()));
    expect(rr.code).toBe(-32002);
    expect(rr.message).toMatch(/Windows/);

    const status = runtime.status();
    expect(await handlers.status()).toMatchObject({ version: 1, daemon: { platform: 'win32', state: 'running' } });
    expect(status.reload).toMatchObject({ id: 0, state: 'idle' });
    const pids = status.groups[0]!.workers.map((w) => w.pid);
    expect(pids).toHaveLength(1);

    expect(await handlers.stop()).toEqual({ pid: process.pid, state: 'stopping' });
    expect(await runtime.exited).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid!, 0)).toThrow();
  });

  it('the same handlers reload on linux (the refusal is the platform, not the wiring)', async () => {
    const runtime = await runtimeOn('linux');
    const handlers = controlHandlers(runtime, pino({ level: 'silent' }));
    const report = (await handlers.reload({ wait: true }, ctx())) as { state: string };
    expect(report.state).toBe('succeeded');
    await handlers.stop();
    expect(await runtime.exited).toBe(0);
  });
});
