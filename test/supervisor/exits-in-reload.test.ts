/**
 * What an exit, a readiness or a timer means while a reload runs (or just
 * after): which failures fail the reload, which count as a slot's crash
 * restart, which progress a caller sees, and when a generation's spec (and so
 * its listen sockets) is forgotten.
 */
import { describe, expect, it } from 'vitest';
import { step } from '../../src/supervisor/machine.js';
import { groupConfig, makeConfig, runningWorld, type World } from './harness.js';

const specKeys = (w: World) => Object.keys(w.state.groups[0]!.specs).sort();
const slotOf = (w: World, i: number) => w.state.groups[0]!.slots[i]!;

/** A world whose slot 1 runs a crash-restarted generation-1 worker that is not ready yet. */
function restartingSlot1(readyTimeoutMs = 30_000): { w: World; starting: number } {
  const g = groupConfig({ count: 2, readyTimeoutMs });
  const w = runningWorld([g]);
  w.crash(w.live().find((x) => x.slot === 1)!.id);
  w.advance(100); // the backoff is over: slot 1 starts again
  const starting = w.live().find((x) => x.slot === 1 && x.phase === 'starting')!;
  expect(starting.generation).toBe(1);
  w.current = makeConfig([{ ...g, readyTimeoutMs: 30_000 }], 2);
  return { w, starting: starting.id };
}

describe('an old worker that was still starting when the roll began', () => {
  it('crashing before it was ready does not fail the reload; the roll refills its slot with the new generation', () => {
    const { w, starting } = restartingSlot1();
    w.reload();
    expect(w.state.groups[0]!.rollTarget).toBe(2);
    w.crash(starting);
    expect(w.state.reload).toMatchObject({ phase: 'rolling', rollback: null });
    w.readyUntilSettled();
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', failure: null });
    expect(w.live().map((x) => [x.slot, x.generation])).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect(w.violations).toEqual([]);
  });

  it('missing its readyTimeout does not fail the reload and is not counted as a restart of its slot', () => {
    const { w, starting } = restartingSlot1(1_000);
    w.reload();
    expect(slotOf(w, 1).restarts).toBe(1); // the crash before the reload
    w.advance(1_000); // worker `starting` (generation 1) misses its 1 s readyTimeout
    expect(w.state.workers.find((x) => x.id === starting)?.phase ?? 'gone').not.toBe('starting');
    expect(slotOf(w, 1).restarts).toBe(1);
    expect(w.armed().filter((k) => k.startsWith('backoff:'))).toEqual([]);
    w.readyUntilSettled();
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', failure: null });
    expect(w.live().map((x) => x.generation)).toEqual([2, 2]);
  });
});

describe('a reload that failed and rolls back', () => {
  it('reports no "old worker exited" for the failed new worker, which it did not retire', () => {
    const g = groupConfig({ count: 2, rolling: { surge: 0, unavailable: 1 } });
    const w = runningWorld([g]);
    w.current = makeConfig([{ ...g, readyTimeoutMs: 1_000 }], 2);
    w.behave = (sp) => (sp.generation === 2 ? { drainMs: 3_000 } : {});
    w.reload(); // old worker 1 retired, new worker 3 starts in slot 0
    w.advance(1_000); // 3 misses its readyTimeout: rollback to generation 1, 3 drains for 3 s
    expect(w.state.reload!.phase).toBe('rollingBack');
    const from = w.progress.length;
    w.advance(3_000);
    expect(w.state.workers.some((x) => x.id === 3)).toBe(false);
    expect(w.state.reload).not.toBeNull(); // 3 exited while the rollback still ran
    expect(w.progress.slice(from).map((p) => p.event.step)).not.toContain('worker.stopped');
    w.readyUntilSettled();
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
  });

  it('starts no bake for the worker that brings the old generation back (verification judges new code only)', () => {
    const verify = { bakeMs: 5_000, maxErrorRate: null, minRequests: 20, watchMs: 0 };
    const g = groupConfig({ count: 1, rolling: { surge: 0, unavailable: 1 }, verify });
    const w = runningWorld([g]);
    w.current = makeConfig([g], 2);
    w.reload();
    w.crash(w.live().find((x) => x.generation === 2)!.id); // the canary fails before it is ready
    const from = w.effects.length;
    w.readyAll(); // the rollback's generation-1 worker is ready
    expect(w.effectsOf('timer.set', from).map((e) => e.key).filter((k) => k.startsWith('bake:'))).toEqual([]);
    expect(w.effectsOf('worker.shed', from)).toEqual([]);
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(report.groups[0]!.verification!.canary.workerId).toBeNull();
  });
});

describe('the spec of an old generation is forgotten when its last process is gone', () => {
  it('after a crash during the roll whose process group lingered: once the rest of the group has exited', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    const old = w.live()[0]!;
    w.proc(old.id).behavior.straggler = 'ignoresStop';
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    w.reload();
    w.crash(old.id); // its leader exits, a child lives on and is being stopped
    w.readyAll();
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(specKeys(w)).toEqual(['1', '2']); // the rest of generation 1 still runs
    w.groupGone(old.id);
    expect(specKeys(w)).toEqual(['2']);
    expect(w.violations).toEqual([]);
  });

  it('after a stop cut a reload short: when the old worker exits, while a new one still drains', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    w.proc(w.live()[0]!.id).behavior.drainMs = 1_000;
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    w.behave = () => ({ drainMs: 5_000 });
    w.reload();
    w.readyAll(); // new worker 2 ready; old worker 1 retired, draining
    w.stop();
    expect(w.finished.get(1)!.state).toBe('aborted');
    expect(specKeys(w)).toEqual(['1', '2']);
    w.advance(1_000);
    expect(w.workers().map((x) => x.generation)).toEqual([2]);
    expect(specKeys(w)).toEqual(['2']);
    w.advance(4_000);
    expect(w.exitCode).toBe(0);
  });
});

describe('exits of workers a reload retired', () => {
  it('a surplus worker of a shrinking group exits after its slot is gone: the reload ends cleanly', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    for (const x of w.live()) w.proc(x.id).behavior.drainMs = 1_000;
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    w.reload();
    w.readyUntilSettled();
    expect(w.state.groups[0]!.slots).toHaveLength(1);
    expect(w.workers().filter((x) => x.slot === 1).map((x) => x.phase)).toEqual(['stopping']);
    w.advance(1_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', failure: null });
    expect(w.workers().map((x) => [x.slot, x.generation, x.phase])).toEqual([[0, 2, 'ready']]);
    expect(w.violations).toEqual([]);
  });
});

describe('crash restarts', () => {
  it('a worker that keeps crashing before it is ready backs off doubling each time', () => {
    const w = runningWorld([groupConfig({ count: 1, restartDelayMs: 100 })]);
    w.behave = () => ({ crashAfterMs: 10 });
    const from = w.effects.length;
    w.crash(w.live()[0]!.id);
    w.advance(5_000);
    const delays = w.effectsOf('timer.set', from).filter((e) => e.key === 'backoff:web:0').map((e) => e.ms);
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200]);
  });
});

describe('a kill timer that fired just before a forced stop cleared it', () => {
  it('sends no second SIGKILL', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    const id = w.live()[0]!.id;
    w.proc(id).behavior.drainMs = 10_000;
    w.stop();
    expect(w.armed()).toContain(`kill:${id}`);
    // Step the machine directly: the runtime delivers the kill timer after the forced stop.
    const forced = step(w.state, { type: 'stop.request', requestId: 1, force: true }, w.now);
    expect(forced.effects.filter((e) => e.type === 'signal' && e.signal === 'SIGKILL')).toHaveLength(1);
    const stale = step(forced.state, { type: 'timer', key: `kill:${id}` }, w.now + 1);
    expect(stale.effects.filter((e) => e.type === 'signal')).toEqual([]);
  });
});
