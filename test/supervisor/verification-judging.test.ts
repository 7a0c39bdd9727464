/**
 * Which worker's counters deploy verification judges, and what the report
 * says after (DESIGN §10): old workers are never judged, only the canary's
 * own counters are the canary's figures, a rollback judges nothing more, an
 * old worker that never reported counts as zero, and a reload that failed on
 * a crash after a judged bake-less canary still reports the judgement passed.
 */
import { describe, expect, it } from 'vitest';
import type { GroupConfig, VerifyPolicy } from '../../src/config/types.js';
import { groupConfig, makeConfig, runningWorld, type World } from './harness.js';

const verify = (v: Partial<VerifyPolicy>): VerifyPolicy => ({ bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 0, ...v });
const ipc = { kind: 'ipc' } as const;

function world(groups: Partial<GroupConfig>[], next: Partial<GroupConfig> = {}): World {
  const w = runningWorld(groups.map((g) => groupConfig(g)));
  w.current = makeConfig(
    groups.map((g) => groupConfig({ ...g, ...next })),
    2,
  );
  return w;
}

const stats = (w: World, workerId: number, requests: number | null, errors: number | null) => w.send({ type: 'worker.stats', workerId, requests, errors });
const steps = (w: World, step: string) => w.progress.filter((p) => p.event.step === step);
const slowDrain = (w: World, ms = 1000) => {
  for (const p of w.procs.values()) p.behavior.drainMs = ms;
};

describe('what deploy verification judges', () => {
  it('an old worker answering errors during the bake is not judged: the bake passes and the reload succeeds', () => {
    const w = world([{ count: 2, ready: ipc }], { verify: verify({ bakeMs: 2_000, maxErrorRate: 0.1, minRequests: 5 }) });
    w.reload();
    w.readyAll();
    stats(w, 1, 50, 40);
    expect(steps(w, 'verify.failed')).toEqual([]);
    w.advance(2_000);
    w.readyUntilSettled();
    w.advance(30_000);
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('succeeded');
    expect(rep.groups[0]!.verification).toMatchObject({ old: { requests: 50, errors: 40 }, verdict: 'insufficient-data' });
  });

  it("the canary's figures are the canary's own counters, not those of the next new worker", () => {
    const w = world([{ count: 2, ready: ipc }], { verify: verify({ maxErrorRate: 0.5, minRequests: 5 }) });
    slowDrain(w);
    w.reload();
    w.readyAll();
    const canary = w.live().find((x) => x.generation === 2 && x.phase === 'ready')!;
    stats(w, canary.id, 10, 1);
    w.readyAll();
    const second = w.live().find((x) => x.generation === 2 && x.id !== canary.id)!;
    stats(w, second.id, 30, 2);
    w.readyUntilSettled();
    w.advance(30_000);
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('succeeded');
    expect(rep.groups[0]!.verification).toMatchObject({ canary: { workerId: canary.id, requests: 10, errors: 1 }, verdict: 'passed' });
  });

  it('a new worker reporting its counters does not count among the old workers', () => {
    const w = world([{ count: 1, ready: ipc }], { verify: verify({ bakeMs: 2_000, maxErrorRate: 0.5, minRequests: 5 }) });
    stats(w, 1, 3, 0);
    w.reload();
    w.readyAll();
    const canary = w.live().find((x) => x.generation === 2)!;
    stats(w, canary.id, 10, 1);
    stats(w, 1, 7, 1);
    expect(Object.keys(w.state.reload!.order[0]!.verification!.oldNow)).toEqual(['1']);
    w.advance(2_000);
    expect(steps(w, 'bake.passed').map((p) => p.event.message)).toEqual([
      'web: bake passed after 2s: canary 10.0% errors (1 of 10), old workers 25.0% errors (1 of 4)',
    ]);
  });

  it('an old worker that never reported counts as zero responses in the old figures', () => {
    const w = world([{ count: 2, ready: ipc }], { verify: verify({ bakeMs: 2_000, maxErrorRate: 0.5, minRequests: 5 }) });
    stats(w, 1, 4, 0); // worker 2 never reports
    w.reload();
    w.readyAll();
    stats(w, 1, 10, 1);
    w.advance(2_000);
    w.readyUntilSettled();
    w.advance(30_000);
    expect(w.finished.get(1)!.groups[0]!.verification.old).toEqual({ requests: 6, errors: 1 });
    expect(steps(w, 'bake.passed')[0]!.event.message).toContain('old workers 16.7% errors (1 of 6)');
  });

  it('a first report with only the error count starts the request count at 0', () => {
    const w = world([{ count: 1 }]);
    stats(w, 1, null, 2);
    expect(w.workers()[0]!.counters).toEqual({ requests: 0, errors: 2 });
    stats(w, 2, 5, null);
    const fresh = runningWorld([groupConfig({ count: 1 })]);
    fresh.send({ type: 'worker.stats', workerId: 1, requests: 5, errors: null });
    expect(fresh.workers()[0]!.counters).toEqual({ requests: 5, errors: 0 });
  });

  it('while the group rolls back, a failed new worker that still serves is not judged again', () => {
    const w = world([{ count: 2, ready: ipc }], { verify: verify({ maxErrorRate: 0.1, minRequests: 5 }) });
    slowDrain(w);
    w.reload();
    w.readyAll();
    const canary = w.live().find((x) => x.generation === 2 && x.phase === 'ready')!;
    stats(w, canary.id, 10, 5);
    expect(steps(w, 'verify.failed')).toHaveLength(1);
    expect(w.state.reload!.rollback).not.toBeNull();
    const serving = w.workers().filter((x) => x.generation === 2 && x.phase === 'ready');
    for (const x of serving) stats(w, x.id, 100, 90);
    expect(steps(w, 'verify.failed')).toHaveLength(1);
    w.autoReady = true;
    w.readyUntilSettled();
    w.advance(30_000);
    const rep = w.finished.get(1)!;
    expect(rep).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(rep.failure!.reason).toContain('answered 50.0% errors (5 of 10)');
  });

  it('a reload that fails on a crash after a judged canary without a bake reports the judgement passed, not failed', () => {
    const w = world([{ count: 2, ready: ipc }], { verify: verify({ maxErrorRate: 0.5, minRequests: 5 }) });
    slowDrain(w);
    w.reload();
    w.readyAll();
    const canary = w.live().find((x) => x.generation === 2 && x.phase === 'ready')!;
    stats(w, canary.id, 10, 0);
    const second = w.live().find((x) => x.generation === 2 && x.phase === 'starting')!;
    w.crash(second.id, ['second boom']);
    w.autoReady = true;
    w.readyUntilSettled();
    w.advance(30_000);
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('failed');
    expect(rep.failure).toMatchObject({ workerId: second.id, stderrTail: ['second boom'] });
    expect(rep.groups[0]!.verification).toMatchObject({ canary: { workerId: canary.id, requests: 10, errors: 0 }, verdict: 'passed' });
  });
});
