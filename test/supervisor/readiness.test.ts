/**
 * A worker's start and readiness as the machine reports them: the log lines,
 * the progress of the reload that started it (and none for a crash restart),
 * readiness that comes late or twice, the generation a slot restarts from
 * after a rollback, the counters a canary is judged from, and the crash of a
 * new worker during the watch.
 */
import { describe, expect, it } from 'vitest';
import type { Effect, MachineEvent } from '../../src/supervisor/types.js';
import { step } from '../../src/supervisor/machine.js';
import { World, groupConfig, makeConfig, runningWorld } from './harness.js';

type Log = Extract<Effect, { type: 'log' }>;
const logs = (w: World, msg: string, from = 0): Log[] => w.effectsOf('log', from).filter((e) => e.msg === msg);
const verify = { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 0 };

describe('a worker starting', () => {
  it('is logged with its slot and generation, and becomes ready with its start-up time', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.crash(2);
    const from = w.effects.length;
    w.advance(100);
    const pid = w.proc(3).pid;
    expect(logs(w, 'worker started', from)).toEqual([
      { type: 'log', level: 'info', msg: 'worker started', fields: { group: 'web', workerId: 3, pid, slot: 1, generation: 1 } },
    ]);
    w.advance(250);
    w.ready(3);
    expect(logs(w, 'worker ready', from)).toEqual([{ type: 'log', level: 'info', msg: 'worker ready', fields: { group: 'web', workerId: 3, pid, startupMs: 250 } }]);
  });

  it('started by a reload is reported in its progress; a crash restart of another group during that reload is not', () => {
    const w = runningWorld([groupConfig({ name: 'web' }), groupConfig({ name: 'api', restartDelayMs: 100 })]);
    w.current = makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'api', restartDelayMs: 100 })], 2);
    w.reload(['web']);
    const fresh = w.live('web').find((x) => x.generation === 2)!;
    const api = w.live('api')[0]!;
    w.crash(api.id);
    w.advance(100);
    const restarted = w.live('api')[0]!;
    expect(restarted.id).not.toBe(api.id);
    w.ready(restarted.id);
    w.ready(fresh.id);
    const worker = w.progress.filter((p) => p.event.workerId !== null).map((p) => [p.event.step, p.event.workerId, p.event.message]);
    expect(worker.filter(([, id]) => id === restarted.id)).toEqual([]);
    const pid = w.proc(fresh.id).pid;
    expect(worker.filter(([, id]) => id === fresh.id).slice(0, 2)).toEqual([
      ['worker.started', fresh.id, `worker ${fresh.id} (pid ${pid}) started`],
      ['worker.ready', fresh.id, `worker ${fresh.id} (pid ${pid}) ready`],
    ]);
    w.advance(1000);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', groups: [{ name: 'web', state: 'rolled' }] });
  });

  it('counts the slots rolled so far in each worker.ready progress event', () => {
    const w = runningWorld([groupConfig({ count: 3 })]);
    w.current = makeConfig([groupConfig({ count: 3 })], 2);
    w.reload();
    w.readyUntilSettled();
    const ready = w.progress.filter((p) => p.event.step === 'worker.ready').map((p) => [p.event.done, p.event.total]);
    expect(ready).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
  });

  it('ready by message before its readiness delay: the delay timer is cleared with the readyTimeout', () => {
    const w = new World(makeConfig([groupConfig({ ready: { kind: 'delay', ms: 5000 } })]));
    expect(w.armed()).toEqual(['ready:1', 'readyTimeout:1']);
    const effects = w.ready(1);
    expect(effects.filter((e) => e.type === 'timer.clear').map((e) => (e as { key: string }).key).sort()).toEqual(['ready:1', 'readyTimeout:1']);
    expect(w.state.daemon).toBe('running');
    expect(w.armed()).toEqual([]);
  });

  it('ready after its readyTimeout stopped it: stays stopping, nothing is reported ready', () => {
    const w = runningWorld([groupConfig({ readyTimeoutMs: 1000, stopTimeoutMs: 5000 })]);
    w.crash(1);
    w.advance(100);
    w.proc(2).behavior.ignoreStop = true;
    w.advance(1000);
    const from = w.effects.length;
    w.ready(2);
    expect(w.workers().find((x) => x.id === 2)).toMatchObject({ phase: 'stopping', readyAt: null });
    expect(logs(w, 'worker ready', from)).toEqual([]);
    expect(w.state.groups[0]!.slots[0]!.generation).toBe(1);
  });

  it('ready twice is ready once', () => {
    const w = runningWorld([groupConfig()]);
    const readyAt = w.workers()[0]!.readyAt;
    w.advance(500);
    expect(w.ready(1)).toEqual([]);
    expect(w.workers()[0]!.readyAt).toBe(readyAt);
  });
});

describe('a slot after a rollback on purpose', () => {
  it('restarts a crashed worker from the generation it was rolled back to, not the newest', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.autoReady = true;
    w.reload();
    w.advance(1000);
    expect(w.state.groups[0]!.slots.map((s) => s.generation)).toEqual([2, 2]);
    const spec = w.state.groups[0]!.history.find((h) => h.generation === 1)!.spec;
    w.send({ type: 'rollback.request', requestId: 5, targets: [{ group: 'web', generation: 1, spec }] });
    w.advance(1000);
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded' });
    expect(w.state.groups[0]!.slots.map((s) => s.generation)).toEqual([1, 1]);
    w.crash(w.live()[0]!.id);
    w.advance(1000);
    expect(w.live().map((x) => x.generation)).toEqual([1, 1]);
    expect(w.effectsOf('spawn').at(-1)).toMatchObject({ generation: 1 });
  });
});

describe('the counters a canary is judged from', () => {
  it('start at the figures it reported before it was ready', () => {
    const policy = { ...verify, bakeMs: 10_000, maxErrorRate: 0.1, minRequests: 1 };
    const w = runningWorld([groupConfig({ verify: policy })]);
    w.current = makeConfig([groupConfig({ verify: policy, env: { REV: 'b' } })], 2);
    w.reload();
    const canary = w.live().find((x) => x.generation === 2)!;
    w.send({ type: 'worker.stats', workerId: canary.id, requests: 50, errors: 50 });
    w.ready(canary.id);
    w.send({ type: 'worker.stats', workerId: canary.id, requests: 150, errors: 50 });
    w.advance(10_000);
    w.readyUntilSettled();
    w.advance(1000);
    const report = w.finished.get(1)!;
    expect(report.state).toBe('succeeded');
    expect(report.groups[0]!.verification.canary).toMatchObject({ workerId: canary.id, requests: 100, errors: 0 });
  });
});

describe('a crash during the watch', () => {
  it('fails the reload with how long after ready it came and the watch length; the verdict is failed', () => {
    const policy = { ...verify, watchMs: 5000 };
    const w = runningWorld([groupConfig({ verify: policy, onFailure: 'keep' })]);
    w.current = makeConfig([groupConfig({ verify: policy, onFailure: 'keep' })], 2);
    w.reload();
    w.readyUntilSettled();
    w.advance(100);
    expect(w.state.reload!.order[0]!.state).toBe('watching');
    const fresh = w.live()[0]!;
    w.advance(2400);
    w.exit(fresh.id, 4, null, ['fatal: pool exhausted']);
    const report = w.finished.get(1)!;
    expect(report.state).toBe('failed');
    expect(report.failure).toEqual({
      group: 'web',
      workerId: fresh.id,
      slot: 0,
      pid: fresh.pid,
      reason: 'exited with code 4 2.5s after it was ready, during the 5s watch',
      stderrTail: ['fatal: pool exhausted'],
    });
    expect(report.groups[0]!.verification.verdict).toBe('failed');
  });

  it('of a worker of another group is an ordinary crash: the watched reload still succeeds', () => {
    const policy = { ...verify, watchMs: 5000 };
    const groups = [groupConfig({ name: 'web', verify: policy }), groupConfig({ name: 'api', verify: policy })];
    const w = runningWorld(groups);
    w.current = makeConfig(groups, 2);
    w.reload(['web']);
    w.readyUntilSettled();
    w.advance(100);
    expect(w.state.reload!.order[0]).toMatchObject({ name: 'web', state: 'watching' });
    w.crash(w.live('api')[0]!.id);
    w.advance(6000);
    w.readyUntilSettled();
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', failure: null });
    expect(w.live('api').map((x) => x.generation)).toEqual([1]);
  });
});

describe('an event the machine does not know', () => {
  it('is an internal error naming the event', () => {
    const w = runningWorld([groupConfig()]);
    const bogus = { type: 'worker.teleported', workerId: 1 } as unknown as MachineEvent;
    expect(() => step(w.state, bogus, w.now)).toThrow('internal: unknown event {"type":"worker.teleported","workerId":1}');
  });
});
