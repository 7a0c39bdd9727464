/**
 * Edges of the daemon's life with a real smoothd: signals that arrive while it
 * is still starting (its listen sockets already bound, workers not yet ready).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, alive, killAll, startDaemon, tempDir, waitFor, type Daemon } from './harness.js';

const daemons: Daemon[] = [];

afterEach(async () => {
  for (const d of daemons.splice(0)) {
    if (!alive(d.pid)) continue;
    d.proc.kill('SIGTERM');
    await Promise.race([d.exit, new Promise((r) => setTimeout(r, 5000))]);
  }
  killAll();
});

/** One slow-to-ready worker on a unix listen socket, whose file shows the moment smoothd has bound it. */
function slowStartConfig(dir: string): { yaml: string; listenPath: string } {
  const listenPath = path.join(dir, 'app.sock');
  const yaml = [
    'groups:',
    '  web:',
    `    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(path.join(FIXTURES, 'ctl-worker.mjs'))}]`,
    '    env: { READY_DELAY_MS: "800" }',
    '    ready: ipc',
    `    listen: [${JSON.stringify(`unix:${listenPath}`)}]`,
    '    stopTimeout: 5s',
    '',
  ].join('\n');
  return { yaml, listenPath };
}

/**
 * Returns as soon as `file` exists (checked every millisecond, synchronously,
 * so the signal that follows lands as early as possible) or the daemon died.
 */
function whenBound(file: string, pid: number): void {
  const tick = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 15_000;
  while (!fs.existsSync(file)) {
    if (!alive(pid)) throw new Error('smoothd exited before it bound its listen socket');
    if (Date.now() > deadline) throw new Error(`smoothd did not bind ${file} within 15 s`);
    Atomics.wait(tick, 0, 0, 1);
  }
}

describe('signals while smoothd is starting', () => {
  it('a SIGHUP right after the listen sockets are bound does not kill it: the reload is queued and runs once smoothd runs', async () => {
    const dir = tempDir();
    const { yaml, listenPath } = slowStartConfig(dir);
    const d = await startDaemon(yaml, { dir, waitReady: false });
    daemons.push(d);
    whenBound(listenPath, d.pid);
    process.kill(d.pid, 'SIGHUP');
    // Keep sending while the worker is still starting: every one must be harmless.
    let sent = 1;
    const burst = setInterval(() => {
      if (alive(d.pid)) {
        process.kill(d.pid, 'SIGHUP');
        sent += 1;
      }
    }, 5);
    try {
      await Promise.race([
        waitFor('every worker ready', () => d.logs.some((l) => l.msg === 'every worker is ready'), 15_000),
        d.exit.then((e) => {
          throw new Error(`smoothd died of an early SIGHUP: ${JSON.stringify(e)}`);
        }),
      ]);
    } finally {
      clearInterval(burst);
    }
    expect(sent).toBeGreaterThan(1);
    expect(alive(d.pid)).toBe(true);
    const s = await waitFor('the queued reload to succeed', async () => {
      const st = await d.status();
      return st.reload.id >= 1 && st.reload.state === 'succeeded' && st.reload.queued === null && st.daemon.state === 'running' ? st : null;
    }, 20_000);
    expect(d.logs.filter((l) => l.msg === 'SIGHUP while starting: the reload is queued until smoothd runs').length).toBeLessThanOrEqual(1);
    expect(s.groups[0].workers.filter((w: any) => w.state === 'ready')).toHaveLength(1);
    d.proc.kill('SIGTERM');
    expect(await d.exit).toEqual({ code: 0, signal: null });
  });

  it('a SIGTERM right after the listen sockets are bound stops it cleanly: exit 0, the listen socket released', async () => {
    const dir = tempDir();
    const { yaml, listenPath } = slowStartConfig(dir);
    const d = await startDaemon(yaml, { dir, waitReady: false });
    daemons.push(d);
    whenBound(listenPath, d.pid);
    process.kill(d.pid, 'SIGTERM');
    expect(await d.exit).toEqual({ code: 0, signal: null });
    expect(d.stderr.join('')).toBe('');
    expect(fs.existsSync(d.socket)).toBe(false);
  });
});
