/**
 * Edges of the daemon's life with a real smoothd: usage errors on its command
 * line, signals that arrive while it is still starting (its listen sockets
 * already bound, workers not yet ready), and a second stop signal while the
 * workers drain.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, cleanup, FIXTURES, SMOOTHD, startDaemon, tempDir, track, waitFor } from './harness.js';


afterEach(cleanup);

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
    whenBound(listenPath, d.pid);
    process.kill(d.pid, 'SIGTERM');
    expect(await d.exit).toEqual({ code: 0, signal: null });
    expect(d.stderr.join('')).toBe('');
    expect(fs.existsSync(d.socket)).toBe(false);
  });
});

describe('usage errors', () => {
  /** The real smoothd binary with these arguments; resolves with its exit code and output. */
  function smoothd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = execFile(process.execPath, [SMOOTHD, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
      });
      track(child.pid);
    });
  }

  it.each([
    [['--frobnicate'], /^smoothd: .*--frobnicate/],
    [['--log-level', 'loud'], /^smoothd: --log-level "loud" is not a level; use one of /],
    [['--log-format', 'xml'], /^smoothd: --log-format "xml" is not a format; use json or pretty/],
    [['--config'], /^smoothd: --config needs a value/],
  ])('smoothd %j exits 64 with what was wrong and where to look, no stack trace', async (args, message) => {
    const r = await smoothd(args);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/\nRun smoothd --help for the options\.\n$/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('a second stop signal', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('a second %s kills draining workers at once and smoothd exits', async (sig) => {
    // Workers that take 60 s to drain, with a stopTimeout above that: only the second signal ends them early.
    const d = await startDaemon(
      [
        'groups:',
        '  web:',
        `    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(path.join(FIXTURES, 'ctl-worker.mjs'))}]`,
        '    count: 2',
        '    env: { STOP_DELAY_MS: "60000" }',
        '    ready: ipc',
        '    stopTimeout: 120s',
        '',
      ].join('\n'),
    );
    const pids = await d.workerPids();
    expect(pids).toHaveLength(2);
    process.kill(d.pid, sig);
    await waitFor('the graceful stop to begin', () => d.logs.some((l) => l.msg === 'stopping gracefully'));
    await waitFor('every worker to be signalled', async () => {
      const s = await d.status().catch(() => null);
      return s !== null && s.groups[0].workers.filter((w: any) => w.state === 'stopping').length === 2;
    });
    expect(pids.every(alive)).toBe(true);
    process.kill(d.pid, sig);
    // Well under the 60 s drain: a daemon that ignored the second signal fails here.
    const exit = await Promise.race([d.exit, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 20_000))]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(d.logs.some((l) => l.msg === 'second stop signal: killing the workers')).toBe(true);
    const exits = d.logs.filter((l) => l.msg === 'worker exited');
    expect(exits.map((l) => l.pid).sort()).toEqual([...pids].sort());
    for (const e of exits) expect(e.signal).toBe('SIGKILL');
    expect(pids.some(alive)).toBe(false);
  });
});
