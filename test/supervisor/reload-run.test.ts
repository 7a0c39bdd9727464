/**
 * One reload from the request to its end, through the machine's contract: the
 * config answer (refused, stale, loaded), which groups it rolls, adds, skips
 * or removes, the roll of each group (progress, logs, slots, readyAt), and a
 * failed reload (onFailure keep or rollback, the rollback of each group, a
 * rollback that fails too). What an operator reads is asserted by its
 * important part: the group, the generation, the reason.
 */
import { describe, expect, it } from 'vitest';
import { currentReport } from '../../src/supervisor/reports.js';
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
      expect.objectContaining({ level: 'info', fields: { group: 'api' } }),
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
    expect(logs(w, 'rolling group', from).map((l) => [l.level, l.fields])).toEqual([['info', { reloadId: 1, group: 'web', generation: 2, count: 1 }]]);
    expect(steps(w, 'group.started')).toEqual([expect.objectContaining({ group: 'web', message: 'web: rolling to generation 2', generation: 2 })]);
    w.readyAll('web');
    expect(steps(w, 'group.rolled').map((s) => s.message)).toEqual(['web: 1/1 workers replaced']);
    expect(logs(w, 'group rolled', from).map((l) => [l.level, l.fields])).toEqual([['info', { reloadId: 1, group: 'web', generation: 2 }]]);
    expect(w.state.reload!.order.map((e) => e.state)).toEqual(['rolled', 'rolling']);
    expect(steps(w, 'group.started').map((s) => s.message)).toEqual(['web: rolling to generation 2', 'api: rolling to generation 2']);
    w.readyAll('api');
    w.advance(100);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', done: 2, total: 2, error: null, errorCode: null, failure: null, rollback: null });
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

describe('a failed reload', () => {
  it('onFailure: keep ends it at once: the raised count is not applied, starting new workers stop, ready ones stay', () => {
    const w = runningWorld([groupConfig({ count: 2, onFailure: 'keep' })]);
    w.current = makeConfig([groupConfig({ count: 4, onFailure: 'keep', rolling: { surge: 2, unavailable: 0 } })], 2);
    w.reload();
    const fresh = w.live().filter((x) => x.generation === 2);
    expect(fresh.map((x) => x.slot)).toEqual([2, 3, 0, 1]);
    w.ready(fresh[0]!.id);
    const from = w.effects.length;
    const starting = w.live().filter((x) => x.generation === 2 && x.phase === 'starting');
    w.crash(fresh[1]!.id);
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', errorCode: -32001, rollback: null, groups: [{ state: 'failed', done: 1, total: 4 }] });
    expect(report.error).toBe(`web: worker ${fresh[1]!.id} exited with code 1 before it was ready`);
    expect(report.failure).toMatchObject({ group: 'web', workerId: fresh[1]!.id, slot: 3 });
    expect(steps(w, 'worker.failed')).toEqual([expect.objectContaining({ group: 'web', message: `worker ${fresh[1]!.id} exited with code 1 before it was ready` })]);
    expect(logs(w, 'reload failed: old workers keep serving, ready new ones stay (onFailure: keep)', from)).toEqual([
      expect.objectContaining({ level: 'error', fields: expect.objectContaining({ reloadId: 1, group: 'web', workerId: fresh[1]!.id }) }),
    ]);
    // The settings of the failed config do not take effect.
    expect(w.state.groups[0]!.config.count).toBe(2);
    for (const s of starting) if (s.id !== fresh[1]!.id) expect(stopReasons(w, from)[s.id]).toBe('reload failed');
    w.advance(60_000);
    expect(w.readyWorkers().map((x) => x.generation).sort()).toEqual([1, 1, 2]);
    expect(w.live().filter((x) => x.generation === 2).map((x) => x.id)).toEqual([fresh[0]!.id]);
  });

  it('onFailure: keep drops a group this reload added when none of its workers got ready', () => {
    const w = runningWorld([groupConfig()]);
    w.current = makeConfig([groupConfig(), groupConfig({ name: 'api', onFailure: 'keep' })], 2);
    w.reload();
    w.readyAll('web');
    const api = w.live('api')[0]!;
    w.crash(api.id);
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', groups: [{ name: 'web', state: 'rolled' }, { name: 'api', state: 'failed', done: 0 }] });
    w.advance(60_000);
    expect(w.live('api')).toHaveLength(0);
    expect(w.state.groups.find((g) => g.name === 'api')?.removing ?? true).toBe(true);
  });

  it('onFailure: rollback rolls the failing group back first, then the groups rolled before it, newest first', () => {
    const groups = [groupConfig(), groupConfig({ name: 'api' }), groupConfig({ name: 'jobs' })];
    const w = runningWorld(groups);
    w.current = makeConfig(groups, 2);
    w.reload();
    w.readyAll('web');
    w.readyAll('api');
    const from = w.effects.length;
    const failing = w.live('jobs').find((x) => x.generation === 2)!;
    w.crash(failing.id);
    const reason = `worker ${failing.id} exited with code 1 before it was ready`;
    const started = steps(w, 'rollback.started');
    expect(started[0]).toMatchObject({ group: null, message: `reload failed (jobs: ${reason}); rolling back jobs, api, web` });
    // The log line names every group to roll back, the failing one too (not the queue as it is later).
    expect(logs(w, 'reload failed: rolling back', from)[0]!.level).toBe('error');
    expect(logs(w, 'reload failed: rolling back', from)[0]!.fields).toMatchObject({ reloadId: 1, groups: ['jobs', 'api', 'web'], workerId: failing.id });
    w.autoReady = true;
    w.readyAll();
    w.advance(60_000);
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', errorCode: -32001, rollback: { state: 'succeeded' } });
    expect(report.error).toBe(`jobs: ${reason}`);
    expect(report.groups.map((g) => [g.name, g.rollback?.state, g.rollback?.generation])).toEqual([
      ['web', 'succeeded', 1],
      ['api', 'succeeded', 1],
      ['jobs', 'succeeded', 1],
    ]);
    // jobs had no new worker ready: nothing to roll back, yet it goes first.
    expect(steps(w, 'rollback.started').slice(1).map((s) => s.message)).toEqual([
      'jobs: rolling back to generation 1',
      'api: rolling back to generation 1',
      'web: rolling back to generation 1',
    ]);
    expect(steps(w, 'rollback.done').filter((s) => s.group !== null).map((s) => s.message)).toEqual([
      'jobs: back on generation 1',
      'api: back on generation 1',
      'web: back on generation 1',
    ]);
    expect(logs(w, 'rolling back group', from).map((l) => l.fields)).toEqual([
      { reloadId: 1, group: 'jobs', from: 2, to: 1 },
      { reloadId: 1, group: 'api', from: 2, to: 1 },
      { reloadId: 1, group: 'web', from: 2, to: 1 },
    ]);
    expect(logs(w, 'group rolled back', from).map((l) => [l.level, l.fields])).toEqual([
      ['info', { reloadId: 1, group: 'jobs', generation: 1 }],
      ['info', { reloadId: 1, group: 'api', generation: 1 }],
      ['info', { reloadId: 1, group: 'web', generation: 1 }],
    ]);
    expect(logs(w, 'rolling back group', from).every((l) => l.level === 'info')).toBe(true);
    expect(w.readyWorkers().map((x) => x.generation)).toEqual([1, 1, 1]);
    expect(w.state.groups.map((g) => [g.generation, g.config.count, g.rollTarget])).toEqual([
      [1, 1, null],
      [1, 1, null],
      [1, 1, null],
    ]);
    expect(w.state.daemon).toBe('running');
  });

  it('a group not yet rolled when the reload failed is left alone', () => {
    const groups = [groupConfig(), groupConfig({ name: 'api' })];
    const w = runningWorld(groups);
    w.current = makeConfig(groups, 2);
    w.reload();
    const apiWorker = w.live('api')[0]!;
    w.crash(w.live('web').find((x) => x.generation === 2)!.id);
    w.autoReady = true;
    w.advance(60_000);
    const report = w.finished.get(1)!;
    expect(report.groups.map((g) => [g.name, g.state, g.rollback])).toEqual([
      ['web', 'failed', expect.objectContaining({ state: 'succeeded', generation: 1 })],
      ['api', 'pending', null],
    ]);
    expect(w.live('api').map((x) => x.id)).toEqual([apiWorker.id]);
  });

  it('the rollback waits for the failed generation to drain; done counts the slots that were ready', () => {
    const w = new World(makeConfig([groupConfig({ count: 3 })]), { start: false });
    w.behave = (s) => (s.generation === 2 ? { drainMs: 5000 } : {});
    w.send({ type: 'start' });
    w.readyUntilSettled();
    w.current = makeConfig([groupConfig({ count: 3 })], 2);
    w.reload();
    w.readyAll();
    const second = w.live().find((x) => x.generation === 2 && x.phase === 'starting')!;
    w.crash(second.id);
    expect(w.state.reload!.order[0]).toMatchObject({ state: 'failed', done: 1 });
    w.autoReady = true;
    w.readyAll();
    w.advance(1000);
    // Back on generation 1 in every slot, but the retired new worker still drains.
    expect(w.finished.size).toBe(0);
    w.advance(10_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' }, groups: [{ done: 1, total: 3 }] });
    expect(w.live().map((x) => x.generation)).toEqual([1, 1, 1]);
  });

  it('a group added by the failed reload is removed again: its rollback says so', () => {
    const w = runningWorld([groupConfig()]);
    w.current = makeConfig([groupConfig({ name: 'api' }), groupConfig()], 2);
    w.reload();
    w.readyAll('api');
    w.crash(w.live('web').find((x) => x.generation === 2)!.id);
    w.autoReady = true;
    w.advance(60_000);
    const report = w.finished.get(1)!;
    expect(report.groups.find((g) => g.name === 'api')!.rollback).toEqual({ state: 'succeeded', generation: null, reason: 'the group was added by this reload: removed again' });
    expect(w.live('api')).toHaveLength(0);
    expect(w.live('web').map((x) => x.generation)).toEqual([1]);
  });

  it('in place (same folder, command, environment): no respawn, and new workers beyond the old count are stopped', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 3 })], 1);
    w.reload();
    const inSlot2 = w.live().find((x) => x.generation === 2)!;
    expect(inSlot2.slot).toBe(2);
    w.ready(inSlot2.id);
    const from = w.effects.length;
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    expect(stopReasons(w, from)[inSlot2.id]).toBe('rollback: surplus worker of the failed generation');
    const skipped = logs(w, 'rollback skipped', from);
    expect(skipped).toEqual([expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ group: 'web' }) })]);
    expect(skipped[0]!.fields.reason).toMatch(/^in-place deploy: generation 1 runs the same folder, command and environment as generation 2, so respawning it would run the broken files again; deploy each release/);
    w.advance(60_000);
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', rollback: { state: 'skipped' }, groups: [{ rollback: { state: 'skipped', generation: 1 } }] });
    expect(w.live().map((x) => [x.slot, x.generation])).toEqual([
      [0, 1],
      [1, 1],
    ]);
    expect(w.state.groups[0]!.config.count).toBe(2);
  });

  it('a worker of the previous generation failing in the rollback: the rollback failed, mixed generations serve, the next group still goes back', () => {
    const groups = [groupConfig(), groupConfig({ name: 'api', count: 2, rolling: { surge: 2, unavailable: 0 } })];
    const w = runningWorld(groups);
    w.current = makeConfig(groups, 2);
    w.reload();
    w.readyAll('web');
    // api: one new worker ready (its old one retired), the other fails.
    const apiNew = w.live('api').filter((x) => x.generation === 2);
    w.ready(apiNew[0]!.id);
    w.crash(apiNew[1]!.id);
    // The rollback of api starts generation 1 workers; the first one fails too.
    const back = w.live('api').filter((x) => x.generation === 1 && x.phase === 'starting');
    expect(back.length).toBeGreaterThan(0);
    const from = w.effects.length;
    w.crash(back[0]!.id);
    const reason = `worker ${back[0]!.id} exited with code 1 before it was ready`;
    expect(logs(w, 'rollback failed: mixed generations serve', from)).toEqual([expect.objectContaining({ level: 'error', fields: expect.objectContaining({ reloadId: 1, workerId: back[0]!.id }) })]);
    for (const b of back.slice(1)) expect(stopReasons(w, from)[b.id]).toBe('rollback failed');
    w.autoReady = true;
    w.readyAll();
    w.advance(60_000);
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', errorCode: -32009, rollback: { state: 'failed' } });
    expect(report.error).toBe(`api: worker ${apiNew[1]!.id} exited with code 1 before it was ready; the rollback failed too (api: ${reason}): mixed generations serve`);
    expect(report.groups.find((g) => g.name === 'api')!.rollback).toEqual({ state: 'failed', generation: 1, reason });
    // web, rolled before api, was still rolled back.
    expect(report.groups.find((g) => g.name === 'web')!.rollback).toMatchObject({ state: 'succeeded', generation: 1 });
    expect(w.live('web').map((x) => x.generation)).toEqual([1]);
    expect(w.live('api').map((x) => x.generation)).toContain(2);
  });

  it('a crash during the watch ends the watch of every group and rolls them back', () => {
    const verify = { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 60_000 };
    const groups = [groupConfig({ verify }), groupConfig({ name: 'api', verify })];
    const w = runningWorld([groupConfig(), groupConfig({ name: 'api' })]);
    w.current = makeConfig(groups, 2);
    w.autoReady = true;
    w.reload();
    w.advance(100);
    expect(w.armed().filter((k) => k.startsWith('watch:'))).toEqual(['watch:1:api', 'watch:1:web']);
    w.autoReady = false;
    w.crash(w.live('api').find((x) => x.generation === 2)!.id);
    expect(w.armed().filter((k) => k.startsWith('watch:'))).toEqual([]);
    expect(w.state.reload!.rollback!.queue).toEqual(['api', 'web']);
    w.autoReady = true;
    w.readyAll();
    w.advance(60_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(w.live().map((x) => x.generation)).toEqual([1, 1]);
  });
});

describe('more of the roll and its failure', () => {
  it('a roll without verify.watch ends as the last old worker exits, with no watch and no timer left', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2 })], 2);
    w.reload();
    w.readyUntilSettled();
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(steps(w, 'watch.started')).toEqual([]);
    expect(w.armed().filter((k) => !k.startsWith('readyTimeout:'))).toEqual([]);
  });

  it('while a group is watched no worker is stopped or started', () => {
    const verify = { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 60_000 };
    const w = runningWorld([groupConfig({ count: 2 }), groupConfig({ name: 'api' })]);
    w.current = makeConfig([groupConfig({ count: 2, verify }), groupConfig({ name: 'api' })], 2);
    w.autoReady = true;
    w.reload();
    w.advance(100);
    const from = w.effects.length;
    // Events during the watch move the reload on: nothing of the watched group is touched.
    w.crash(w.live('api')[0]!.id);
    w.advance(30_000);
    expect(logs(w, 'stopping worker', from)).toEqual([]);
    expect(w.effectsOf('spawn', from).map((s) => s.group)).toEqual(['api']);
    w.advance(31_000);
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.live('web').map((x) => x.generation)).toEqual([2, 2]);
  });

  it('a group this reload added but never started (an earlier group failed) is dropped', () => {
    const w = runningWorld([groupConfig()]);
    w.current = makeConfig([groupConfig(), groupConfig({ name: 'api' })], 2);
    w.reload();
    expect(w.state.groups.find((g) => g.name === 'api')).toMatchObject({ generation: 0, lastGeneration: 0, slots: [], history: [] });
    w.crash(w.live('web').find((x) => x.generation === 2)!.id);
    w.autoReady = true;
    w.advance(60_000);
    expect(w.finished.get(1)!.groups.find((g) => g.name === 'api')).toMatchObject({ state: 'pending', rollback: null });
    expect(w.state.groups.map((g) => g.name)).toEqual(['web']);
    expect(w.effectsOf('spawn').some((s) => s.group === 'api')).toBe(false);
    // The next reload adds it again, as generation 1.
    w.reload();
    w.advance(100);
    expect(w.finished.get(2)!.groups.find((g) => g.name === 'api')).toMatchObject({ state: 'rolled', generation: 1 });
  });

  it('a rolled group picks up its pending change: the reload that rolls it clears pending', () => {
    const w = runningWorld([groupConfig(), groupConfig({ name: 'api' })]);
    w.current = makeConfig([groupConfig(), groupConfig({ name: 'api', count: 2 })], 2);
    w.autoReady = true;
    w.reload(['web']);
    w.advance(100);
    expect(w.state.groups.find((g) => g.name === 'api')!.pending).not.toBeNull();
    w.reload(['api']);
    w.advance(100);
    const api = w.state.groups.find((g) => g.name === 'api')!;
    expect(api.pending).toBeNull();
    expect(api.config.count).toBe(2);
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', groups: [{ name: 'api', generation: 2, done: 2, total: 2 }] });
  });

  it('a rollback on purpose returns to the existing generation: no new number, its history entry is reused', () => {
    const w = runningWorld([groupConfig()]);
    w.autoReady = true;
    w.current = makeConfig([groupConfig()], 2);
    w.reload();
    w.advance(100);
    const h1 = w.state.groups[0]!.history.find((h) => h.generation === 1)!;
    w.send({ type: 'rollback.request', requestId: 80, targets: [{ group: 'web', generation: 1, spec: h1.spec }] });
    w.advance(100);
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', trigger: 'rollback', groups: [{ name: 'web', state: 'rolled', generation: 1 }] });
    const g = w.state.groups[0]!;
    expect(g).toMatchObject({ generation: 1, lastGeneration: 2 });
    expect(g.history.map((h) => h.generation).sort()).toEqual([1, 2]);
    expect(w.live().map((x) => x.generation)).toEqual([1]);
    w.current = makeConfig([groupConfig()], 3);
    w.reload();
    w.advance(100);
    expect(w.finished.get(3)!.groups[0]!.generation).toBe(3);
  });

  it('a rollback restores the count a rolled group had; only the old generation spec is kept', () => {
    const w = runningWorld([groupConfig({ count: 2 }), groupConfig({ name: 'api' })]);
    w.current = makeConfig([groupConfig({ count: 1 }), groupConfig({ name: 'api' })], 2);
    w.reload();
    w.readyAll('web');
    expect(w.state.reload!.order[0]!.state).toBe('rolled');
    expect(w.live('web').map((x) => x.generation)).toEqual([2]);
    w.crash(w.live('api').find((x) => x.generation === 2)!.id);
    w.autoReady = true;
    w.readyAll();
    w.advance(60_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    const web = w.state.groups[0]!;
    expect(web.config.count).toBe(2);
    expect(web.slots.map((s) => s.generation)).toEqual([1, 1]);
    expect(w.live('web').map((x) => [x.slot, x.generation]).sort()).toEqual([
      [0, 1],
      [1, 1],
    ]);
    expect(Object.keys(web.specs)).toEqual(['1']);
  });

  it('a rollback with a bake due is not held by the bake: every slot is refilled', () => {
    const verify = { bakeMs: 10_000, maxErrorRate: null, minRequests: 20, watchMs: 0 };
    const rolling = { surge: 0, unavailable: 1 };
    const w = runningWorld([groupConfig({ count: 2, rolling })]);
    w.current = makeConfig([groupConfig({ count: 2, rolling, verify })], 2);
    w.reload();
    // No room: an old worker was stopped to make room for the canary.
    const canary = w.live().find((x) => x.generation === 2)!;
    expect(w.live().filter((x) => x.generation === 1)).toHaveLength(1);
    w.ready(canary.id);
    expect(w.armed()).toContain('bake:1:web');
    w.crash(canary.id);
    expect(w.armed().filter((k) => k.startsWith('bake:'))).toEqual([]);
    w.readyUntilSettled();
    w.advance(1000);
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' }, groups: [{ rollback: { state: 'succeeded', generation: 1 } }] });
    expect(report.groups[0]!.verification.verdict).toBe('failed');
    expect(w.readyWorkers().map((x) => x.generation)).toEqual([1, 1]);
  });

  it('the onFailure of the config being rolled to decides', () => {
    const w = runningWorld([groupConfig({ count: 2, onFailure: 'rollback' })]);
    w.current = makeConfig([groupConfig({ count: 2, onFailure: 'keep' })], 2);
    w.reload();
    const first = w.live().find((x) => x.generation === 2)!;
    w.ready(first.id);
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: null });
    expect(w.readyWorkers().map((x) => x.generation).sort()).toEqual([1, 2]);
  });

  it('onFailure: keep keeps a group this reload added once one of its workers got ready', () => {
    const w = runningWorld([groupConfig()]);
    w.current = makeConfig([groupConfig(), groupConfig({ name: 'api', count: 2, onFailure: 'keep' })], 2);
    w.reload();
    w.readyAll('web');
    const [a, b] = w.live('api');
    w.ready(a!.id);
    w.crash(b!.id);
    expect(w.finished.get(1)!.groups.find((g) => g.name === 'api')).toMatchObject({ state: 'failed', done: 1 });
    w.advance(60_000);
    const api = w.state.groups.find((g) => g.name === 'api')!;
    expect(api.removing).toBe(false);
    expect(w.readyWorkers('api').map((x) => x.id)).toContain(a!.id);
  });

  it('a rollback that fails stops the other workers it was starting, names the first failure, and the next group still goes back', () => {
    const roll = { surge: 2, unavailable: 0 };
    const groups = [groupConfig({ name: 'jobs' }), groupConfig({ name: 'api', count: 2, rolling: roll }), groupConfig()];
    const w = runningWorld(groups);
    w.current = makeConfig(groups, 2);
    w.reload();
    w.readyAll('jobs');
    w.readyAll('api');
    expect(w.state.reload!.order.map((e) => e.state)).toEqual(['rolled', 'rolled', 'rolling']);
    const webNew = w.live('web').find((x) => x.generation === 2)!;
    w.crash(webNew.id);
    // web had nothing to roll back; api's rollback starts two workers of generation 1.
    const back = w.live('api').filter((x) => x.generation === 1);
    expect(back.map((x) => x.phase)).toEqual(['starting', 'starting']);
    const from = w.effects.length;
    w.crash(back[0]!.id);
    const reason = `worker ${back[0]!.id} exited with code 1 before it was ready`;
    expect(stopReasons(w, from)[back[1]!.id]).toBe('rollback failed');
    expect(logs(w, 'rollback failed: mixed generations serve', from)).toEqual([
      expect.objectContaining({ level: 'error', fields: expect.objectContaining({ reloadId: 1, group: 'api', workerId: back[0]!.id }) }),
    ]);
    // jobs is rolled back next; its first worker fails as well: the report names the first failure.
    const jobsBack = w.live('jobs').find((x) => x.generation === 1 && x.phase === 'starting')!;
    w.crash(jobsBack.id);
    w.autoReady = true;
    w.readyAll();
    w.advance(60_000);
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', errorCode: -32009, rollback: { state: 'failed' } });
    expect(report.error).toBe(`web: worker ${webNew.id} exited with code 1 before it was ready; the rollback failed too (api: ${reason}): mixed generations serve`);
    expect(report.groups.map((g) => [g.name, g.rollback?.state])).toEqual([
      ['jobs', 'failed'],
      ['api', 'failed'],
      ['web', 'succeeded'],
    ]);
    expect(report.groups.find((g) => g.name === 'api')!.rollback).toEqual({ state: 'failed', generation: 1, reason });
    expect(w.live('api').every((x) => x.generation === 2)).toBe(true);
  });

  it('a rolled group whose new worker crashed waits in backoff; its rollback refills the slot at once, without the backoff timer', () => {
    const groups = [groupConfig({ restartDelayMs: 10_000 }), groupConfig({ name: 'api' })];
    const w = runningWorld(groups);
    w.current = makeConfig(groups, 2);
    w.reload();
    w.readyAll('web');
    w.crash(w.live('web').find((x) => x.generation === 2)!.id);
    expect(w.armed()).toContain('backoff:web:0');
    expect(w.live('web')).toHaveLength(0);
    w.crash(w.live('api').find((x) => x.generation === 2)!.id);
    expect(w.armed()).not.toContain('backoff:web:0');
    expect(w.state.groups[0]!.slots[0]).toMatchObject({ generation: 1, backoffUntil: null });
    expect(w.live('web').map((x) => x.generation)).toEqual([1]);
    w.autoReady = true;
    w.readyAll();
    w.advance(30_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(w.live('web').map((x) => x.generation)).toEqual([1]);
    expect(w.effectsOf('spawn').filter((x) => x.group === 'web' && x.generation === 1)).toHaveLength(2);
    expect(w.violations).toEqual([]);
  });

  it('in place with an old worker still draining: only the surplus new workers stop, one per worker beyond the count', () => {
    const w = new World(makeConfig([groupConfig({ count: 2 })]), { start: false });
    w.behave = (s) => (s.generation === 1 ? { drainMs: 60_000 } : {});
    w.send({ type: 'start' });
    w.readyUntilSettled();
    w.current = makeConfig([groupConfig({ count: 3 })], 1);
    w.reload();
    const [inSlot2, inSlot0] = w.live().filter((x) => x.generation === 2);
    expect([inSlot2!.slot, inSlot0!.slot]).toEqual([2, 0]);
    w.ready(inSlot2!.id);
    w.ready(inSlot0!.id);
    // The old worker of slot 0 drains; slot 1 gets its new worker, which fails.
    const inSlot1 = w.live().find((x) => x.generation === 2 && x.slot === 1)!;
    const from = w.effects.length;
    w.crash(inSlot1.id);
    expect(Object.entries(stopReasons(w, from))).toEqual([[String(inSlot2!.id), 'rollback: surplus worker of the failed generation']]);
    expect(w.live().map((x) => [x.slot, x.generation]).sort()).toEqual([
      [0, 2],
      [1, 1],
    ]);
  });

  it('while a group rolls back, the current report shows its rollback running', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2 })], 2);
    w.reload();
    w.readyAll();
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    const during = currentReport(w.state, w.now);
    expect(during.groups[0]!.rollback).toEqual({ state: 'running', generation: 1 });
    expect(during.rollback).toMatchObject({ state: 'running', durationMs: null });
    w.readyUntilSettled();
    w.advance(1000);
    expect(w.finished.get(1)).toMatchObject({ rollback: { state: 'succeeded' }, groups: [{ rollback: { state: 'succeeded', generation: 1 } }] });
  });

  it('a failed reload leaves the timers of draining workers alone: an old worker that ignores the stop signal is still killed', () => {
    const w = new World(makeConfig([groupConfig({ count: 2, stopTimeoutMs: 5000 })]), { start: false });
    w.behave = (s) => (s.generation === 1 ? { ignoreStop: true } : {});
    w.send({ type: 'start' });
    w.readyUntilSettled();
    w.current = makeConfig([groupConfig({ count: 2, stopTimeoutMs: 5000 })], 2);
    w.reload();
    w.readyAll();
    const retired = w.workers().find((x) => x.phase === 'stopping')!;
    expect(w.armed()).toContain(`kill:${retired.id}`);
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    expect(w.armed()).toContain(`kill:${retired.id}`);
    w.autoReady = true;
    w.readyAll();
    w.advance(6000);
    expect(w.proc(retired.id).signals).toEqual(['SIGTERM', 'SIGKILL']);
    w.advance(60_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
  });

  it('a new worker failing after the bake passed leaves the verdict passed; a canary that never got ready is not judged failed', () => {
    const verify = { bakeMs: 5000, maxErrorRate: null, minRequests: 20, watchMs: 0 };
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2, verify })], 2);
    w.reload();
    w.readyAll();
    w.advance(5000);
    expect(w.state.reload!.order[0]!.verification!.baked).toBe(true);
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    w.autoReady = true;
    w.readyAll();
    w.advance(60_000);
    expect(w.finished.get(1)!.groups[0]!.verification.verdict).toBe('passed');

    w.autoReady = false;
    w.current = makeConfig([groupConfig({ count: 2, verify })], 3);
    w.reload();
    w.crash(w.live().find((x) => x.generation === 3)!.id);
    w.autoReady = true;
    w.readyAll();
    w.advance(60_000);
    const second = w.finished.get(2)!;
    expect(second.state).toBe('failed');
    expect(second.groups[0]!.verification.canary.workerId).toBeNull();
    expect(second.groups[0]!.verification.verdict).not.toBe('failed');
  });

  it('a failing rollback stops only the workers it was still starting: one already ready stays', () => {
    const roll = { surge: 2, unavailable: 0 };
    const groups = [groupConfig({ name: 'api', count: 2, rolling: roll }), groupConfig()];
    const w = runningWorld(groups);
    w.current = makeConfig(groups, 2);
    w.reload();
    w.readyAll('api');
    w.crash(w.live('web').find((x) => x.generation === 2)!.id);
    const back = w.live('api').filter((x) => x.generation === 1);
    expect(back).toHaveLength(2);
    w.ready(back[0]!.id);
    w.crash(back[1]!.id);
    expect(w.live('api').map((x) => x.id)).toContain(back[0]!.id);
    expect(w.workers('api').find((x) => x.id === back[0]!.id)!.phase).toBe('ready');
  });

  it('the bake of a later group waits for its own canary, not for the new workers of a group rolled before it', () => {
    const verify = { bakeMs: 5000, maxErrorRate: null, minRequests: 20, watchMs: 0 };
    const w = runningWorld([groupConfig(), groupConfig({ name: 'api' })]);
    w.current = makeConfig([groupConfig(), groupConfig({ name: 'api', verify })], 2);
    w.reload();
    w.readyAll('web');
    expect(w.live('api').map((x) => x.generation)).toEqual([1, 2]);
    w.readyAll('api');
    expect(w.state.reload!.order[1]!.state).toBe('verifying');
    w.advance(5000);
    w.advance(100);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', groups: [{ name: 'web', generation: 2 }, { name: 'api', generation: 2 }] });
  });

  it('a failed reload stops only the starting workers of the new generation: an old worker restarting stays', () => {
    const w = runningWorld([groupConfig({ count: 2, restartDelayMs: 100 })]);
    w.crash(w.live()[1]!.id);
    w.advance(100);
    const restarting = w.live().find((x) => x.phase === 'starting')!;
    expect(restarting.generation).toBe(1);
    w.current = makeConfig([groupConfig({ count: 2, restartDelayMs: 100 })], 2);
    w.reload();
    const fresh = w.live().find((x) => x.generation === 2)!;
    const from = w.effects.length;
    w.crash(fresh.id);
    expect(stopReasons(w, from)[restarting.id]).toBeUndefined();
    expect(w.live().map((x) => x.id)).toContain(restarting.id);
  });
});
