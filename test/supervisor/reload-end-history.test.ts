/**
 * The end of a reload and of smoothd, in the cases the other reload-end tests
 * leave open (DESIGN §5, README "Release history"): a generation rolled back
 * before it proved anything is not kept, a generation that failed is `bad`
 * even when a stop cuts its rollback short, the spec of a failed generation
 * (its listen sockets) is kept until the reload ends, and a stop clears the
 * restart delay of a slot at once.
 */
import { describe, expect, it } from 'vitest';
import { World, groupConfig, makeConfig, runningWorld } from './harness.js';

const outcomes = (w: World, group = 'web'): [number, string | null][] =>
  w.state.groups.find((g) => g.name === group)!.history.map((h) => [h.generation, h.outcome]);
const specKeys = (w: World, group: string): string[] => Object.keys(w.state.groups.find((g) => g.name === group)!.specs).sort();

describe('the release history at the end of a failed reload', () => {
  it('a group that rolled fine before another group failed keeps no entry for the generation it rolled back from', () => {
    const groups = (release: number) => makeConfig([groupConfig({ name: 'web', count: 1 }), groupConfig({ name: 'api', count: 1 })], release);
    const w = runningWorld(groups(1).config.groups);
    w.current = groups(2);
    w.reload();
    w.readyAll('web');
    w.crash(w.live('api').find((x) => x.generation === 2)!.id);
    w.readyUntilSettled();
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    // web's generation 2 served fine but proved nothing: neither good nor bad, so not kept.
    expect(outcomes(w, 'web')).toEqual([[1, 'good']]);
    expect(outcomes(w, 'api')).toEqual([[2, 'bad'], [1, 'good']]);
  });

  it('a generation that failed is bad even when a stop aborts its rollback', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    for (const x of w.live()) w.proc(x.id).behavior.drainMs = 5_000;
    w.current = makeConfig([groupConfig({ count: 2 })], 2);
    w.reload();
    w.ready(w.live().find((x) => x.generation === 2)!.id);
    // The second new worker fails: the rollback starts generation 1 again where an old worker was stopped.
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    expect(w.state.reload).toMatchObject({ id: 1, phase: 'rollingBack' });
    w.stop();
    expect(w.finished.get(1)).toMatchObject({ state: 'aborted', error: 'smoothd is stopping' });
    expect(outcomes(w)).toEqual([[2, 'bad'], [1, 'good']]);
    w.advance(5_000);
    expect(w.exitCode).toBe(0);
  });
});

describe('specs while a failed reload rolls back', () => {
  it("the failed generation's spec is kept until the reload ends, also after its own group is back", () => {
    const web = (release: number) => groupConfig({ name: 'web', count: 1, cwd: '/srv/web/current', command: ['node', `web-${release}.js`] });
    const api = groupConfig({ name: 'api', count: 1, cwd: '/srv/api/current' });
    const w = runningWorld([web(1), api]);
    // Two partial reloads put web on generation 3 while api stays on 1.
    for (const release of [2, 3]) {
      w.current = makeConfig([web(release), api], release);
      w.reload(['web']);
      w.readyUntilSettled();
    }
    expect(w.state.groups.map((g) => [g.name, g.generation])).toEqual([['web', 3], ['api', 1]]);
    w.current = makeConfig([web(4), api], 4);
    w.reload();
    w.readyAll('web');
    for (const x of w.workers('web').filter((x) => x.generation === 3)) w.proc(x.id).behavior.drainMs = 0;
    w.crash(w.live('api').find((x) => x.generation === 2)!.id);
    // api (the failing group) is back on generation 1 at once (its old worker still serves);
    // web rolls back to 3 and waits for its worker.
    expect(w.state.reload).toMatchObject({ phase: 'rollingBack' });
    expect(w.state.groups.find((g) => g.name === 'api')).toMatchObject({ generation: 1, rollTarget: null });
    expect(w.live('api').map((x) => x.generation)).toEqual([1]);
    expect(specKeys(w, 'api')).toEqual(['1', '2']);
    w.readyUntilSettled();
    expect(w.finished.get(3)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(specKeys(w, 'api')).toEqual(['1']);
    expect(specKeys(w, 'web')).toEqual(['3']);
  });
});

describe('a stop while a slot waits to restart', () => {
  it('clears the restart delay timer at once, not when the last worker is gone', () => {
    const w = runningWorld([groupConfig({ count: 2, restartDelayMs: 5_000 })]);
    const [a, b] = w.live();
    w.proc(b!.id).behavior.drainMs = 10_000;
    w.crash(a!.id);
    expect(w.armed()).toContain('backoff:web:0');
    const from = w.effects.length;
    w.stop();
    expect(w.effectsOf('timer.clear', from).map((t) => t.key)).toContain('backoff:web:0');
    expect(w.armed()).toEqual([`kill:${b!.id}`]);
    expect(w.state.groups[0]!.slots[0]!.backoffUntil).toBeNull();
    w.advance(10_000);
    expect(w.effectsOf('spawn', from)).toEqual([]);
    expect(w.exitCode).toBe(0);
  });
});

describe('an old worker crashing while the canary bakes', () => {
  it('its slot is refilled by the roll with the new generation after the bake, not restarted on the old one', () => {
    const verify = { bakeMs: 10_000, maxErrorRate: null, minRequests: 20, watchMs: 0 };
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2, verify })], 2);
    w.reload();
    w.readyAll();
    expect(w.armed()).toContain('bake:1:web');
    const old = w.live().filter((x) => x.generation === 1);
    expect(old).toHaveLength(2);
    const from = w.effects.length;
    w.crash(old[1]!.id);
    w.advance(5_000);
    expect(w.effectsOf('spawn', from)).toEqual([]);
    w.advance(5_000);
    w.readyUntilSettled();
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.effectsOf('spawn', from).map((s) => s.generation)).toEqual([2]);
    expect(w.live().map((x) => x.generation)).toEqual([2, 2]);
  });
});

describe('a canary that sent no stats', () => {
  it('the bake ends with "no responses" for it and counts of 0 in the log, not undefined figures', () => {
    const verify = { bakeMs: 5_000, maxErrorRate: 0.1, minRequests: 20, watchMs: 0 };
    const w = runningWorld([groupConfig({ count: 1 })]);
    w.current = makeConfig([groupConfig({ count: 1, verify })], 2);
    w.reload();
    w.readyAll();
    w.advance(5_000);
    const passed = w.progress.filter((p) => p.event.step === 'bake.passed');
    expect(passed.map((p) => p.event.message)).toEqual([
      'web: bake passed after 5s: canary no responses, old workers no responses (fewer than 20 responses: the error rate could not be judged yet)',
    ]);
    const log = w.effectsOf('log').find((e) => e.msg === 'bake passed: the roll goes on')!;
    expect(log.fields).toMatchObject({ group: 'web', requests: 0, errors: 0, verdict: 'insufficient-data' });
  });
});
