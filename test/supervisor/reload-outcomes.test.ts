/**
 * What a reload's end teaches the release history when several groups roll
 * (DESIGN §5, §10): only the generations of a succeeded reload become `good`;
 * a group that rolled fine in a reload that failed later learns nothing good.
 * And the verification state a canary starts from: no old worker shedding yet,
 * no verdict.
 */
import { describe, expect, it } from 'vitest';
import { groupConfig, makeConfig, runningWorld } from './harness.js';

const outcomes = (w: ReturnType<typeof runningWorld>, group: string): [number, string | null][] =>
  w.state.groups.find((g) => g.name === group)!.history.map((h) => [h.generation, h.outcome]);

describe('history outcomes of a multi-group reload', () => {
  it('a group rolled before another group failed is not marked good; the failed one is marked bad', () => {
    const groups = (release: number) => makeConfig([groupConfig({ name: 'web', count: 1 }), groupConfig({ name: 'api', count: 1 })], release);
    const w = runningWorld(groups(1).config.groups);
    w.current = groups(2);
    w.reload();
    w.readyAll('web');
    expect(w.state.reload!.order.map((e) => e.state)).toEqual(['rolled', 'rolling']);
    w.crash(w.live('api').find((x) => x.generation === 2)!.id);
    w.readyUntilSettled();
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(outcomes(w, 'api')).toEqual([[2, 'bad'], [1, 'good']]);
    expect(outcomes(w, 'web').find(([g]) => g === 2)?.[1] ?? null).not.toBe('good');
    expect(outcomes(w, 'web').find(([g]) => g === 1)).toEqual([1, 'good']);
  });
});

describe('the verification a canary starts from', () => {
  it('the old workers shedding during the bake are exactly the live old ones, and none after', () => {
    const verify = { bakeMs: 5_000, maxErrorRate: 0.1, minRequests: 20, watchMs: 0 };
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2, verify })], 2);
    w.reload();
    w.readyAll();
    const v = w.state.reload!.order[0]!.verification!;
    expect(v.shedding).toEqual([1, 2]);
    expect(v.verdict).toBeNull();
    w.autoReady = true;
    w.advance(5_000);
    w.advance(30_000);
    // No stats from the canary: it could not be judged, which is not a pass.
    expect(w.finished.get(1)!.groups[0]!.verification).toMatchObject({ verdict: 'insufficient-data', canary: { requests: 0, errors: 0 } });
  });
});

describe('old workers after a failed reload', () => {
  it('an old worker still draining when a reload fails is no longer retired by it', () => {
    const w = runningWorld([groupConfig({ count: 2, onFailure: 'keep' })]);
    for (const x of w.live()) w.proc(x.id).behavior.drainMs = 10_000;
    w.current = makeConfig([groupConfig({ count: 2, onFailure: 'keep' })], 2);
    w.reload();
    w.ready(w.live().find((x) => x.generation === 2)!.id);
    const draining = w.workers().find((x) => x.generation === 1 && x.phase === 'stopping')!;
    expect(draining.retiredBy).toBe(1);
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    expect(w.workers().find((x) => x.id === draining.id)).toMatchObject({ phase: 'stopping', retiredBy: null });
    w.advance(10_000);
    expect(w.workers().some((x) => x.id === draining.id)).toBe(false);
  });
});
