/**
 * How smoothd stops (DESIGN §6): every live worker gets its group's stop signal
 * and a kill timer of its stopTimeout; a forced stop (or a second stop asking
 * for force) kills at once; every reload still running or waiting ends
 * `aborted` with the stopping error; the daemon exits with 0 (or 71 after a
 * failed start) once every worker is gone, with no timer left armed.
 */
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../src/supervisor/types.js';
import { World, groupConfig, makeConfig, runningWorld } from './harness.js';

type Log = Extract<Effect, { type: 'log' }>;
const logs = (w: World, msg: string, from = 0): Log[] => w.effectsOf('log', from).filter((e) => e.msg === msg);

describe('stopping smoothd', () => {
  it('sends each live worker its stop signal with a kill timer of its stopTimeout, and logs who is stopped and why', () => {
    const w = runningWorld([groupConfig({ count: 2, stopSignal: 'SIGQUIT', stopTimeoutMs: 7_000 }), groupConfig({ name: 'api', stopTimeoutMs: 4_000 })]);
    w.behave = () => ({ ignoreStop: true });
    for (const x of w.live()) w.proc(x.id).behavior.ignoreStop = true;
    const from = w.effects.length;
    const live = w.live();
    w.stop(false, 500);
    expect(w.replyTo(500)).toEqual({ type: 'reply.ok', requestId: 500 });
    const signals = w.effectsOf('signal', from);
    expect(signals.map((s) => [s.workerId, s.signal]).sort()).toEqual(
      live.map((x) => [x.id, x.group === 'web' ? 'SIGQUIT' : 'SIGTERM']).sort(),
    );
    const kills = w.effectsOf('timer.set', from).filter((t) => t.key.startsWith('kill:'));
    expect(kills.map((t) => [t.key, t.ms]).sort()).toEqual(live.map((x) => [`kill:${x.id}`, x.group === 'web' ? 7_000 : 4_000]).sort());
    // The ready timers of a stopping worker no longer matter.
    expect(w.armed().filter((k) => k.startsWith('readyTimeout:'))).toEqual([]);
    const stopping = logs(w, 'stopping worker', from);
    expect(stopping).toHaveLength(3);
    for (const x of live) {
      expect(stopping).toContainEqual({ type: 'log', level: 'info', msg: 'stopping worker', fields: { group: x.group, workerId: x.id, pid: x.pid, reason: 'smoothd is stopping' } });
    }
    expect(w.workers().every((x) => x.phase === 'stopping' && x.stoppingAt === w.now && x.stopReason === 'smoothd is stopping')).toBe(true);
    // api's worker ignores SIGTERM: killed at its 4 s, web's at their 7 s.
    w.advance(4_000);
    expect(w.effectsOf('signal', from).filter((s) => s.signal === 'SIGKILL').map((s) => s.workerId)).toEqual(live.filter((x) => x.group === 'api').map((x) => x.id));
    w.advance(3_000);
    expect(w.effectsOf('signal', from).filter((s) => s.signal === 'SIGKILL')).toHaveLength(3);
    expect(w.exitCode).toBe(0);
    expect(w.violations).toEqual([]);
  });

  it('exits 0 once every worker has exited, clears every timer and logs the exit code', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    // A slot waiting for its restart delay: its backoff timer must not outlive the stop.
    w.crash(w.live()[0]!.id);
    expect(w.armed()).toContain('backoff:web:0');
    const from = w.effects.length;
    w.stop();
    expect(w.state.groups[0]!.slots.every((s) => s.backoffUntil === null)).toBe(true);
    expect(w.effectsOf('timer.clear', from).map((t) => t.key)).toContain('backoff:web:0');
    expect(w.exitCode).toBe(0);
    expect(w.state.exited).toBe(true);
    expect(w.state.workers).toEqual([]);
    expect(w.armed()).toEqual([]);
    expect(logs(w, 'every worker has exited', from)).toEqual([{ type: 'log', level: 'info', msg: 'every worker has exited', fields: { exitCode: 0 } }]);
    // The stopped worker's slot says why it ended.
    expect(w.state.groups[0]!.slots[1]!.lastExit!.reason).toBe('stopped (smoothd is stopping)');
    expect(w.violations).toEqual([]);
  });

  it('does not exit while a worker still drains, and no worker is restarted during the stop', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    for (const x of w.live()) w.proc(x.id).behavior.drainMs = 1_000;
    const spawns = w.effectsOf('spawn').length;
    w.stop();
    w.advance(500);
    expect(w.exitCode).toBeNull();
    expect(w.state.exited).toBe(false);
    w.advance(500);
    expect(w.exitCode).toBe(0);
    expect(w.effectsOf('spawn')).toHaveLength(spawns);
  });

  it('a stop with no request (a signal) sends no reply', () => {
    const w = runningWorld([groupConfig()]);
    w.stop(false, null);
    expect(w.replies).toEqual([]);
    expect(w.exitCode).toBe(0);
  });

  it('a forced stop sends SIGKILL to every worker at once and arms no kill timer', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    for (const x of w.live()) w.proc(x.id).behavior.ignoreStop = true;
    const live = w.live();
    const from = w.effects.length;
    w.stop(true, 600);
    expect(w.replies.filter((r) => 'requestId' in r && r.requestId === 600)).toEqual([{ type: 'reply.ok', requestId: 600 }]);
    const kills = w.effectsOf('signal', from).filter((s) => s.signal === 'SIGKILL');
    expect(kills.map((s) => s.workerId).sort()).toEqual(live.map((x) => x.id).sort());
    expect(w.exitCode).toBe(0);
    expect(w.armed()).toEqual([]);
    expect(logs(w, 'worker did not stop in time; killing it', from)).toEqual([]);
    expect(w.state.groups[0]!.slots.map((s) => s.lastExit!.reason)).toEqual(['killed after stopTimeout', 'killed after stopTimeout']);
  });

  it('a second stop during the stop: answered ok; with force it kills the draining workers at once', () => {
    const w = runningWorld([groupConfig({ count: 2, stopTimeoutMs: 30_000 })]);
    for (const x of w.live()) w.proc(x.id).behavior.ignoreStop = true;
    const live = w.live();
    w.stop(false, 700);
    const signalled = w.effectsOf('signal').length;
    w.stop(false, 701);
    expect(w.replyTo(701)).toEqual({ type: 'reply.ok', requestId: 701 });
    expect(w.effectsOf('signal')).toHaveLength(signalled);
    expect(w.state.daemon).toBe('stopping');
    const from = w.effects.length;
    w.stop(true, 702);
    expect(w.replies.filter((r) => 'requestId' in r && r.requestId === 702)).toEqual([{ type: 'reply.ok', requestId: 702 }]);
    // Already stopping: only the SIGKILL, no second stop signal, and the kill timers are gone.
    expect(w.effectsOf('signal', from).map((s) => [s.workerId, s.signal]).sort()).toEqual(live.map((x) => [x.id, 'SIGKILL']).sort());
    expect(w.effectsOf('timer.clear', from).map((t) => t.key).sort()).toEqual(live.map((x) => `kill:${x.id}`).sort());
    expect(w.exitCode).toBe(0);
    // A second stop signal with no request: no reply.
    const replies = w.replies.length;
    w.send({ type: 'stop.request', requestId: null, force: true });
    expect(w.replies).toHaveLength(replies);
    expect(w.violations).toEqual([]);
  });

  it('a forced stop while a reload drains an old worker kills the draining one too', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    const old = w.live()[0]!;
    w.proc(old.id).behavior.ignoreStop = true;
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    w.reload();
    w.readyAll();
    expect(w.workers().find((x) => x.id === old.id)!.phase).toBe('stopping');
    const from = w.effects.length;
    w.stop(true);
    const signals = w.effectsOf('signal', from);
    expect(signals.filter((s) => s.workerId === old.id).map((s) => s.signal)).toEqual(['SIGKILL']);
    expect(w.exitCode).toBe(0);
  });
});

describe('reloads when smoothd stops', () => {
  it('the running reload, the queued follow-up and a queued rollback all end aborted with the stopping error', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    w.autoReady = true;
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    w.reload(null, 10);
    w.advance(60_000);
    expect(w.finished.get(1)!.state).toBe('succeeded');
    const h1 = w.state.groups[0]!.history.find((h) => h.generation === 1)!;
    w.loader = () => 'manual';
    w.reload(null, 11); // reload 2, loading
    w.reload(null, 12); // reload 3, queued
    w.send({ type: 'rollback.request', requestId: 13, targets: [{ group: 'web', generation: 1, spec: h1.spec }] }); // 4, queued
    expect(w.accepted(12)).toMatchObject({ reloadId: 3, state: 'queued' });
    expect(w.accepted(13)).toMatchObject({ reloadId: 4, state: 'queued' });
    w.advance(1_234);
    const at = new Date(w.now).toISOString();
    w.stop();
    expect(w.finishedOrder).toEqual([1, 2, 4, 3]);
    expect(w.finished.get(2)).toMatchObject({ id: 2, state: 'aborted', error: 'smoothd is stopping', errorCode: -32006, trigger: 'rpc', queued: 3 });
    expect(w.finished.get(4)).toMatchObject({ id: 4, state: 'aborted', trigger: 'rollback', error: 'smoothd is stopping', errorCode: -32006, finishedAt: at });
    expect(w.finished.get(3)).toMatchObject({ id: 3, state: 'aborted', trigger: 'rpc', error: 'smoothd is stopping', errorCode: -32006, finishedAt: at });
    expect(w.state.queued).toBeNull();
    expect(w.state.queuedRollbacks).toEqual([]);
    expect(w.state.reload).toBeNull();
    // The config answer of the aborted load changes nothing; no queued reload starts.
    w.answerLoad(2, w.current);
    expect(w.loads).toEqual([1, 2]);
    expect(w.exitCode).toBe(0);
    expect(w.violations).toEqual([]);
  });

  it('a failed start stops every worker with reason "start failed" and exits 71', () => {
    const w = new World(makeConfig([groupConfig({ count: 2 })]), { start: false });
    w.behave = (s) => (s.slot === 1 ? { crashAfterMs: 10 } : {});
    w.send({ type: 'start' });
    const first = w.live().find((x) => x.slot === 0)!;
    w.ready(first.id);
    const from = w.effects.length;
    w.advance(10);
    expect(w.effectsOf('log', from).find((l) => l.msg === 'start failed: stopping every worker')).toMatchObject({ level: 'error', fields: { group: 'web', slot: 1 } });
    expect(logs(w, 'stopping worker', from).map((l) => l.fields.reason)).toEqual(['start failed']);
    expect(w.exitCode).toBe(71);
    expect(w.state.startFailure).toMatchObject({ group: 'web', slot: 1 });
    expect(w.state.groups[0]!.slots[0]!.lastExit!.reason).toBe('stopped (start failed)');
    expect(logs(w, 'every worker has exited', from)[0]!.fields).toEqual({ exitCode: 71 });
  });

  it('smoothctl stop during the stop of a failed start is answered and keeps exit code 71', () => {
    const w = new World(makeConfig([groupConfig({ count: 2, stopTimeoutMs: 5_000 })]), { start: false });
    w.behave = (s) => (s.slot === 1 ? { crashAfterMs: 10 } : { ignoreStop: true });
    w.send({ type: 'start' });
    const first = w.live().find((x) => x.slot === 0)!;
    w.ready(first.id);
    w.advance(10);
    expect(w.state.daemon).toBe('stopping');
    const from = w.effects.length;
    w.stop(false, 900);
    expect(w.replyTo(900)).toEqual({ type: 'reply.ok', requestId: 900 });
    // The worker still draining keeps its reason; nothing is stopped twice.
    expect(logs(w, 'stopping worker', from)).toEqual([]);
    expect(w.effectsOf('signal', from)).toEqual([]);
    w.advance(5_000); // its kill timer
    expect(w.state.exited).toBe(true);
    expect(w.exitCode).toBe(71);
    expect(logs(w, 'every worker has exited', from)[0]!.fields).toEqual({ exitCode: 71 });
  });

  it('a second failure during a failed start keeps the first failure', () => {
    const w = new World(makeConfig([groupConfig({ count: 2 })]), { start: false });
    w.behave = () => ({ crashAfterMs: 10 });
    w.send({ type: 'start' });
    w.advance(10);
    expect(w.state.startFailure).toMatchObject({ slot: 0 });
    expect(w.effectsOf('log').filter((l) => l.msg === 'start failed: stopping every worker')).toHaveLength(1);
    expect(w.exitCode).toBe(71);
  });
});
