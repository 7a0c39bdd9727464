/**
 * One reload from the request to its end, through the machine's contract: the
 * config answer (refused, stale, loaded), which groups it rolls, adds, skips
 * or removes, the roll of each group (progress, logs, slots, readyAt), and a
 * failed reload (onFailure keep or rollback, the rollback of each group, a
 * rollback that fails too). What an operator reads is asserted by its
 * important part: the group, the generation, the reason.
 */
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../src/supervisor/types.js';
import { World, groupConfig, makeConfig, runningWorld } from './harness.js';

type Log = Extract<Effect, { type: 'log' }>;

function logs(w: World, msg: string, from = 0): Log[] {
  return w.effectsOf('log', from).filter((l) => l.msg === msg);
}

function steps(w: World, step: string, reloadId?: number): { message: string; group: string | null; generation: number | null }[] {
  return w.progress.filter((p) => p.event.step === step && (reloadId === undefined || p.reloadId === reloadId)).map((p) => p.event);
}

function stopReasons(w: World, from = 0): Record<number, string> {
  const out: Record<number, string> = {};
  for (const l of logs(w, 'stopping worker', from)) out[l.fields.workerId as number] = l.fields.reason as string;
  return out;
}

describe('a reload begins by reading the config', () => {
  it('announces itself: accepted, reloading, a log line, one config.load, the loading step', () => {
    const w = runningWorld([groupConfig()]);
    w.loader = () => 'manual';
    const from = w.effects.length;
    const effects = w.reload(['web'], 7);
    const kinds = effects.map((e) => e.type);
    expect(kinds.indexOf('reply.accepted')).toBeLessThan(kinds.indexOf('config.load'));
    expect(w.accepted(7)).toMatchObject({ reloadId: 1, state: 'running' });
    expect(w.effectsOf('daemon.state', from).map((e) => e.state)).toEqual(['reloading']);
    expect(w.state.daemon).toBe('reloading');
    expect(logs(w, 'reload started: reading the config', from)).toEqual([
      expect.objectContaining({ level: 'info', fields: { reloadId: 1, groups: ['web'] } }),
    ]);
    expect(w.effectsOf('config.load', from)).toEqual([{ type: 'config.load', reloadId: 1 }]);
    expect(steps(w, 'loading')).toEqual([expect.objectContaining({ message: 'reading the config file', group: null })]);
    expect(w.state.reload).toMatchObject({ id: 1, phase: 'loading', trigger: 'rpc', groups: ['web'], force: [], removed: [], order: [], readyAt: null, rollback: null });
  });

  it('a full reload logs its groups as all; the report keeps the trigger and when it started', () => {
    const w = runningWorld([groupConfig()]);
    w.loader = () => 'manual';
    const startedAt = w.now;
    const from = w.effects.length;
    w.send({ type: 'reload.request', requestId: 5, groups: null, trigger: 'signal' });
    expect(logs(w, 'reload started: reading the config', from)[0]!.fields).toEqual({ reloadId: 1, groups: 'all' });
    w.advance(2500);
    w.answerLoad(1, { fail: 'broken' });
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', trigger: 'signal', startedAt: new Date(startedAt).toISOString(), durationMs: 2500, readyAt: null, readyMs: null });
    expect(w.state.daemon).toBe('running');
  });
});

describe('the config answer', () => {
  it('a refused config ends the reload: nothing changed, each issue on its own line with its path, code -32004', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    const pids = w.pids();
    w.loader = () => ({
      fail: 'smoothd.yaml is not valid',
      issues: [
        { path: 'groups[0].count', message: 'must be at least 1' },
        { path: '', message: 'not a YAML mapping' },
      ],
    });
    w.reload();
    const report = w.finished.get(1)!;
    expect(report.state).toBe('failed');
    expect(report.error).toBe('config refused, nothing changed: smoothd.yaml is not valid\n  groups[0].count: must be at least 1\n  (document): not a YAML mapping');
    expect(report.errorCode).toBe(-32004);
    expect(report.groups).toEqual([]);
    expect(w.pids()).toEqual(pids);
    expect(w.state.reload).toBeNull();
  });

  it('a refusal without issues is the message alone', () => {
    const w = runningWorld([groupConfig()]);
    w.loader = () => ({ fail: 'cannot read /etc/smoothd/smoothd.yaml: ENOENT' });
    w.reload();
    expect(w.finished.get(1)!.error).toBe('config refused, nothing changed: cannot read /etc/smoothd/smoothd.yaml: ENOENT');
  });

  it('an answer for another reload, or a second answer, changes nothing', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.loader = () => 'manual';
    w.reload();
    const next = makeConfig([groupConfig({ count: 2 })], 2);
    // Not this reload's answer: it keeps loading.
    w.answerLoad(9, { fail: 'stale' });
    w.answerLoad(9, next);
    expect(w.state.reload).toMatchObject({ id: 1, phase: 'loading', order: [] });
    expect(w.finished.size).toBe(0);
    expect(w.workers().every((x) => x.generation === 1)).toBe(true);
    // The real answer, then late ones: the roll goes on, untouched.
    w.answerLoad(1, next);
    expect(w.state.reload!.phase).toBe('rolling');
    w.answerLoad(1, { fail: 'late refusal' });
    w.answerLoad(1, makeConfig([groupConfig({ count: 4 })], 3));
    expect(w.finished.size).toBe(0);
    expect(w.state.reload!.order).toHaveLength(1);
    expect(w.state.reload!.order[0]).toMatchObject({ total: 2, generation: 2 });
    w.readyUntilSettled();
    w.advance(100);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', groups: [{ name: 'web', generation: 2, done: 2, total: 2 }] });
    expect(w.state.groups[0]!.config.count).toBe(2);
    // After the end, an answer for it is ignored too.
    w.answerLoad(1, makeConfig([groupConfig({ count: 3 })], 4));
    expect(w.state.reload).toBeNull();
    expect(w.live()).toHaveLength(2);
  });
});

describe('what a loaded config selects', () => {
  it('a partial reload does not add a group new in the config; a full one adds it as generation 1', () => {
    const w = runningWorld([groupConfig()]);
    w.current = makeConfig([groupConfig(), groupConfig({ name: 'api', count: 2 })], 2);
    w.reload(['web']);
    w.readyUntilSettled();
    w.advance(100);
    expect(w.finished.get(1)!.groups.map((g) => g.name)).toEqual(['web']);
    expect(w.state.groups.map((g) => g.name)).toEqual(['web']);
    expect(w.live('api')).toHaveLength(0);

    w.reload();
    const added = w.state.reload!.order.find((e) => e.name === 'api')!;
    expect(added).toMatchObject({ added: true, total: 2, previousGeneration: null, generation: 1 });
    w.readyUntilSettled();
    w.advance(100);
    const report = w.finished.get(2)!;
    expect(report.state).toBe('succeeded');
    expect(report.groups.find((g) => g.name === 'api')).toMatchObject({ state: 'rolled', generation: 1, done: 2, total: 2 });
    const api = w.state.groups.find((g) => g.name === 'api')!;
    expect(api).toMatchObject({ generation: 1, lastGeneration: 1, removing: false });
    expect(api.history.map((h) => h.generation)).toEqual([1]);
    expect(w.readyWorkers('api').map((x) => x.generation)).toEqual([1, 1]);
  });

  it('a group left out of a partial reload keeps running; a changed spec waits as pending, an unchanged one does not', () => {
    const w = runningWorld([groupConfig(), groupConfig({ name: 'api' })]);
    // Same files for api, new ones for web.
    const next = makeConfig([groupConfig(), groupConfig({ name: 'api' })], 2);
    next.specs.api = makeConfig([groupConfig({ name: 'api' })], 1).specs.api!;
    w.current = next;
    w.reload(['web']);
    expect(w.state.groups.find((g) => g.name === 'api')!.pending).toBeNull();
    w.readyUntilSettled();
    w.advance(100);
    w.current = makeConfig([groupConfig(), groupConfig({ name: 'api', count: 3 })], 2);
    w.reload(['web']);
    w.readyUntilSettled();
    w.advance(100);
    const api = w.state.groups.find((g) => g.name === 'api')!;
    expect(api.pending).toMatchObject({ count: 3 });
    expect(api.generation).toBe(1);
    expect(w.live('api')).toHaveLength(1);
    expect(w.finished.get(2)!.groups.map((g) => g.name)).toEqual(['web']);
  });

  it('a reloadable: false group is skipped and its change kept pending, cleared when the config is back', () => {
    const fixed = { name: 'db', reloadable: false };
    const w = runningWorld([groupConfig(), groupConfig(fixed)]);
    w.current = makeConfig([groupConfig(), groupConfig({ ...fixed, count: 2 })], 2);
    w.reload();
    expect(steps(w, 'group.skipped')).toEqual([expect.objectContaining({ group: 'db', message: 'db: not reloadable, skipped' })]);
    w.readyUntilSettled();
    w.advance(100);
    expect(w.finished.get(1)!.groups.find((g) => g.name === 'db')).toMatchObject({ state: 'skipped', generation: null });
    expect(w.state.groups.find((g) => g.name === 'db')!.pending).toMatchObject({ count: 2 });
    expect(w.live('db').map((x) => x.generation)).toEqual([1]);
    // The config on disk goes back to what db runs: nothing pending any more.
    w.current = makeConfig([groupConfig(), groupConfig(fixed)], 1);
    w.reload();
    w.readyUntilSettled();
    w.advance(100);
    expect(w.state.groups.find((g) => g.name === 'db')!.pending).toBeNull();
  });

  it('reloadable is decided by the running settings and the new ones: either false skips the group', () => {
    const w = runningWorld([groupConfig({ reloadable: false }), groupConfig({ name: 'api' })]);
    w.current = makeConfig([groupConfig({ reloadable: true }), groupConfig({ name: 'api', reloadable: false })], 2);
    w.reload();
    w.readyUntilSettled();
    w.advance(100);
    expect(w.finished.get(1)!.groups.map((g) => [g.name, g.state])).toEqual([
      ['web', 'skipped'],
      ['api', 'skipped'],
    ]);
    expect(w.workers().every((x) => x.generation === 1)).toBe(true);
  });

  it('smoothctl restart rolls a reloadable: false group', () => {
    const w = runningWorld([groupConfig({ reloadable: false, count: 2 })]);
    w.current = makeConfig([groupConfig({ reloadable: false, count: 2 })], 2);
    w.restart('web', 9);
    w.readyUntilSettled();
    w.advance(100);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', trigger: 'restart', groups: [{ name: 'web', state: 'rolled', generation: 2 }] });
    expect(w.readyWorkers().map((x) => x.generation)).toEqual([2, 2]);
  });

  it('a group gone from a full reload is drained once it succeeds; a partial reload never removes one', () => {
    const w = runningWorld([groupConfig(), groupConfig({ name: 'api' })]);
    w.current = makeConfig([groupConfig()], 2);
    w.reload(['web']);
    w.readyUntilSettled();
    w.advance(100);
    expect(w.state.groups.find((g) => g.name === 'api')!.removing).toBe(false);
    expect(w.live('api')).toHaveLength(1);

    const from = w.effects.length;
    w.reload();
    expect(w.state.reload!.removed).toEqual(['api']);
    expect(logs(w, 'group removed from the config: it is drained once the reload succeeds', from)).toEqual([
      expect.objectContaining({ fields: { group: 'api' } }),
    ]);
    // Not drained before the reload succeeded.
    expect(w.live('api')).toHaveLength(1);
    w.readyUntilSettled();
    w.advance(100);
    expect(w.finished.get(2)!.state).toBe('succeeded');
    expect(w.live('api')).toHaveLength(0);
  });

  it('a group still draining its removal is not removed twice; back in the config it is rolled again', () => {
    const w = new World(makeConfig([groupConfig(), groupConfig({ name: 'api' })]), { start: false });
    w.behave = (s) => (s.group === 'api' ? { drainMs: 60_000 } : {});
    w.send({ type: 'start' });
    w.readyUntilSettled();
    w.current = makeConfig([groupConfig()], 2);
    w.reload();
    w.readyUntilSettled();
    w.advance(100);
    expect(w.state.groups.find((g) => g.name === 'api')!.removing).toBe(true);
    const from = w.effects.length;
    w.current = makeConfig([groupConfig()], 3);
    w.reload();
    expect(w.state.reload!.removed).toEqual([]);
    expect(logs(w, 'group removed from the config: it is drained once the reload succeeds', from)).toEqual([]);
    w.readyUntilSettled();
    w.advance(100);
    // api comes back while its last worker still drains.
    w.current = makeConfig([groupConfig(), groupConfig({ name: 'api' })], 4);
    w.reload();
    const api = w.state.groups.find((g) => g.name === 'api')!;
    expect(api.removing).toBe(false);
    expect(w.state.reload!.order.find((e) => e.name === 'api')).toMatchObject({ state: 'pending', generation: 2 });
    w.readyUntilSettled();
    w.advance(120_000);
    expect(w.finished.get(3)!.groups.find((g) => g.name === 'api')).toMatchObject({ state: 'rolled', generation: 2 });
    expect(w.readyWorkers('api').map((x) => x.generation)).toEqual([2]);
  });
});

describe('the roll of a group', () => {
  it('starts each group in config order, one group after the other, with a log line and a group.started step', () => {
    const w = runningWorld([groupConfig(), groupConfig({ name: 'api' })]);
    w.current = makeConfig([groupConfig(), groupConfig({ name: 'api' })], 2);
    const from = w.effects.length;
    w.reload();
    // web's new worker is not ready yet: api has not started rolling.
    expect(w.live('web').map((x) => x.generation)).toEqual([1, 2]);
    expect(w.live('api').map((x) => x.generation)).toEqual([1]);
    expect(w.state.reload!.order.map((e) => e.state)).toEqual(['rolling', 'pending']);
    expect(logs(w, 'rolling group', from).map((l) => l.fields)).toEqual([{ reloadId: 1, group: 'web', generation: 2, count: 1 }]);
    expect(steps(w, 'group.started')).toEqual([expect.objectContaining({ group: 'web', message: 'web: rolling to generation 2', generation: 2 })]);
    w.readyAll('web');
    expect(steps(w, 'group.rolled').map((s) => s.message)).toEqual(['web: 1/1 workers replaced']);
    expect(logs(w, 'group rolled', from).map((l) => l.fields)).toEqual([{ reloadId: 1, group: 'web', generation: 2 }]);
    expect(w.state.reload!.order.map((e) => e.state)).toEqual(['rolled', 'rolling']);
    expect(steps(w, 'group.started').map((s) => s.message)).toEqual(['web: rolling to generation 2', 'api: rolling to generation 2']);
    w.readyAll('api');
    w.advance(100);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', done: 2, total: 2 });
  });

  it('each old worker it retires is announced as draining with its id and pid', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    const old = w.live().map((x) => [x.id, x.pid]);
    w.current = makeConfig([groupConfig({ count: 2 })], 2);
    w.reload();
    w.readyUntilSettled();
    w.advance(100);
    expect(steps(w, 'worker.stopping').map((s) => s.message)).toEqual(old.map(([id, pid]) => `old worker ${id} (pid ${pid}) draining`));
    expect(Object.values(stopReasons(w))).toEqual(['replaced', 'replaced']);
  });

  it('a raised count gets new slots; a lowered one drops them once the roll is done', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    w.current = makeConfig([groupConfig({ count: 3 })], 2);
    w.reload();
    w.readyUntilSettled();
    w.advance(100);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', groups: [{ done: 3, total: 3 }] });
    expect(w.readyWorkers().map((x) => x.slot).sort()).toEqual([0, 1, 2]);
    expect(w.state.groups[0]!.slots).toHaveLength(3);

    w.current = makeConfig([groupConfig({ count: 1 })], 3);
    const from = w.effects.length;
    w.reload();
    w.readyUntilSettled();
    w.advance(100);
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', groups: [{ generation: 3, done: 1, total: 1 }] });
    expect(w.state.groups[0]!.slots).toHaveLength(1);
    expect(w.live().map((x) => [x.slot, x.generation])).toEqual([[0, 3]]);
    expect(Object.values(stopReasons(w, from)).sort()).toEqual(['count lowered', 'count lowered', 'replaced']);
    // Only the running generation's spec is kept.
    expect(Object.keys(w.state.groups[0]!.specs)).toEqual(['3']);
  });

  it('a slot waiting in backoff is refilled by the roll at once, with the new generation', () => {
    const w = runningWorld([groupConfig({ count: 2, restartDelayMs: 10_000 })]);
    const crashed = w.live()[1]!;
    w.crash(crashed.id);
    expect(w.armed()).toContain('backoff:web:1');
    w.current = makeConfig([groupConfig({ count: 2, restartDelayMs: 10_000 })], 2);
    w.reload();
    expect(w.armed()).not.toContain('backoff:web:1');
    expect(w.state.groups[0]!.slots[1]!.backoffUntil).toBeNull();
    // The empty slot is filled first.
    expect(w.live().filter((x) => x.generation === 2).map((x) => x.slot)).toEqual([1, 0]);
    w.readyUntilSettled();
    w.advance(100);
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.live().map((x) => x.generation)).toEqual([2, 2]);
    expect(w.violations).toEqual([]);
  });

  it('readyAt is when the last new worker was ready; the reload ends when the old ones have drained', () => {
    const w = new World(makeConfig([groupConfig({ count: 2 })]), { start: false });
    w.behave = (s) => (s.generation === 1 ? { drainMs: 4000 } : {});
    w.send({ type: 'start' });
    w.readyUntilSettled();
    w.current = makeConfig([groupConfig({ count: 2 })], 2);
    w.reload();
    w.advance(300);
    w.readyAll();
    w.advance(200);
    w.readyAll();
    expect(w.state.reload!.phase).toBe('draining');
    expect(w.finished.size).toBe(0);
    w.advance(10_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', readyMs: 500 });
    expect(w.finished.get(1)!.durationMs).toBeGreaterThan(4000);
  });

  it('verify.watch holds the end of a successful roll for the watch, announced with its length', () => {
    const verify = { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 90_000 };
    const w = runningWorld([groupConfig(), groupConfig({ name: 'api' })]);
    w.current = makeConfig([groupConfig({ verify }), groupConfig({ name: 'api' })], 2);
    w.autoReady = true;
    w.reload();
    w.advance(100);
    expect(w.state.reload!.order.map((e) => e.state)).toEqual(['watching', 'rolled']);
    expect(w.armed()).toContain('watch:1:web');
    expect(w.armed().filter((k) => k.startsWith('watch:'))).toEqual(['watch:1:web']);
    expect(steps(w, 'watch.started')).toEqual([expect.objectContaining({ group: 'web', message: 'web: watching the new workers for 90s' })]);
    w.advance(89_000);
    expect(w.finished.size).toBe(0);
    w.advance(2000);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', groups: [{ name: 'web', state: 'rolled' }, { name: 'api', state: 'rolled' }] });
  });

  it('the new generation enters the release history as current; the old one is kept as good', () => {
    const w = runningWorld([groupConfig()]);
    w.current = makeConfig([groupConfig()], 2);
    w.autoReady = true;
    w.reload();
    w.advance(100);
    const g = w.state.groups[0]!;
    expect(g).toMatchObject({ generation: 2, lastGeneration: 2, rollTarget: null, pending: null });
    expect(g.history.map((h) => h.generation).sort()).toEqual([1, 2]);
  });
});
