/**
 * The bookkeeping around stopping and refilling workers that an operator sees
 * as effects and status: a stopped starting worker's ready timers go with the
 * stop, a stop during verification releases shedding workers and clears the
 * reload's timers in the same step, the spec of a generation stays while any
 * worker, slot or rollback may still need it, slots beyond the count are not
 * refilled, and queued reloads of different groups merge.
 */
import { describe, expect, it } from 'vitest';
import type { Effect, MachineEvent } from '../../src/supervisor/types.js';
import { World, groupConfig, makeConfig, runningWorld } from './harness.js';

/** The effects of the single machine step that handled the first event of `type` from now on. */
function stepEffects(w: World, type: MachineEvent['type']): () => Effect[] {
  let seen: Effect[] | null = null;
  w.onStep = (_prev, event, result) => {
    if (seen === null && event.type === type) seen = result.effects;
  };
  return () => seen ?? [];
}

const verify = { bakeMs: 10_000, maxErrorRate: null, minRequests: 20, watchMs: 0 };

describe('stopping workers', () => {
  it('a stop during start-up clears the ready and readyTimeout timers of the starting workers in the stop step', () => {
    const w = new World(makeConfig([groupConfig({ count: 2, ready: { kind: 'delay', ms: 2_000 } })]));
    for (const x of w.live()) w.proc(x.id).behavior.drainMs = 5_000;
    const ids = w.live().map((x) => x.id);
    const effects = stepEffects(w, 'stop.request');
    w.stop();
    const cleared = effects().filter((e): e is Extract<Effect, { type: 'timer.clear' }> => e.type === 'timer.clear').map((e) => e.key).sort();
    expect(cleared).toEqual(ids.flatMap((id) => [`ready:${id}`, `readyTimeout:${id}`]).sort());
    // The delay passes while they drain: they never become ready, nothing fails or restarts.
    w.advance(2_000);
    expect(w.workers().every((x) => x.phase === 'stopping' && x.readyAt === null)).toBe(true);
    expect(w.effectsOf('daemon.ready')).toEqual([]);
    w.advance(3_000);
    expect(w.exitCode).toBe(0);
    expect(w.effectsOf('spawn')).toHaveLength(2);
  });

  it('a second stop with force clears the kill timers in its own step', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    for (const x of w.live()) w.proc(x.id).behavior.ignoreStop = true;
    const ids = w.live().map((x) => x.id);
    w.stop();
    expect(w.armed()).toEqual(ids.map((id) => `kill:${id}`).sort());
    const effects = stepEffects(w, 'stop.request');
    w.stop(true);
    const own = effects();
    expect(own.filter((e) => e.type === 'timer.clear').map((e) => (e as { key: string }).key).sort()).toEqual(ids.map((id) => `kill:${id}`).sort());
    expect(own.filter((e) => e.type === 'signal').map((e) => (e as { signal: string }).signal)).toEqual(['SIGKILL', 'SIGKILL']);
    // Killed, not crashed: each slot says so.
    expect(w.state.groups[0]!.slots.map((s) => s.lastExit!.reason)).toEqual(['killed after stopTimeout', 'killed after stopTimeout']);
  });

  it('a stop during the bake releases the shedding old workers (share 0) before stopping them', () => {
    const w = runningWorld([groupConfig({ count: 3 })]);
    w.current = makeConfig([groupConfig({ count: 3, verify })], 2);
    w.reload();
    w.readyAll();
    expect(w.effectsOf('worker.shed').map((e) => e.share)).toEqual([0.1, 0.1, 0.1]);
    const from = w.effects.length;
    w.stop();
    const after = w.effects.slice(from);
    const released = after.filter((e): e is Extract<Effect, { type: 'worker.shed' }> => e.type === 'worker.shed');
    expect(released.map((e) => [e.workerId, e.share])).toEqual([[1, 0], [2, 0], [3, 0]]);
    const firstSignal = after.findIndex((e) => e.type === 'signal');
    expect(after.findIndex((e) => e.type === 'worker.shed')).toBeLessThan(firstSignal);
    expect(w.finished.get(1)!.state).toBe('aborted');
  });

  it('a stop during the watch clears the watch timer in the stop step', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    w.current = makeConfig([groupConfig({ count: 1, verify: { ...verify, bakeMs: 0, watchMs: 60_000 } })], 2);
    w.reload();
    w.readyUntilSettled();
    expect(w.armed()).toContain('watch:1:web');
    for (const x of w.live()) w.proc(x.id).behavior.drainMs = 1_000;
    const effects = stepEffects(w, 'stop.request');
    w.stop();
    expect(effects()).toContainEqual({ type: 'timer.clear', key: 'watch:1:web' });
    expect(w.finished.get(1)).toMatchObject({ state: 'aborted', errorCode: -32006 });
    w.advance(1_000);
    expect(w.exitCode).toBe(0);
  });
});

describe('the specs smoothd keeps', () => {
  it('the previous spec of a group already rolled stays while a later group rolls, so the rollback can use it', () => {
    const w = runningWorld([groupConfig({ name: 'web', count: 1 }), groupConfig({ name: 'api', count: 1 })]);
    w.current = makeConfig([groupConfig({ name: 'web', count: 1 }), groupConfig({ name: 'api', count: 1 })], 2);
    w.reload();
    // web rolls first: its new worker is ready and its old one has exited.
    w.readyAll('web');
    expect(w.live('web').map((x) => x.generation)).toEqual([2]);
    expect(w.state.reload!.order.map((e) => [e.name, e.state])).toEqual([['web', 'rolled'], ['api', 'rolling']]);
    expect(Object.keys(w.state.groups[0]!.specs).sort()).toEqual(['1', '2']);
    w.crash(w.live('api').find((x) => x.generation === 2)!.id);
    w.readyUntilSettled();
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(w.live('web').map((x) => x.generation)).toEqual([1]);
    expect(w.state.groups.map((g) => g.generation)).toEqual([1, 1]);
  });

  it('the spec of an old generation stays while one of its workers still drains', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    const [a, b] = w.live();
    w.proc(a!.id).behavior.drainMs = 5_000;
    w.proc(b!.id).behavior.drainMs = 1_000;
    w.current = makeConfig([groupConfig({ count: 2, rolling: { surge: 2, unavailable: 0 } })], 2);
    w.reload();
    w.readyAll();
    w.advance(1_000);
    expect(w.workers().filter((x) => x.generation === 1).map((x) => x.id)).toEqual([a!.id]);
    expect(Object.keys(w.state.groups[0]!.specs).sort()).toEqual(['1', '2']);
    w.advance(4_000);
    expect(Object.keys(w.state.groups[0]!.specs)).toEqual(['2']);
    expect(w.finished.get(1)!.state).toBe('succeeded');
  });

  it('a slot of the failed generation (onFailure: keep) restarts from that generation after a crash', () => {
    const w = runningWorld([groupConfig({ count: 2, onFailure: 'keep', restartDelayMs: 100 })]);
    w.current = makeConfig([groupConfig({ count: 2, onFailure: 'keep', restartDelayMs: 100 })], 2);
    w.reload();
    const fresh = w.live().find((x) => x.generation === 2)!;
    w.ready(fresh.id);
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    const kept = w.live().find((x) => x.generation === 2)!;
    expect(kept).toBeDefined();
    w.crash(kept.id);
    w.advance(100);
    const again = w.live().find((x) => x.slot === kept.slot)!;
    expect(again.generation).toBe(2);
    expect(w.effectsOf('spawn').at(-1)!.spec.cwdReal).toBe('/srv/app/releases/2');
    expect(w.violations).toEqual([]);
  });
});

describe('refilling slots', () => {
  it('after a reload lowers the count, the slots beyond it are not refilled', () => {
    const w = runningWorld([groupConfig({ count: 3 })]);
    w.current = makeConfig([groupConfig({ count: 2 })], 2);
    w.reload();
    w.readyUntilSettled();
    w.advance(60_000);
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.live().map((x) => [x.slot, x.generation]).sort()).toEqual([[0, 2], [1, 2]]);
    const spawns = w.effectsOf('spawn').length;
    w.crash(w.live()[0]!.id);
    w.advance(100);
    w.readyAll();
    w.advance(60_000);
    expect(w.effectsOf('spawn')).toHaveLength(spawns + 1);
    expect(w.live().map((x) => x.slot).sort()).toEqual([0, 1]);
  });

  it('no old-generation worker refills a slot the roll emptied (the roll decides)', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    for (const x of w.live()) w.proc(x.id).behavior.drainMs = 1_000;
    w.current = makeConfig([groupConfig({ count: 2, rolling: { surge: 0, unavailable: 1 } })], 2);
    w.reload();
    w.advance(1_000);
    expect(w.effectsOf('spawn').filter((s) => s.generation === 1)).toHaveLength(2);
    w.readyUntilSettled();
    w.advance(5_000);
    w.readyUntilSettled();
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.effectsOf('spawn').filter((s) => s.generation === 1)).toHaveLength(2);
    expect(w.live().map((x) => x.generation)).toEqual([2, 2]);
  });
});

describe('queued reloads', () => {
  it('reloads of different groups asked for during a reload merge into one follow-up that rolls both', () => {
    const groups = (release: number) => makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'api' }), groupConfig({ name: 'db' })], release);
    const w = new World(groups(1), { autoReady: true });
    w.current = groups(2);
    w.autoReady = false;
    w.reload(['db']);
    w.reload(['web'], 50);
    w.reload(['api'], 51);
    w.reload(['web'], 52);
    expect([50, 51, 52].map((id) => w.accepted(id)!.reloadId)).toEqual([2, 2, 2]);
    expect(w.state.queued).toMatchObject({ id: 2, groups: ['web', 'api'] });
    w.autoReady = true;
    w.readyUntilSettled();
    w.advance(1_000);
    expect(w.finished.get(2)!.groups.map((g) => g.name).sort()).toEqual(['api', 'web']);
    expect(w.state.groups.map((g) => [g.name, g.generation])).toEqual([['web', 2], ['api', 2], ['db', 2]]);
  });
});
