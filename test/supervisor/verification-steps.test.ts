/**
 * Deploy verification's steps as an operator sees them: which old workers are
 * asked to shed keep-alive clients during a bake (and released after it), the
 * progress messages of the bake and the watch, and timers of another reload or
 * group that must change nothing.
 */
import { describe, expect, it } from 'vitest';
import type { GroupConfig, VerifyPolicy } from '../../src/config/types.js';
import { groupConfig, makeConfig, runningWorld, type World } from './harness.js';

const verify = (v: Partial<VerifyPolicy>): VerifyPolicy => ({ bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 0, ...v });

function world(groups: Partial<GroupConfig>[], next: Partial<GroupConfig> = {}): World {
  const w = runningWorld(groups.map((g) => groupConfig(g)));
  w.current = makeConfig(
    groups.map((g) => groupConfig({ ...g, ...next })),
    2,
  );
  return w;
}

const progress = (w: World, step: string) => w.progress.filter((p) => p.event.step === step).map((p) => p.event);
const shed = (w: World, from = 0) => w.effectsOf('worker.shed', from).map((e) => [e.workerId, e.share]);

describe('bake: old workers shed keep-alive clients', () => {
  it('every live old worker sheds 10% while the canary bakes, and 0% again once the bake passed', () => {
    const w = world([{ count: 3, rolling: { surge: 1, unavailable: 0 } }], { verify: verify({ bakeMs: 4_000 }) });
    w.reload();
    expect(shed(w)).toEqual([]); // not before the canary is ready
    w.readyAll();
    const canary = w.live().find((x) => x.generation === 2)!;
    expect(shed(w)).toEqual([
      [1, 0.1],
      [2, 0.1],
      [3, 0.1],
    ]);
    expect(progress(w, 'bake.started')).toEqual([
      expect.objectContaining({ group: 'web', workerId: canary.id, pid: canary.pid, bakeMs: 4_000, message: `web: canary worker ${canary.id} (pid ${canary.pid}) baking for 4s` }),
    ]);
    const at = w.effects.length;
    w.advance(4_000);
    // The bake passed: the roll goes on and stops one old worker; the ones still serving shed no more.
    const released = shed(w, at);
    expect(released.every(([, share]) => share === 0)).toBe(true);
    expect(released.map(([id]) => id).sort()).toEqual([1, 2, 3]);
    expect(w.state.reload!.order[0]!.verification!.shedding).toEqual([]);
  });

  it('an old worker that crashed during the bake is not released (it is gone)', () => {
    const w = world([{ count: 3 }], { verify: verify({ bakeMs: 4_000 }) });
    w.reload();
    w.readyAll();
    w.crash(2);
    const at = w.effects.length;
    w.advance(4_000);
    expect(shed(w, at).map(([id]) => id).sort()).toEqual([1, 3]);
    expect(w.violations).toEqual([]);
  });

  it('the bake-passed message gives the canary and old figures, and says when the rate could not be judged', () => {
    const w = world([{ count: 1 }], { verify: verify({ bakeMs: 1_500, maxErrorRate: 0.5, minRequests: 20 }) });
    w.send({ type: 'worker.stats', workerId: 1, requests: 10, errors: 0 });
    w.reload();
    w.readyAll();
    const canary = w.live().find((x) => x.generation === 2)!;
    w.send({ type: 'worker.stats', workerId: canary.id, requests: 4, errors: 1 });
    w.send({ type: 'worker.stats', workerId: 1, requests: 18, errors: 2 });
    w.advance(1_500);
    expect(progress(w, 'bake.passed').map((e) => e.message)).toEqual([
      'web: bake passed after 1.5s: canary 25.0% errors (1 of 4), old workers 25.0% errors (2 of 8) (fewer than 20 responses: the error rate could not be judged yet)',
    ]);
    expect(progress(w, 'bake.passed')[0]).toMatchObject({ workerId: canary.id, group: 'web' });
  });

  it('a bake with enough responses within budget passes without the note', () => {
    const w = world([{ count: 1 }], { verify: verify({ bakeMs: 2_000, maxErrorRate: 0.5, minRequests: 2 }) });
    w.reload();
    w.readyAll();
    const canary = w.live().find((x) => x.generation === 2)!;
    w.send({ type: 'worker.stats', workerId: canary.id, requests: 4, errors: 0 });
    w.advance(2_000);
    expect(progress(w, 'bake.passed').map((e) => e.message)).toEqual(['web: bake passed after 2s: canary 0.0% errors (0 of 4), old workers no responses']);
  });
});

describe('bake and watch timers', () => {
  it('the watch-passed message names the watch; the group then counts as rolled', () => {
    const w = world([{ count: 1 }], { verify: verify({ watchMs: 90_000 }) });
    w.reload();
    w.readyUntilSettled();
    w.advance(90_000);
    expect(progress(w, 'watch.passed').map((e) => e.message)).toEqual(['web: no new worker crashed during the 90s watch']);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', groups: [{ name: 'web', state: 'rolled' }] });
  });

  it('a bake timer of another reload or another group changes nothing', () => {
    const w = world([{ name: 'web', count: 1 }, { name: 'api', count: 1 }], { verify: verify({ bakeMs: 4_000 }) });
    w.reload();
    w.readyAll();
    const before = structuredClone(w.state);
    w.send({ type: 'timer', key: 'bake:9:web' });
    w.send({ type: 'timer', key: 'bake:1:api' });
    w.send({ type: 'timer', key: 'watch:1:web' });
    expect(w.state).toEqual(before);
    expect(progress(w, 'bake.passed')).toEqual([]);
  });

  it('stats of an old worker during the bake move the old figures; the new worker never reported, so its rate was not judged; stats after the reload ended are kept but judge nothing', () => {
    const w = world([{ count: 1 }], { verify: verify({ bakeMs: 4_000, maxErrorRate: 0.1, minRequests: 1 }) });
    w.send({ type: 'worker.stats', workerId: 1, requests: 5, errors: 0 });
    w.reload();
    w.readyAll();
    w.send({ type: 'worker.stats', workerId: 1, requests: 12, errors: 3 });
    expect(w.state.reload!.order[0]!.verification!.oldNow).toEqual({ '1': { requests: 12, errors: 3 } });
    expect(w.state.reload!.order[0]!.verification!.oldBase).toEqual({ '1': { requests: 5, errors: 0 } });
    w.advance(4_000);
    w.readyUntilSettled();
    w.advance(30_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', groups: [{ verification: { old: { requests: 7, errors: 3 }, verdict: 'insufficient-data' } }] });
    const fresh = w.live()[0]!;
    w.send({ type: 'worker.stats', workerId: fresh.id, requests: 100, errors: 100 });
    expect(w.state.reload).toBeNull();
    expect(w.workers().find((x) => x.id === fresh.id)!.counters).toEqual({ requests: 100, errors: 100 });
  });

  it('a report with only one counter keeps the other one', () => {
    const w = world([{ count: 1 }]);
    w.send({ type: 'worker.stats', workerId: 1, requests: 5, errors: 2 });
    w.send({ type: 'worker.stats', workerId: 1, requests: null, errors: 3 });
    expect(w.workers()[0]!.counters).toEqual({ requests: 5, errors: 3 });
    w.send({ type: 'worker.stats', workerId: 1, requests: 9, errors: null });
    expect(w.workers()[0]!.counters).toEqual({ requests: 9, errors: 3 });
    w.send({ type: 'worker.stats', workerId: 99, requests: 1, errors: 1 });
    expect(w.violations).toEqual([]);
  });
});
