/**
 * What happens when a reload ends (DESIGN §5): its report names the follow-up
 * queued behind it, the release history learns which generations were good or
 * bad, groups the config removed are drained, a group it added but never
 * started is dropped, bake and watch timers of the reload are cleared, specs no
 * worker runs are forgotten, the daemon is `running` again and the next queued
 * item starts; and how start-up ends (every group ready, then `daemon.ready`).
 */
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../src/supervisor/types.js';
import { World, groupConfig, makeConfig, runningWorld } from './harness.js';

type Log = Extract<Effect, { type: 'log' }>;
const logs = (w: World, msg: string, from = 0): Log[] => w.effectsOf('log', from).filter((e) => e.msg === msg);
const outcomes = (w: World, group = 'web'): [number, string | null][] =>
  w.state.groups.find((g) => g.name === group)!.history.map((h) => [h.generation, h.outcome]);

describe('the end of a reload', () => {
  it('its report names the follow-up queued behind it; the follow-up then starts and its report names none', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    w.reload(null, 20);
    w.reload(null, 21);
    expect(w.accepted(21)).toMatchObject({ reloadId: 2, state: 'queued' });
    w.current = makeConfig([groupConfig({ count: 1 })], 3);
    w.readyAll();
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', queued: 2 });
    expect(w.state.reload!.id).toBe(2);
    expect(w.state.daemon).toBe('reloading');
    w.readyUntilSettled();
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', queued: null });
    expect(w.state.daemon).toBe('running');
    expect(w.effectsOf('daemon.state').map((e) => e.state)).toEqual(['running', 'reloading', 'running', 'reloading', 'running']);
  });

  it('logs the outcome: info on success, error with the rollback state on failure', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    w.advance(1_000);
    w.reload();
    w.advance(250);
    w.readyUntilSettled();
    expect(logs(w, 'reload succeeded')).toEqual([
      { type: 'log', level: 'info', msg: 'reload succeeded', fields: { reloadId: 1, durationMs: 250, error: null } },
    ]);
    w.current = makeConfig([groupConfig({ count: 1 })], 3);
    w.reload();
    w.crash(w.live().find((x) => x.generation === 3)!.id);
    w.readyUntilSettled();
    const failed = logs(w, 'reload failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ level: 'error', fields: { reloadId: 2, rollback: 'succeeded' } });
    expect(String(failed[0]!.fields.error)).toMatch(/^web: worker \d+ exited with code 1 before it was ready/);
    // The rollback's end is a progress step of its own, with its state.
    const done = w.progress.filter((p) => p.reloadId === 2 && p.event.step === 'rollback.done' && p.event.group === null);
    expect(done.map((p) => p.event.message)).toEqual(['rollback succeeded']);
    expect(w.progress.some((p) => p.reloadId === 1 && p.event.step === 'rollback.done')).toBe(false);
  });

  it('the history marks a rolled generation good and a failed one bad; an aborted one learns nothing', () => {
    const w = runningWorld([groupConfig({ count: 1, onFailure: 'keep' })]);
    expect(outcomes(w)).toEqual([[1, 'good']]);
    w.current = makeConfig([groupConfig({ count: 1, onFailure: 'keep' })], 2);
    w.reload();
    w.readyUntilSettled();
    expect(outcomes(w)).toEqual([[2, 'good'], [1, 'good']]);
    w.current = makeConfig([groupConfig({ count: 1, onFailure: 'keep' })], 3);
    w.reload();
    w.crash(w.live().find((x) => x.generation === 3)!.id);
    expect(w.finished.get(2)!.state).toBe('failed');
    expect(outcomes(w)).toEqual([[3, 'bad'], [2, 'good'], [1, 'good']]);
    w.current = makeConfig([groupConfig({ count: 1, onFailure: 'keep' })], 4);
    w.reload();
    w.stop();
    expect(w.finished.get(3)!.state).toBe('aborted');
    expect(outcomes(w).find(([g]) => g === 4)?.[1] ?? null).toBeNull();
  });

  it('the history keeps `history:` entries after each reload (plus the rollback target)', () => {
    const cfg = (release: number) => makeConfig([groupConfig({ count: 1, history: 2 })], release);
    const w = new World(cfg(1), { autoReady: true });
    for (let release = 2; release <= 5; release++) {
      w.current = cfg(release);
      w.reload();
      w.advance(1_000);
    }
    expect(w.finished.size).toBe(4);
    expect(outcomes(w)).toEqual([[5, 'good'], [4, 'good']]);
  });

  it('a group the config no longer has is drained after the reload succeeded, then forgotten', () => {
    const web = groupConfig({ count: 1 });
    const api = groupConfig({ name: 'api', count: 2 });
    const w = runningWorld([web, api]);
    for (const x of w.live('api')) w.proc(x.id).behavior.drainMs = 500;
    const apiWorkers = w.live('api');
    w.current = makeConfig([web], 2);
    const from = w.effects.length;
    w.reload();
    // Not before the reload succeeded: api still serves while web rolls.
    expect(w.live('api')).toHaveLength(2);
    w.readyUntilSettled();
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(logs(w, 'group removed from the config: draining it', from)).toEqual([
      { type: 'log', level: 'info', msg: 'group removed from the config: draining it', fields: { group: 'api' } },
    ]);
    expect(w.workers('api').map((x) => [x.phase, x.stopReason])).toEqual([['stopping', 'group removed'], ['stopping', 'group removed']]);
    expect(w.state.groups.map((g) => g.name)).toEqual(['web', 'api']);
    w.advance(500);
    expect(w.state.groups.map((g) => g.name)).toEqual(['web']);
    expect(apiWorkers.every((x) => w.proc(x.id).gone)).toBe(true);
    // Nothing restarts a removed group.
    w.advance(60_000);
    expect(w.live('api')).toEqual([]);
    expect(w.violations).toEqual([]);
  });

  it('a removed group whose slot waits in backoff: the backoff timer is cleared, nothing restarts', () => {
    const web = groupConfig({ count: 1 });
    const api = groupConfig({ name: 'api', count: 1, restartDelayMs: 5_000 });
    const w = runningWorld([web, api]);
    w.crash(w.live('api')[0]!.id);
    expect(w.armed()).toContain('backoff:api:0');
    w.current = makeConfig([web], 2);
    w.reload();
    w.readyUntilSettled();
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.armed()).not.toContain('backoff:api:0');
    expect(w.state.groups.map((g) => g.name)).toEqual(['web']);
    const spawns = w.effectsOf('spawn').length;
    w.advance(10_000);
    expect(w.effectsOf('spawn')).toHaveLength(spawns);
  });

  it('a removed group stays when the reload fails', () => {
    const web = groupConfig({ count: 1 });
    const api = groupConfig({ name: 'api', count: 1 });
    const w = runningWorld([web, api]);
    w.current = makeConfig([web], 2);
    w.reload();
    w.crash(w.live('web').find((x) => x.generation === 2)!.id);
    w.readyUntilSettled();
    expect(w.finished.get(1)!.state).toBe('failed');
    expect(w.state.groups.map((g) => [g.name, g.removing])).toEqual([['web', false], ['api', false]]);
    expect(w.live('api')).toHaveLength(1);
  });

  it('a group the reload added but never started (an earlier group failed) is dropped', () => {
    const web = groupConfig({ count: 1, onFailure: 'keep' });
    const w = runningWorld([web]);
    w.current = makeConfig([web, groupConfig({ name: 'api', count: 1 })], 2);
    w.reload();
    expect(w.state.groups.map((g) => g.name)).toEqual(['web', 'api']);
    w.crash(w.live('web').find((x) => x.generation === 2)!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    expect(w.state.groups.map((g) => g.name)).toEqual(['web']);
    expect(w.effectsOf('spawn').some((s) => s.group === 'api')).toBe(false);
    // The next reload adds it again.
    w.current = makeConfig([groupConfig({ count: 1, onFailure: 'keep' }), groupConfig({ name: 'api', count: 1 })], 3);
    w.reload();
    w.readyUntilSettled();
    expect(w.finished.get(2)!.state).toBe('succeeded');
    expect(w.live('api')).toHaveLength(1);
  });

  it('a stop during the bake clears the bake timer with the reload, not when the workers are gone', () => {
    const verify = { bakeMs: 10_000, maxErrorRate: null, minRequests: 20, watchMs: 0 };
    const w = runningWorld([groupConfig({ count: 2 })]);
    for (const x of w.live()) w.proc(x.id).behavior.drainMs = 20_000;
    w.current = makeConfig([groupConfig({ count: 2, verify })], 2);
    w.reload();
    w.readyAll();
    expect(w.armed()).toContain('bake:1:web');
    const from = w.effects.length;
    w.stop();
    expect(w.effectsOf('timer.clear', from).map((t) => t.key)).toContain('bake:1:web');
    expect(w.armed().filter((k) => !k.startsWith('kill:'))).toEqual([]);
    w.advance(20_000);
    expect(w.exitCode).toBe(0);
  });

  it('old workers a failed reload did not stop are no longer retired by it', () => {
    const w = runningWorld([groupConfig({ count: 3, onFailure: 'keep' })]);
    w.current = makeConfig([groupConfig({ count: 3, onFailure: 'keep' })], 2);
    w.reload();
    const fresh = w.live().find((x) => x.generation === 2)!;
    w.ready(fresh.id);
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    expect(w.workers().every((x) => x.retiredBy === null)).toBe(true);
  });

  it('specs no worker or slot uses are forgotten; both are kept while mixed generations serve', () => {
    const w = runningWorld([groupConfig({ count: 2, onFailure: 'keep' })]);
    w.current = makeConfig([groupConfig({ count: 2, onFailure: 'keep' })], 2);
    w.reload();
    expect(Object.keys(w.state.groups[0]!.specs).sort()).toEqual(['1', '2']);
    w.readyUntilSettled();
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(Object.keys(w.state.groups[0]!.specs)).toEqual(['2']);
    // A failed reload with onFailure: keep leaves a ready gen-3 worker next to a gen-2 one.
    w.current = makeConfig([groupConfig({ count: 2, onFailure: 'keep' })], 3);
    w.reload();
    w.ready(w.live().find((x) => x.generation === 3)!.id);
    w.crash(w.live().find((x) => x.generation === 3 && x.phase === 'starting')!.id);
    expect(w.finished.get(2)!.state).toBe('failed');
    expect(w.live().map((x) => x.generation).sort()).toEqual([2, 3]);
    expect(Object.keys(w.state.groups[0]!.specs).sort()).toEqual(['2', '3']);
  });

  it('a rollback queued behind a reload starts when the reload ends', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    w.autoReady = true;
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    w.reload();
    w.advance(1_000);
    const h1 = w.state.groups[0]!.history.find((h) => h.generation === 1)!;
    w.autoReady = false;
    w.current = makeConfig([groupConfig({ count: 1 })], 3);
    w.reload();
    w.send({ type: 'rollback.request', requestId: 30, targets: [{ group: 'web', generation: 1, spec: h1.spec }] });
    expect(w.accepted(30)).toMatchObject({ reloadId: 3, state: 'queued' });
    w.readyAll();
    expect(w.finished.get(2)!.state).toBe('succeeded');
    // The rollback started at once, without a config load, and rolls to generation 1.
    expect(w.state.reload).toMatchObject({ id: 3, trigger: 'rollback' });
    expect(w.loads).toEqual([1, 2]);
    expect(w.live().some((x) => x.generation === 1 && x.phase === 'starting')).toBe(true);
    w.readyUntilSettled();
    expect(w.finished.get(3)!.state).toBe('succeeded');
    expect(w.state.groups[0]!.generation).toBe(1);
  });
});

describe('the end of start-up', () => {
  it('the daemon is ready only when every group has count ready workers', () => {
    const w = new World(makeConfig([groupConfig({ count: 2 }), groupConfig({ name: 'api', count: 1 })]));
    const [a, b] = w.live('web');
    w.ready(a!.id);
    w.ready(w.live('api')[0]!.id);
    expect(w.state.daemon).toBe('starting');
    expect(w.effectsOf('daemon.ready')).toEqual([]);
    w.advance(1_500);
    w.ready(b!.id);
    expect(w.state.daemon).toBe('running');
    expect(w.effectsOf('daemon.ready')).toHaveLength(1);
    expect(logs(w, 'every worker is ready')).toEqual([
      { type: 'log', level: 'info', msg: 'every worker is ready', fields: { workers: 3, startupMs: 1_500 } },
    ]);
    expect(outcomes(w, 'web')).toEqual([[1, 'good']]);
    expect(outcomes(w, 'api')).toEqual([[1, 'good']]);
    // Later readiness (a restarted worker) does not announce it again.
    w.crash(a!.id);
    w.advance(100);
    w.readyAll();
    expect(w.effectsOf('daemon.ready')).toHaveLength(1);
  });

  it('a crashed worker that was ready during start-up restarts after its delay and the start completes', () => {
    const w = new World(makeConfig([groupConfig({ count: 2, restartDelayMs: 300 })]));
    const [a, b] = w.live();
    w.ready(a!.id);
    w.crash(a!.id);
    expect(w.state.daemon).toBe('starting');
    expect(w.armed()).toContain('backoff:web:0');
    w.advance(299);
    expect(w.live()).toHaveLength(1);
    w.advance(1);
    expect(w.live().map((x) => x.slot).sort()).toEqual([0, 1]);
    w.readyAll();
    expect(w.state.daemon).toBe('running');
    expect(b!.id).toBeLessThan(w.live().find((x) => x.slot === 0)!.id);
  });

  it('a reload asked for during start-up waits and starts once every worker is ready', () => {
    const w = new World(makeConfig([groupConfig({ count: 1 })]));
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    w.reload(null, 40);
    expect(w.accepted(40)).toMatchObject({ reloadId: 1, state: 'queued' });
    expect(w.loads).toEqual([]);
    w.readyAll();
    expect(w.loads).toEqual([1]);
    expect(w.state.reload!.id).toBe(1);
    w.readyUntilSettled();
    expect(w.finished.get(1)!.state).toBe('succeeded');
  });

  it('a rollback asked for during start-up waits and starts once every worker is ready', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    const spec1 = w.state.groups[0]!.specs['1']!;
    // A fresh daemon that knows generation 1 from its history is not needed: rolling to the same spec is enough here.
    const s = new World(makeConfig([groupConfig({ count: 1 })]));
    s.send({ type: 'rollback.request', requestId: 41, targets: [{ group: 'web', generation: 1, spec: spec1 }] });
    expect(s.accepted(41)).toMatchObject({ reloadId: 1, state: 'queued' });
    s.readyAll();
    // Already on generation 1: the rollback starts, skips the group and ends at once.
    expect(s.finished.get(1)).toMatchObject({ state: 'succeeded', trigger: 'rollback' });
    expect(s.progress.some((p) => p.reloadId === 1 && p.event.step === 'group.skipped')).toBe(true);
    expect(s.state.daemon).toBe('running');
  });
});

describe('spawning a worker', () => {
  it('arms the ready delay timer (ready: delay) and the readyTimeout timer that names the worker for its stderr', () => {
    const w = new World(makeConfig([groupConfig({ count: 1, ready: { kind: 'delay', ms: 1_500 }, readyTimeoutMs: 9_000 })]));
    const x = w.live()[0]!;
    expect(w.effectsOf('spawn')).toEqual([{ type: 'spawn', workerId: x.id, group: 'web', slot: 0, generation: 1, spec: w.current.specs.web }]);
    expect(w.effectsOf('timer.set')).toEqual([
      { type: 'timer.set', key: `ready:${x.id}`, ms: 1_500 },
      { type: 'timer.set', key: `readyTimeout:${x.id}`, ms: 9_000, stderrOf: x.id },
    ]);
    expect(x).toMatchObject({ phase: 'starting', startedAt: w.now, readyAt: null, startedBy: null, retiredBy: null, killed: false, failed: false, statusText: null, stopReason: null });
    w.advance(1_500);
    expect(w.state.daemon).toBe('running');
    expect(w.armed()).toEqual([]);
  });

  it('ipc readiness arms no ready timer; a worker a reload starts records that reload', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    expect(w.effectsOf('timer.set').map((t) => t.key)).toEqual(['readyTimeout:1']);
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    w.reload();
    expect(w.live().find((x) => x.generation === 2)!.startedBy).toBe(1);
  });
});
