/**
 * How the machine answers a reload, restart or rollback request: refused
 * (stopping, Windows, unknown group), queued behind a running one (joined into
 * one follow-up, widened and forced as asked), or started — with the replies,
 * log lines and progress an operator sees.
 */
import { describe, expect, it } from 'vitest';
import type { Effect, RollbackTarget } from '../../src/supervisor/types.js';
import { World, groupConfig, makeConfig, runningWorld } from './harness.js';

type Log = Extract<Effect, { type: 'log' }>;
const logs = (w: World, msg: string, from = 0): Log[] => w.effectsOf('log', from).filter((e) => e.msg === msg);
const targetOf = (w: World, group: string, generation: number): RollbackTarget => {
  const g = w.state.groups.find((x) => x.name === group)!;
  return { group, generation, spec: g.history.find((h) => h.generation === generation)!.spec };
};

describe('a reload request', () => {
  it('on Windows is refused with the reason and what to do instead', () => {
    const w = runningWorld([groupConfig()], { platform: 'win32' });
    w.reload(null, 1);
    expect(w.replyTo(1)).toEqual({
      type: 'reply.refused',
      requestId: 1,
      kind: 'windows',
      message: 'reload is not supported on Windows: smoothd cannot hand listening sockets to new workers there; stop and start the service instead',
    });
  });

  it('naming unknown groups is refused with each unknown name and the groups there are', () => {
    const w = runningWorld([groupConfig({ name: 'web' }), groupConfig({ name: 'api' })]);
    w.reload(['web', 'nope', 'gone'], 1);
    expect(w.replyTo(1)).toEqual({
      type: 'reply.refused',
      requestId: 1,
      kind: 'unknown-group',
      message: 'unknown group "nope", "gone"; groups are: web, api',
    });
    expect(w.state.reload).toBeNull();
    expect(w.state.queued).toBeNull();
  });

  it('while stopping gets the stopping refusal, even for an unknown group; nothing is queued', () => {
    const w = runningWorld([groupConfig()]);
    w.proc(1).behavior.drainMs = 100;
    w.stop();
    w.reload(['nope'], 5);
    expect(w.replyTo(5)).toEqual({ type: 'reply.stopping', requestId: 5 });
    expect(w.state.queued).toBeNull();
  });

  it('during a reload is queued: partial requests join their groups, a restart forces its group, one log line each', () => {
    const web = groupConfig({ name: 'web' });
    const api = groupConfig({ name: 'api' });
    const gw = groupConfig({ name: 'gw', reloadable: false });
    const w = runningWorld([web, api, gw]);
    w.loader = () => 'manual';
    w.reload(null, 1);
    const from = w.effects.length;
    w.reload(['web'], 2);
    w.restart('gw', 3);
    w.reload(['web', 'api'], 4);
    expect([2, 3, 4].map((id) => w.accepted(id))).toEqual([2, 3, 4].map((requestId) => ({ type: 'reply.accepted', requestId, reloadId: 2, state: 'queued' })));
    expect(w.state.queued).toEqual({ id: 2, trigger: 'rpc', groups: ['web', 'gw', 'api'], force: ['gw'] });
    expect(logs(w, 'reload queued behind the running one', from).map((e) => [e.level, e.fields])).toEqual([
      ['info', { reloadId: 2, groups: ['web'] }],
      ['info', { reloadId: 2, groups: ['web', 'gw'] }],
      ['info', { reloadId: 2, groups: ['web', 'gw', 'api'] }],
    ]);
    // The follow-up restarts gw (not reloadable) because a restart asked for it.
    w.answerLoad(1, w.current);
    w.readyUntilSettled();
    w.answerLoad(2, w.current);
    w.readyUntilSettled();
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', trigger: 'rpc' });
    expect(w.finished.get(2)!.groups.map((g) => [g.name, g.state])).toEqual([
      ['web', 'rolled'],
      ['api', 'rolled'],
      ['gw', 'rolled'],
    ]);
  });

  it('a reload of every group joining a partial queued one widens it to every group', () => {
    const w = runningWorld([groupConfig({ name: 'web' }), groupConfig({ name: 'api' })]);
    w.loader = () => 'manual';
    w.reload(null, 1);
    w.reload(['web'], 2);
    w.reload(null, 3);
    w.reload(['api'], 4);
    expect(w.state.queued).toMatchObject({ id: 2, groups: null, force: [] });
  });

  it('while starting is queued with its own trigger; the start does not run it early', () => {
    const w = new World(makeConfig([groupConfig()]));
    w.send({ type: 'reload.request', requestId: 7, groups: null, trigger: 'signal' });
    expect(w.accepted(7)).toEqual({ type: 'reply.accepted', requestId: 7, reloadId: 1, state: 'queued' });
    expect(w.state.queued).toEqual({ id: 1, trigger: 'signal', groups: null, force: [] });
    expect(w.loads).toEqual([]);
    w.readyUntilSettled();
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', trigger: 'signal' });
  });

  it('when idle is answered as running before its first progress step', () => {
    const w = runningWorld([groupConfig()]);
    const effects = w.reload(null, 9);
    const reply = effects.findIndex((e) => e.type === 'reply.accepted');
    const progress = effects.findIndex((e) => e.type === 'reload.progress');
    expect(effects[reply]).toEqual({ type: 'reply.accepted', requestId: 9, reloadId: 1, state: 'running' });
    expect(reply).toBeGreaterThanOrEqual(0);
    expect(reply).toBeLessThan(progress);
  });
});

describe('a rollback request', () => {
  const rolledTwice = () => {
    const w = runningWorld([groupConfig({ name: 'web', count: 2 }), groupConfig({ name: 'api' })]);
    w.autoReady = true;
    w.reload();
    w.advance(1000);
    w.autoReady = false;
    expect(w.finished.get(1)?.state).toBe('succeeded');
    return w;
  };

  it('while stopping gets the stopping refusal', () => {
    const w = rolledTwice();
    for (const p of w.procs.values()) p.behavior.drainMs = 100;
    w.stop();
    w.send({ type: 'rollback.request', requestId: 5, targets: [targetOf(w, 'web', 1)] });
    expect(w.replyTo(5)).toEqual({ type: 'reply.stopping', requestId: 5 });
    expect(w.state.queuedRollbacks).toEqual([]);
  });

  it('on Windows is refused with the reason', () => {
    const w = runningWorld([groupConfig()], { platform: 'win32' });
    const spec = w.state.groups[0]!.history[0]!.spec;
    w.send({ type: 'rollback.request', requestId: 6, targets: [{ group: 'web', generation: 1, spec }] });
    expect(w.replyTo(6)).toEqual({
      type: 'reply.refused',
      requestId: 6,
      kind: 'windows',
      message: 'rollback is not supported on Windows: smoothd cannot hand listening sockets to new workers there',
    });
    expect(w.state.reload).toBeNull();
  });

  it('when idle starts at once: a rollback run of the groups named, logged with group@generation, fixed to that generation', () => {
    const w = rolledTwice();
    const from = w.effects.length;
    const t0 = w.now;
    w.send({ type: 'rollback.request', requestId: 8, targets: [targetOf(w, 'web', 1)] });
    expect(w.accepted(8)).toEqual({ type: 'reply.accepted', requestId: 8, reloadId: 2, state: 'running' });
    expect(logs(w, 'rollback started', from)).toEqual([
      { type: 'log', level: 'info', msg: 'rollback started', fields: { reloadId: 2, targets: ['web@1'] } },
    ]);
    const r = w.state.reload!;
    expect(r).toMatchObject({ id: 2, trigger: 'rollback', groups: ['web'], force: ['web'], removed: [], startedAt: t0, readyAt: null, rollback: null });
    expect(r.order).toMatchObject([{ name: 'web', generation: 1, total: 2, fixed: true }]);
    expect(w.state.daemon).toBe('reloading');
    w.readyUntilSettled();
    w.advance(1000);
    const report = w.finished.get(2)!;
    expect(report).toMatchObject({ state: 'succeeded', trigger: 'rollback', done: 2, total: 2, groups: [{ name: 'web', state: 'rolled', generation: 1 }] });
    expect(w.live('web').map((x) => x.generation)).toEqual([1, 1]);
    expect(w.live('api').map((x) => x.generation)).toEqual([2]);
    expect(w.state.groups.map((g) => [g.name, g.generation])).toEqual([['web', 1], ['api', 2]]);
  });

  it('to the generation a group runs already skips it with a progress message; a group that no longer exists is left out', () => {
    const w = rolledTwice();
    const from = w.effects.length;
    const stale = { ...targetOf(w, 'web', 1), group: 'old' };
    w.send({ type: 'rollback.request', requestId: 9, targets: [targetOf(w, 'api', 2), stale, targetOf(w, 'web', 1)] });
    expect(logs(w, 'rollback started', from)[0]!.fields).toEqual({ reloadId: 2, targets: ['api@2', 'web@1'] });
    expect(w.state.reload!.groups).toEqual(['api', 'web']);
    const skipped = w.progress.filter((p) => p.reloadId === 2 && p.event.step === 'group.skipped').map((p) => [p.event.group, p.event.message]);
    expect(skipped).toEqual([['api', 'api: already on generation 2, nothing to roll back']]);
    w.readyUntilSettled();
    w.advance(1000);
    expect(w.finished.get(2)!.groups.map((g) => [g.name, g.state, g.generation])).toEqual([
      ['api', 'skipped', 2],
      ['web', 'rolled', 1],
    ]);
    expect(w.live('api').map((x) => x.generation)).toEqual([2]);
  });

  it('during a reload waits as its own item with a log line; one asked for while starting waits too', () => {
    const w = rolledTwice();
    w.loader = () => 'manual';
    w.reload(null, 1);
    const from = w.effects.length;
    w.send({ type: 'rollback.request', requestId: 10, targets: [targetOf(w, 'web', 1)] });
    expect(w.accepted(10)).toEqual({ type: 'reply.accepted', requestId: 10, reloadId: 3, state: 'queued' });
    expect(logs(w, 'rollback queued behind the running reload', from)).toEqual([
      { type: 'log', level: 'info', msg: 'rollback queued behind the running reload', fields: { reloadId: 3, groups: ['web'] } },
    ]);
    expect(w.state.queuedRollbacks.map((q) => q.id)).toEqual([3]);
    expect(w.state.queued).toBeNull();

    const s = new World(makeConfig([groupConfig()]));
    const spec = s.state.groups[0]!.history[0]!.spec;
    s.send({ type: 'rollback.request', requestId: 11, targets: [{ group: 'web', generation: 1, spec }] });
    expect(s.accepted(11)).toMatchObject({ state: 'queued', reloadId: 1 });
    expect(s.state.reload).toBeNull();
  });
});
