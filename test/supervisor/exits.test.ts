/**
 * What a worker's end means to the supervisor: a readyTimeout, a stopTimeout
 * SIGKILL, a crash, a spawn failure, a planned exit, a process group that
 * outlives its leader, and the crash backoff that follows — the reasons, log
 * lines and slot figures an operator reads, and the timers the runtime is
 * told to clear.
 */
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../src/supervisor/types.js';
import { BACKOFF_RESET_MS, LINGERING_TEXT } from '../../src/supervisor/machine.js';
import { timerDue } from '../../src/supervisor/timers.js';
import { World, groupConfig, makeConfig, runningWorld } from './harness.js';

type Log = Extract<Effect, { type: 'log' }>;
const logs = (w: World, msg: string, from = 0): Log[] => w.effectsOf('log', from).filter((e) => e.msg === msg);
const cleared = (w: World, from = 0): string[] => w.effectsOf('timer.clear', from).map((e) => e.key);

describe('a worker not ready within readyTimeout', () => {
  it('in steady state: stopped with the readyTimeout as its reason, counted as a restart, restarted after its backoff', () => {
    const w = runningWorld([groupConfig({ readyTimeoutMs: 1500, restartDelayMs: 300 })]);
    w.crash(1);
    expect(w.state.groups[0]!.slots[0]!.restarts).toBe(1);
    w.advance(300); // worker 2 starts
    const from = w.effects.length;
    w.advance(1500);
    expect(logs(w, 'stopping worker', from).map((e) => e.fields)).toEqual([
      { group: 'web', workerId: 2, pid: w.proc(2).pid, reason: 'not ready within 1.5s (readyTimeout)' },
    ]);
    expect(w.state.groups[0]!.slots[0]!.restarts).toBe(2);
    // The backoff doubled after the crash: 600 ms from the readyTimeout.
    expect(timerDue(w.state.timers, 'backoff:web:0')).toBe(w.now + 600);
    expect(w.state.groups[0]!.slots[0]!.backoffUntil).toBe(w.now + 600);
    expect(w.state.groups[0]!.slots[0]!.lastExit).toMatchObject({ reason: 'stopped (not ready within 1.5s (readyTimeout))' });
    expect(w.violations).toEqual([]);
  });

  it('of a new worker during a reload: fails the reload with the readyTimeout as its reason', () => {
    const w = runningWorld([groupConfig({ readyTimeoutMs: 2000, onFailure: 'keep' })]);
    w.current = makeConfig([groupConfig({ readyTimeoutMs: 2000, onFailure: 'keep' })], 2);
    w.reload();
    const fresh = w.live().find((x) => x.generation === 2)!;
    w.advance(2000);
    const report = w.finished.get(1)!;
    expect(report.state).toBe('failed');
    expect(report.failure).toMatchObject({ group: 'web', workerId: fresh.id, slot: 0, pid: fresh.pid, reason: 'not ready within 2s (readyTimeout)' });
    // The old worker still serves the slot: no restart is scheduled for it.
    expect(w.armed().filter((k) => k.startsWith('backoff:'))).toEqual([]);
    expect(w.live().map((x) => x.id)).toEqual([1]);
    expect(w.violations).toEqual([]);
  });

  it('of a new worker that replaced the only old one: the rollback refills the slot at once, with no backoff', () => {
    const cfg = { count: 1, readyTimeoutMs: 1000, rolling: { surge: 0, unavailable: 1 } };
    const w = runningWorld([groupConfig(cfg)]);
    w.current = makeConfig([groupConfig(cfg)], 2);
    w.reload();
    expect(w.live().map((x) => [x.id, x.generation])).toEqual([[2, 2]]);
    w.advance(1000);
    expect(w.live().map((x) => [x.id, x.generation, x.phase])).toEqual([[3, 1, 'starting']]);
    expect(w.state.groups[0]!.slots[0]!.backoffUntil).toBeNull();
    expect(w.armed().filter((k) => k.startsWith('backoff:'))).toEqual([]);
    w.readyAll();
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(w.violations).toEqual([]);
  });

  it('a stale readyTimeout (its worker became ready) changes nothing', () => {
    const w = runningWorld([groupConfig()]);
    const before = w.state;
    const effects = w.send({ type: 'timer', key: 'readyTimeout:1' });
    expect(effects).toEqual([]);
    expect(w.state.workers).toEqual(before.workers);
    expect(w.live().map((x) => x.phase)).toEqual(['ready']);
  });
});

describe('a worker that ignores its stop signal', () => {
  it('is SIGKILLed at stopTimeout with a warning naming it; its exit reads "killed after stopTimeout"', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 1000 })]);
    w.proc(1).behavior.ignoreStop = true;
    w.current = makeConfig([groupConfig({ stopTimeoutMs: 1000 })], 2);
    w.reload();
    w.readyAll();
    const from = w.effects.length;
    w.advance(1000);
    expect(logs(w, 'worker did not stop in time; killing it', from)).toEqual([
      { type: 'log', level: 'warn', msg: 'worker did not stop in time; killing it', fields: { group: 'web', workerId: 1, pid: w.proc(1).pid } },
    ]);
    expect(w.proc(1).signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(logs(w, 'worker exited', from).map((e) => e.fields)).toEqual([
      { group: 'web', workerId: 1, pid: w.proc(1).pid, code: null, signal: 'SIGKILL', reason: 'killed after stopTimeout' },
    ]);
    expect(w.progress.filter((p) => p.event.step === 'worker.stopped').map((p) => p.event.message)).toEqual([`old worker 1 (pid ${w.proc(1).pid}) exited`]);
    expect(w.finished.get(1)?.state).toBe('succeeded');
  });

  it('a kill timer sent again after the worker exited signals nothing', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 1000 })]);
    w.stop();
    expect(w.exitCode).toBe(0);
    expect(w.send({ type: 'timer', key: 'kill:1' }).filter((e) => e.type === 'signal')).toEqual([]);
  });
});

describe('a crash', () => {
  it('before ready: its timers are cleared, the slot remembers the exit with its time, and a warning carries the last 5 stderr lines', () => {
    const w = runningWorld([groupConfig({ ready: { kind: 'delay', ms: 5000 } })]);
    w.crash(1);
    w.advance(100); // worker 2 starts, ready by a 5 s delay
    const from = w.effects.length;
    const stderr = ['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7'];
    w.exit(2, 3, null, stderr);
    expect(cleared(w, from).sort()).toEqual(['ready:2', 'readyTimeout:2']);
    expect(w.state.timers).not.toHaveProperty('ready:2');
    expect(logs(w, 'worker crashed', from)).toEqual([
      { type: 'log', level: 'warn', msg: 'worker crashed', fields: { group: 'web', workerId: 2, pid: w.proc(2).pid, code: 3, signal: null, stderrTail: ['l3', 'l4', 'l5', 'l6', 'l7'] } },
    ]);
    expect(w.state.groups[0]!.slots[0]!.lastExit).toEqual({ code: 3, signal: null, at: new Date(w.now).toISOString(), reason: 'exited with code 3' });
    expect(w.armed()).toEqual(['backoff:web:0']);
  });

  it(`after exactly ${BACKOFF_RESET_MS} ms ready resets the backoff to restartDelay`, () => {
    const w = runningWorld([groupConfig({ restartDelayMs: 100 })]);
    w.crash(1);
    w.advance(100);
    w.ready(2);
    w.crash(2); // backoff now 200, next 400
    w.advance(200);
    w.ready(3);
    w.advance(BACKOFF_RESET_MS);
    w.crash(3);
    expect(timerDue(w.state.timers, 'backoff:web:0')).toBe(w.now + 100);
  });

  it('of a worker that could not be started: a warning with its slot, generation and error', () => {
    const w = runningWorld([groupConfig()]);
    w.crash(1);
    w.advance(100);
    const from = w.effects.length;
    w.send({ type: 'worker.spawnFailed', workerId: 2, error: 'cwd /srv/x does not exist (ENOENT)' });
    expect(logs(w, 'worker could not be started', from)).toEqual([
      {
        type: 'log',
        level: 'warn',
        msg: 'worker could not be started',
        fields: { group: 'web', workerId: 2, slot: 0, generation: 1, error: 'could not be started: cwd /srv/x does not exist (ENOENT)' },
      },
    ]);
    expect(logs(w, 'worker crashed', from)).toEqual([]);
  });

  it('of a new worker after ready while its group still rolls fails the reload with that reason', () => {
    const w = runningWorld([groupConfig({ count: 2, onFailure: 'keep' })]);
    w.current = makeConfig([groupConfig({ count: 2, onFailure: 'keep' })], 2);
    w.reload();
    w.readyAll(); // first new worker ready, the second starts
    const first = w.live().find((x) => x.generation === 2 && x.phase === 'ready')!;
    w.exit(first.id, null, 'SIGSEGV');
    expect(w.finished.get(1)!.failure).toMatchObject({ workerId: first.id, reason: 'was killed by SIGSEGV while the reload was still rolling' });
    // The roll refills nothing: no backoff timer for the failed slot during the roll's end.
    expect(w.violations).toEqual([]);
  });

  it('of a new worker before ready says so in the reload failure', () => {
    const w = runningWorld([groupConfig({ onFailure: 'keep' })]);
    w.current = makeConfig([groupConfig({ onFailure: 'keep' })], 2);
    w.reload();
    const fresh = w.live().find((x) => x.generation === 2)!;
    w.exit(fresh.id, 2, null, ['boom']);
    expect(w.finished.get(1)!.failure).toMatchObject({ workerId: fresh.id, reason: 'exited with code 2 before it was ready', stderrTail: ['boom'] });
  });

  it('while stopping restarts nothing', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.proc(1).behavior.drainMs = 500;
    w.proc(2).behavior.drainMs = 500;
    w.stop();
    w.exit(1, 1);
    expect(w.armed().filter((k) => k.startsWith('backoff:'))).toEqual([]);
    w.advance(500);
    expect(w.exitCode).toBe(0);
    expect(w.effectsOf('spawn')).toHaveLength(2);
  });

  it('an exit reported twice for a worker with a lingering group is ignored', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 1000 })]);
    w.proc(1).behavior.straggler = 'ignoresStop';
    w.stop();
    const worker = w.workers()[0]!;
    expect(worker.leaderExit).toEqual({ code: 0, signal: null, crash: false });
    const effects = w.send({ type: 'worker.exited', workerId: 1, code: 0, signal: null, stderrTail: [] });
    expect(effects).toEqual([]);
    expect(w.workers().map((x) => x.id)).toEqual([1]);
  });
});

describe('a process group that outlives its leader', () => {
  it('after a planned stop: a warning, the lingering status text, and the exit once the group is gone', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 1000 })]);
    w.proc(1).behavior.straggler = 'ignoresStop';
    const from = w.effects.length;
    w.stop();
    expect(logs(w, "worker's leader exited but its process group lives on; waiting for it", from)).toEqual([
      {
        type: 'log',
        level: 'warn',
        msg: "worker's leader exited but its process group lives on; waiting for it",
        fields: { group: 'web', workerId: 1, pid: w.proc(1).pid, code: 0, signal: null },
      },
    ]);
    expect(w.workers()[0]!.statusText).toBe(LINGERING_TEXT);
    expect(w.exitCode).toBeNull();
    w.advance(1000);
    expect(w.exitCode).toBe(0);
    expect(logs(w, 'worker exited', from).map((e) => e.fields.reason)).toEqual(['killed after stopTimeout']);
  });

  it('after a crash: the slot restarts at once while the rest is stopped; its end is logged and forgets the worker', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 1000, restartDelayMs: 100 })]);
    w.proc(1).behavior.straggler = 'ignoresStop';
    const from = w.effects.length;
    w.crash(1);
    const rest = w.workers().find((x) => x.id === 1)!;
    expect(rest).toMatchObject({ phase: 'stopping', statusText: LINGERING_TEXT, leaderExit: { code: 1, signal: null, crash: true } });
    expect(logs(w, 'stopping worker', from).map((e) => e.fields.reason)).toEqual(['its leader exited; stopping the rest of its process group']);
    expect(w.state.groups[0]!.slots[0]!.restarts).toBe(1);
    expect(w.state.groups[0]!.slots[0]!.lastExit).toMatchObject({ code: 1, reason: 'exited with code 1' });
    w.advance(100);
    expect(w.live().map((x) => x.id)).toEqual([2]);
    const at = w.effects.length;
    w.advance(900);
    expect(w.proc(1).signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(logs(w, "the rest of a crashed worker's process group has exited", at)).toEqual([
      { type: 'log', level: 'info', msg: "the rest of a crashed worker's process group has exited", fields: { group: 'web', workerId: 1, pid: w.proc(1).pid, killed: true } },
    ]);
    expect(cleared(w, at)).not.toContain('kill:1');
    expect(w.workers().map((x) => x.id)).toEqual([2]);
    // The crash was handled once: no second restart count, no second lastExit.
    expect(w.state.groups[0]!.slots[0]!.restarts).toBe(1);
    expect(w.armed()).toEqual(['readyTimeout:2']);
    expect(w.violations).toEqual([]);
  });

  it('after a crash, a group that empties on its own clears its kill timer', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 1000 })]);
    w.proc(1).behavior.straggler = 'ignoresStop';
    w.crash(1);
    const at = w.effects.length;
    w.groupGone(1);
    expect(cleared(w, at)).toEqual(['kill:1']);
    expect(w.workers().some((x) => x.id === 1)).toBe(false);
    expect(logs(w, "the rest of a crashed worker's process group has exited", at)[0]!.fields.killed).toBe(false);
    // worker.gone again (or for a worker without a lingering group) changes nothing.
    expect(w.send({ type: 'worker.gone', workerId: 1 })).toEqual([]);
  });
});

describe('crash backoff', () => {
  it('doubles up to maxRestartDelay, shown in the slot until its timer fires', () => {
    const w = runningWorld([groupConfig({ restartDelayMs: 400, maxRestartDelayMs: 700 })]);
    const t0 = w.now;
    w.crash(1);
    const slot = () => w.state.groups[0]!.slots[0]!;
    expect(slot()).toMatchObject({ backoffUntil: t0 + 400, backoffMs: 700 });
    w.advance(399);
    expect(slot().backoffUntil).toBe(t0 + 400);
    w.advance(1);
    expect(slot().backoffUntil).toBeNull();
    expect(w.live()).toHaveLength(1);
  });

  it('a slot beyond the count (left by a failed roll that raised it) is not refilled; a slot another worker still serves is not either', () => {
    const w = runningWorld([groupConfig({ count: 1, onFailure: 'keep' })]);
    w.current = makeConfig([groupConfig({ count: 3, onFailure: 'keep' })], 2);
    w.reload(); // worker 1 (slot 0, old) stays while 2, 3, 4 start in slots 1, 2, 0
    w.ready(2);
    w.ready(4);
    w.crash(3);
    expect(w.finished.get(1)!.state).toBe('failed');
    expect(w.state.groups[0]!.config.count).toBe(1);
    expect(w.live().map((x) => [x.id, x.slot])).toEqual([[1, 0], [2, 1], [4, 0]]);
    w.crash(2); // slot 1 is beyond the count
    w.crash(1); // worker 4 still serves slot 0
    expect(w.armed()).toEqual([]);
    w.advance(60_000);
    expect(w.live().map((x) => x.id)).toEqual([4]);
    expect(w.violations).toEqual([]);
  });
});
