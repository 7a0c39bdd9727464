/**
 * The status document with values, not only types (README "The reload
 * report" and "The status document"): after a SIGHUP reload that succeeds and
 * an RPC reload that fails, `trigger`, `readyAt`, `durationMs`, `readyMs`,
 * `errorCode`, `failure` and the workers' `rssBytes` say what happened.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { config, group, release } from './releases.js';
import { statusShapeProblems } from './status-shape.js';
import { alive, cleanup, type Daemon, startDaemon, tempDir, track, waitFor } from './harness.js';

let daemon: Daemon | null = null;

afterEach(async () => {
  await cleanup();
  daemon = null;
});

function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

const ms = (iso: string): number => Date.parse(iso);

describe('status document values', () => {
  it('a succeeded SIGHUP reload and a failed RPC reload are reported with their times, trigger, code and failure', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    daemon = await startDaemon(config(group(dir, { count: 2, listen: ['127.0.0.1:0'] })), { dir });
    const d = daemon;

    const idle = await d.status();
    expect(idle.reload).toMatchObject({ id: 0, state: 'idle', done: 0, total: 0, error: null, queued: null });

    // 1. A SIGHUP reload that succeeds.
    release(dir, 'v2');
    process.kill(d.pid, 'SIGHUP');
    const ok = await waitFor('the SIGHUP reload to succeed', async () => {
      const s = await d.status();
      return s.reload.id === 1 && s.reload.state === 'succeeded' ? s : null;
    }, 20_000);
    expect(statusShapeProblems(ok)).toEqual([]);
    const r1 = ok.reload;
    expect(r1).toMatchObject({ trigger: 'signal', done: 2, total: 2, error: null, errorCode: null, failure: null, queued: null });
    expect(r1.groups).toEqual([expect.objectContaining({ name: 'web', state: 'rolled', done: 2, total: 2 })]);
    expect(ms(r1.startedAt)).toBeLessThanOrEqual(ms(r1.readyAt));
    expect(ms(r1.readyAt)).toBeLessThanOrEqual(ms(r1.finishedAt));
    expect(r1.durationMs).toBeGreaterThan(0);
    expect(r1.readyMs).toBeGreaterThan(0);
    expect(r1.readyMs).toBeLessThanOrEqual(r1.durationMs);
    // The durations are the differences of the times shown (to the millisecond, rounding aside).
    expect(Math.abs(r1.durationMs - (ms(r1.finishedAt) - ms(r1.startedAt)))).toBeLessThanOrEqual(1);
    expect(Math.abs(r1.readyMs - (ms(r1.readyAt) - ms(r1.startedAt)))).toBeLessThanOrEqual(1);

    const g = ok.groups[0];
    expect(g).toMatchObject({ name: 'web', generation: 2, desired: 2, pending: false });
    expect(g.workers).toHaveLength(2);
    for (const w of g.workers) {
      track(w.pid);
      expect(w).toMatchObject({ generation: 2, state: 'ready', restarts: 0 });
      expect(ms(w.startedAt)).toBeGreaterThanOrEqual(ms(r1.startedAt));
      expect(ms(w.readyAt)).toBeGreaterThanOrEqual(ms(w.startedAt));
      expect(ms(w.readyAt)).toBeLessThanOrEqual(ms(r1.readyAt));
      // rssBytes is the worker's own resident memory: a Node process, tens of MB, close to /proc now.
      expect(w.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
      const now = rssOf(w.pid);
      expect(w.rssBytes).toBeGreaterThan(now / 2);
      expect(w.rssBytes).toBeLessThan(now * 2);
    }

    // 2. An RPC reload whose new worker exits before it is ready.
    release(dir, 'broken', { 'crash.txt': 'Error: v3 cannot open /etc/app/secret.key' });
    const err = await d.rpc('reload', { wait: true }).then(
      () => null,
      (e: { code: number; data: any }) => e,
    );
    expect(err?.code).toBe(-32001);
    const failed = (await d.status()).reload;
    expect(failed).toEqual(expect.objectContaining(err!.data));
    expect(failed).toMatchObject({ id: 2, trigger: 'rpc', state: 'failed', errorCode: -32001, readyAt: null, readyMs: null });
    expect(failed.error).toMatch(/^web: worker \d+ exited with code 1 before it was ready/);
    expect(failed.durationMs).toBeGreaterThan(0);
    expect(Math.abs(failed.durationMs - (ms(failed.finishedAt) - ms(failed.startedAt)))).toBeLessThanOrEqual(1);
    expect(failed.failure).toMatchObject({
      group: 'web',
      workerId: expect.any(Number),
      slot: expect.any(Number),
      pid: expect.any(Number),
      reason: expect.any(String),
    });
    expect(failed.failure.stderrTail).toContain('Error: v3 cannot open /etc/app/secret.key');
    expect(failed.failure.slot).toBeGreaterThanOrEqual(0);
    expect(failed.failure.slot).toBeLessThan(2);
    expect(alive(failed.failure.pid)).toBe(false);
  });
});
