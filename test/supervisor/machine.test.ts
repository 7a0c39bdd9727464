import { describe, it, expect } from 'vitest';
import { buildStatus } from '../../src/supervisor/status.js';
import type { StatusInputs } from '../../src/supervisor/status.js';
import { World, groupConfig, makeConfig, runningWorld, CONFIG_PATH } from './harness.js';
import { timerDue, timerKeys } from '../../src/supervisor/timers.js';

const io = (w: World): StatusInputs => ({
  pid: 4242,
  version: '0.1.0',
  now: w.now,
  rss: (pid) => pid * 10,
  bound: (key) => (key === 'tcp:127.0.0.1:0' ? '127.0.0.1:41234' : null),
});

const status = (w: World) => buildStatus(w.state, io(w));


/** The fields of a report's groups that the roll itself sets (verification and rollback are checked apart). */
function brief(groups: { name: string; state: string; done: number; total: number; generation: number | null }[]) {
  return groups.map(({ name, state, done, total, generation }) => ({ name, state, done, total, generation }));
}

describe('start', () => {
  it('spawns every worker and reports ready once all are ready', () => {
    const w = new World(makeConfig([groupConfig({ name: 'web', count: 2 }), groupConfig({ name: 'api', count: 1 })]));
    const spawns = w.effectsOf('spawn');
    expect(spawns.map((s) => [s.group, s.slot, s.generation])).toEqual([
      ['web', 0, 1],
      ['web', 1, 1],
      ['api', 0, 1],
    ]);
    expect(spawns.map((s) => s.workerId)).toEqual([1, 2, 3]);
    expect(w.state.daemon).toBe('starting');
    w.ready(1);
    w.ready(2);
    expect(w.effectsOf('daemon.ready')).toHaveLength(0);
    const fx = w.ready(3);
    expect(fx.filter((e) => e.type === 'daemon.ready')).toHaveLength(1);
    expect(w.state.daemon).toBe('running');
    expect(w.effectsOf('daemon.state').map((e) => e.state)).toEqual(['running']);
    // No readyTimeout left armed.
    expect(w.armed()).toEqual([]);
  });

  it('a duration readiness becomes ready by timer', () => {
    const w = new World(makeConfig([groupConfig({ ready: { kind: 'delay', ms: 1000 } })]));
    expect(w.armed()).toEqual(['ready:1', 'readyTimeout:1']);
    w.advance(999);
    expect(w.state.daemon).toBe('starting');
    w.advance(1);
    expect(w.state.daemon).toBe('running');
    expect(w.armed()).toEqual([]);
  });

  it('a worker that exits before its first readiness fails the start: exit 71 after every worker has exited', () => {
    const w = new World(makeConfig([groupConfig({ count: 3 })]));
    w.ready(1);
    w.proc(2).behavior.drainMs = 500;
    w.crash(3, ['Error: cannot find module', 'at boot']);
    expect(w.state.daemon).toBe('stopping');
    expect(w.state.startFailure).toMatchObject({ group: 'web', workerId: 3, stderrTail: ['Error: cannot find module', 'at boot'] });
    expect(w.state.startFailure!.reason).toMatch(/exited with code 1 before it was ready/);
    expect(w.proc(1).signals).toEqual(['SIGTERM']);
    expect(w.proc(2).signals).toEqual(['SIGTERM']);
    // Worker 2 still drains: no exit yet, nothing restarted.
    expect(w.exitCode).toBeNull();
    expect(w.effectsOf('spawn')).toHaveLength(3);
    w.advance(500);
    expect(w.exitCode).toBe(71);
    expect(w.state.workers).toEqual([]);
    expect(w.armed()).toEqual([]);
  });

  it('a readyTimeout at start fails the start', () => {
    const w = new World(makeConfig([groupConfig({ readyTimeoutMs: 5000 })]));
    w.advance(5000);
    expect(w.proc(1).signals).toEqual(['SIGTERM']);
    expect(w.exitCode).toBe(71);
    expect(w.state.startFailure!.reason).toMatch(/not ready within 5s/);
  });

  it('a spawn failure at start fails the start', () => {
    const w = new World(makeConfig([groupConfig({ count: 2 })]), { start: false });
    w.behave = (s) => (s.slot === 1 ? { spawnFails: 'EACCES' } : {});
    w.send({ type: 'start' });
    expect(w.state.daemon).toBe('stopping');
    expect(w.state.startFailure!.reason).toMatch(/EACCES/);
    expect(w.exitCode).toBe(71);
  });

  it('a reload requested while starting is queued and runs after the start', () => {
    const w = new World(makeConfig([groupConfig({ count: 1 })]));
    w.reload(null, 1);
    expect(w.accepted(1)).toMatchObject({ state: 'queued', reloadId: 1 });
    expect(w.loads).toEqual([]);
    w.readyAll();
    expect(w.loads).toEqual([1]);
    expect(w.state.daemon).toBe('reloading');
    w.readyAll();
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.state.daemon).toBe('running');
  });

  it('a queued reload is aborted when the start fails', () => {
    const w = new World(makeConfig([groupConfig({ count: 1 })]));
    w.reload(null, 1);
    w.crash(1);
    expect(w.finished.get(1)!.state).toBe('aborted');
    expect(w.exitCode).toBe(71);
  });
});

describe('crash restarts', () => {
  it('restarts after 100ms, 200ms, 400ms... capped at maxRestartDelay, reset after 60 s ready', () => {
    const w = runningWorld([groupConfig({ restartDelayMs: 100, maxRestartDelayMs: 1000 })]);
    const delays: number[] = [];
    let id = w.live()[0]!.id;
    for (let i = 0; i < 6; i++) {
      const t0 = w.now;
      w.crash(id);
      expect(w.live()).toHaveLength(0);
      expect(status(w).groups[0]!.workers).toMatchObject([{ id: null, state: 'backoff', restarts: i + 1 }]);
      const before = w.effectsOf('spawn').length;
      while (w.effectsOf('spawn').length === before) w.advance(10);
      delays.push(w.now - t0);
      id = w.live()[0]!.id;
      w.ready(id);
    }
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    // Ready 60 s: the next crash restarts after the initial delay again.
    w.advance(60_000);
    const t0 = w.now;
    w.crash(id);
    expect(w.armed()).toEqual(['backoff:web:0']);
    expect(timerDue(w.state.timers, 'backoff:web:0')).toBe(t0 + 100);
  });

  it('does not reset the backoff for a worker ready less than 60 s', () => {
    const w = runningWorld([groupConfig()]);
    w.crash(1);
    w.advance(100);
    w.ready(2);
    w.advance(59_999);
    w.crash(2);
    expect(timerDue(w.state.timers, 'backoff:web:0')).toBe(w.now + 200);
  });

  it('a restarted worker that never becomes ready is stopped at readyTimeout and restarted after a backoff', () => {
    const w = runningWorld([groupConfig({ readyTimeoutMs: 1000, stopTimeoutMs: 5000 })]);
    w.crash(1);
    w.advance(100); // worker 2 starts
    w.proc(2).behavior.ignoreStop = true;
    w.advance(1000); // readyTimeout: worker 2 is asked to stop
    expect(w.proc(2).signals).toEqual(['SIGTERM']);
    // No second worker in the slot at once: the slot waits for its backoff.
    expect(w.live()).toHaveLength(0);
    w.advance(199);
    expect(w.live()).toHaveLength(0);
    w.advance(1);
    expect(w.live().map((x) => x.id)).toEqual([3]);
    w.advance(5000 - 200);
    expect(w.proc(2).signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(w.violations).toEqual([]);
  });

  it('a readyTimeout failure carries the stderr tail the runtime attaches to the timer', () => {
    const w = runningWorld([groupConfig({ readyTimeoutMs: 1000 })]);
    w.current = makeConfig([groupConfig({ readyTimeoutMs: 1000, env: { REV: 'b' } })], 2);
    w.reload();
    const fresh = w.live().find((x) => x.generation === 2)!;
    const key = `readyTimeout:${fresh.id}`;
    expect(w.effectsOf('timer.set').find((e) => e.key === key)).toMatchObject({ stderrOf: fresh.id });
    w.send({ type: 'timer', key, stderrTail: ['connecting to db:5432', 'still waiting'] });
    const report = w.finished.get(1)!;
    expect(report.state).toBe('failed');
    expect(report.failure).toMatchObject({ workerId: fresh.id, stderrTail: ['connecting to db:5432', 'still waiting'] });
    expect(report.failure!.reason).toMatch(/not ready within 1s \(readyTimeout\)/);
  });

  it('a spawn error is the reason as it is, with its path and errno', () => {
    const w = runningWorld([groupConfig()]);
    w.send({ type: 'worker.exited', workerId: 1, code: 1, signal: null, stderrTail: [] });
    w.advance(100);
    const next = w.live()[0]!;
    w.send({ type: 'worker.spawnFailed', workerId: next.id, error: 'cwd /srv/app/releases/3 does not exist (ENOENT)' });
    expect(w.state.groups[0]!.slots[0]!.lastExit!.reason).toBe('could not be started: cwd /srv/app/releases/3 does not exist (ENOENT)');
    expect(w.effectsOf('log').find((e) => e.msg === 'worker could not be started')?.fields).toMatchObject({ error: 'could not be started: cwd /srv/app/releases/3 does not exist (ENOENT)' });
  });

  it('restart reuses the crashed worker\'s own generation spec', () => {
    const g1 = groupConfig({ count: 2, env: { REV: 'a' }, onFailure: 'keep' });
    const w = runningWorld([g1]);
    // Reload to rev b; worker in slot 1 of generation 2 fails: slot 0 is new, slot 1 stays old.
    w.current = makeConfig([groupConfig({ count: 2, env: { REV: 'b' }, onFailure: 'keep' })], 2);
    w.reload();
    w.readyAll(); // new slot 0 ready, old slot 0 retired, new slot 1 starts
    const new1 = w.live().find((x) => x.slot === 1 && x.generation === 2)!;
    w.crash(new1.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    const old1 = w.live().find((x) => x.slot === 1)!;
    expect(old1.generation).toBe(1);
    // The old worker crashes later: restarted with generation 1 (REV a), not the newest.
    w.crash(old1.id);
    w.advance(10_000);
    const spawn = w.effectsOf('spawn').at(-1)!;
    expect(spawn).toMatchObject({ slot: 1, generation: 1 });
    expect(spawn.spec.env).toEqual({ REV: 'a' });
    expect(spawn.spec.cwdReal).toBe('/srv/app/releases/1');
    // Slot 0 runs generation 2 and restarts from it.
    const new0 = w.live().find((x) => x.slot === 0)!;
    w.crash(new0.id);
    w.advance(10_000);
    expect(w.effectsOf('spawn').at(-1)).toMatchObject({ slot: 0, generation: 2, spec: { env: { REV: 'b' } } });
  });

  it('a worker that ignores the stop signal is SIGKILLed after stopTimeout', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 2000, stopSignal: 'SIGINT' })]);
    w.proc(1).behavior.ignoreStop = true;
    w.stop();
    expect(w.proc(1).signals).toEqual(['SIGINT']);
    expect(w.armed()).toEqual(['kill:1']);
    w.advance(1999);
    expect(w.proc(1).signals).toEqual(['SIGINT']);
    w.advance(1);
    expect(w.proc(1).signals).toEqual(['SIGINT', 'SIGKILL']);
    expect(w.exitCode).toBe(0);
    expect(w.state.groups[0]!.slots[0]!.lastExit).toMatchObject({ signal: 'SIGKILL', reason: 'killed after stopTimeout' });
  });
});

describe('reload', () => {
  it('rolls every worker of every group, groups one after the other in config order', () => {
    const w = runningWorld([groupConfig({ name: 'web', count: 2 }), groupConfig({ name: 'api', count: 2 })]);
    const oldPids = w.pids();
    for (const p of w.procs.values()) p.behavior.drainMs = 50;
    w.current = makeConfig([groupConfig({ name: 'web', count: 2 }), groupConfig({ name: 'api', count: 2 })], 2);
    const t0 = w.now;
    w.reload(null, 7);
    expect(w.accepted(7)).toMatchObject({ reloadId: 1, state: 'running' });
    expect(w.loads).toEqual([1]);
    expect(w.state.daemon).toBe('reloading');
    const newSpawns = () => w.effectsOf('spawn').slice(4).map((s) => `${s.group}${s.slot}`);
    // web first, one worker at a time (surge 1); api not touched while web rolls.
    expect(newSpawns()).toEqual(['web0']);
    w.advance(10);
    w.readyAll();
    expect(newSpawns()).toEqual(['web0', 'web1']);
    expect(w.workers('web').filter((x) => x.phase === 'stopping').map((x) => x.slot)).toEqual([0]);
    w.advance(10);
    w.readyAll();
    // web's last new worker is ready and its last old one retired: api's turn.
    expect(newSpawns()).toEqual(['web0', 'web1', 'api0']);
    expect(w.live('api').filter((x) => x.generation === 1)).toHaveLength(2);
    w.advance(10);
    w.readyAll();
    w.advance(10);
    w.readyAll();
    expect(newSpawns()).toEqual(['web0', 'web1', 'api0', 'api1']);
    const readyAt = w.now;
    expect(w.finished.has(1)).toBe(false); // api's last old worker still drains
    w.advance(50);
    const rep = w.finished.get(1)!;
    expect(rep).toMatchObject({ id: 1, state: 'succeeded', done: 4, total: 4, error: null, failure: null, trigger: 'rpc' });
    expect(brief(rep.groups)).toEqual([
      { name: 'web', state: 'rolled', done: 2, total: 2, generation: 2 },
      { name: 'api', state: 'rolled', done: 2, total: 2, generation: 2 },
    ]);
    expect(rep.startedAt).toBe(new Date(t0).toISOString());
    expect(rep.readyAt).toBe(new Date(readyAt).toISOString());
    expect(rep.finishedAt).toBe(new Date(readyAt + 50).toISOString());
    expect(rep.readyMs).toBe(40);
    expect(rep.durationMs).toBe(90);
    // Every pid replaced, generations bumped.
    const newPids = w.pids();
    expect(newPids).toHaveLength(4);
    expect(newPids.filter((p) => oldPids.includes(p))).toEqual([]);
    expect(w.state.workers.every((x) => x.generation === 2 && x.phase === 'ready')).toBe(true);
    expect(w.state.groups.map((g) => g.generation)).toEqual([2, 2]);
    expect(w.state.daemon).toBe('running');
    expect(w.effectsOf('daemon.state').map((e) => e.state)).toEqual(['running', 'reloading', 'running']);
    expect(w.armed()).toEqual([]);
    const steps = w.progress.filter((p) => p.event.step.startsWith('group.')).map((p) => `${p.event.step} ${p.event.group}`);
    expect(steps).toEqual(['group.started web', 'group.rolled web', 'group.started api', 'group.rolled api']);
    expect(w.progress.filter((p) => p.event.step === 'worker.ready').map((p) => [p.event.group, p.event.done, p.event.total])).toEqual([
      ['web', 1, 2],
      ['web', 2, 2],
      ['api', 1, 2],
      ['api', 2, 2],
    ]);
    expect(w.progress.filter((p) => p.event.step === 'worker.stopped')).toHaveLength(4);
  });

  it('a reload rolls even when the config did not change (new code on disk)', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    w.autoReady = true;
    w.reload();
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', done: 1, total: 1 });
    expect(w.live().map((x) => x.id)).toEqual([2]);
  });

  it('the status document shows a running reload', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    for (const p of w.procs.values()) p.behavior.drainMs = 1000;
    w.reload();
    w.readyAll();
    const st = status(w);
    expect(st.daemon.state).toBe('reloading');
    expect(st.reload).toMatchObject({ id: 1, state: 'running', done: 1, total: 2, finishedAt: null });
    expect(st.groups[0]!.generation).toBe(2);
    expect(st.groups[0]!.workers.map((x) => [x.slot, x.generation, x.state])).toEqual([
      [0, 1, 'stopping'],
      [0, 2, 'ready'],
      [1, 1, 'ready'],
      [1, 2, 'starting'],
    ]);
  });

  describe('failure of a new worker', () => {
    /** onFailure: keep — ready new workers stay (mixed generations); rollback has its own tests. */
    function failingSetup() {
      const w = runningWorld([groupConfig({ name: 'web', count: 3, onFailure: 'keep' }), groupConfig({ name: 'api', count: 1 })]);
      w.current = makeConfig([groupConfig({ name: 'web', count: 3, onFailure: 'keep' }), groupConfig({ name: 'api', count: 1 })], 2);
      w.reload(null, 9);
      return w;
    }

    it('a new worker exiting before ready fails the reload; old workers keep serving', () => {
      const w = failingSetup();
      // slot 0 rolls fine
      w.readyAll();
      const oldIds = w.live('web').filter((x) => x.generation === 1).map((x) => x.id);
      expect(oldIds).toHaveLength(2);
      const bad = w.live('web').find((x) => x.generation === 2 && x.phase === 'starting')!;
      const signalsBefore = w.effectsOf('signal').length;
      w.exit(bad.id, 3, null, ['line1', 'panic: no config']);
      const rep = w.finished.get(1)!;
      expect(rep.state).toBe('failed');
      expect(rep.failure).toMatchObject({ group: 'web', workerId: bad.id, slot: 1, stderrTail: ['line1', 'panic: no config'] });
      expect(rep.failure!.reason).toMatch(/exited with code 3 before it was ready/);
      expect(rep.error).toMatch(/web: worker \d+ exited with code 3/);
      expect(rep.errorCode).toBe(-32001);
      expect(brief(rep.groups)).toEqual([
        { name: 'web', state: 'failed', done: 1, total: 3, generation: 2 },
        { name: 'api', state: 'pending', done: 0, total: 1, generation: 2 },
      ]);
      // No further old worker stopped.
      expect(w.effectsOf('signal').length).toBe(signalsBefore);
      expect(w.live('web').filter((x) => x.generation === 1).map((x) => x.id)).toEqual(oldIds);
      // The failed worker is gone, the ready new worker stays: mixed generations.
      expect(w.state.workers.find((x) => x.id === bad.id)).toBeUndefined();
      expect(w.live('web').map((x) => x.generation).sort()).toEqual([1, 1, 2]);
      expect(w.live('api').every((x) => x.generation === 1)).toBe(true);
      expect(w.state.daemon).toBe('running');
      // Nothing restarts in the slot the failed worker left: its old worker still serves it.
      expect(status(w).groups[0]!.workers.map((x) => x.state).filter((s) => s === 'backoff')).toEqual([]);
      expect(w.armed()).toEqual([]);
      // That old worker crashing later is an ordinary crash of its slot.
      const old1 = w.live('web').find((x) => x.slot === 1)!;
      w.crash(old1.id);
      w.advance(100);
      expect(w.live('web').find((x) => x.slot === 1)).toMatchObject({ generation: 1, phase: 'starting' });
      w.advance(60_000);
      expect(w.violations).toEqual([]);
    });

    it('readyTimeout on a new worker fails the reload the same way', () => {
      const w = runningWorld([groupConfig({ count: 2, readyTimeoutMs: 3000 })]);
      w.reload();
      const n0 = w.live().find((x) => x.generation === 2)!;
      w.advance(3000);
      expect(w.proc(n0.id).signals).toEqual(['SIGTERM']);
      const rep = w.finished.get(1)!;
      expect(rep.state).toBe('failed');
      expect(rep.failure!.reason).toMatch(/not ready within 3s \(readyTimeout\)/);
      expect(w.live().map((x) => [x.id, x.generation])).toEqual([
        [1, 1],
        [2, 1],
      ]);
      // Settings restored (nothing of generation 2 took over).
      expect(w.state.groups[0]!.config.count).toBe(2);
      expect(status(w).groups[0]!.workers.map((x) => x.state)).toEqual(['ready', 'ready']);
      w.advance(60_000);
      expect(w.live().map((x) => x.id)).toEqual([1, 2]);
      expect(w.violations).toEqual([]);
    });

    it('Workerman order: the retired old worker is replaced from the old generation after a failure', () => {
      const w = runningWorld([groupConfig({ count: 2, rolling: { surge: 0, unavailable: 1 } })]);
      w.reload();
      expect(w.proc(1).signals).toEqual(['SIGTERM']);
      const n0 = w.live().find((x) => x.generation === 2)!;
      w.crash(n0.id);
      expect(w.finished.get(1)!.state).toBe('failed');
      w.advance(100);
      expect(w.live().map((x) => [x.slot, x.generation]).sort()).toEqual([
        [0, 1],
        [1, 1],
      ]);
    });

    it('the next reload rolls a group left with mixed generations (two workers in a slot)', () => {
      // Found by the property tests: surge 1 / unavailable 0 deadlocked here.
      const w = runningWorld([groupConfig({ count: 2, readyTimeoutMs: 1000, onFailure: 'keep' })]);
      w.crash(1); // slot 0 empty, in backoff
      w.reload();
      const news = w.live().filter((x) => x.generation === 2);
      expect(news.map((x) => x.slot)).toEqual([0, 1]);
      w.ready(news[1]!.id); // slot 1: old and new ready; the old cannot go (ready would be 1 < 2)
      w.advance(1000); // slot 0's new worker misses readyTimeout
      expect(w.finished.get(1)!.state).toBe('failed');
      w.advance(1000); // slot 0 restarts from generation 1
      w.readyAll();
      expect(w.live().map((x) => [x.slot, x.generation]).sort()).toEqual([
        [0, 1],
        [1, 1],
        [1, 2],
      ]);
      w.autoReady = true;
      w.reload();
      expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', done: 2, total: 2 });
      expect(w.live().map((x) => [x.slot, x.generation]).sort()).toEqual([
        [0, 3],
        [1, 3],
      ]);
    });

    it('a failed reload that raised the count starts no worker of the failed generation afterwards', () => {
      // Found by the property tests: the new count stayed, and reconcile refilled the added
      // slots with the failed generation right after removing its workers.
      const w = runningWorld([groupConfig({ count: 1, readyTimeoutMs: 1000, onFailure: 'keep' })]);
      w.current = makeConfig([groupConfig({ count: 3, readyTimeoutMs: 1000, onFailure: 'keep' })], 2);
      w.reload();
      expect(w.live().map((x) => [x.slot, x.generation])).toEqual([
        [0, 1],
        [1, 2],
        [2, 2],
        [0, 2],
      ]);
      const [, n1, n2] = w.live();
      w.ready(n1!.id);
      w.advance(1000); // slot 2's worker misses readyTimeout
      expect(w.finished.get(1)).toMatchObject({ state: 'failed', done: 1, total: 3 });
      const spawned = w.effectsOf('spawn').length;
      w.advance(60_000);
      expect(w.effectsOf('spawn')).toHaveLength(spawned);
      expect(w.state.workers.find((x) => x.id === n2!.id)).toBeUndefined();
      // The old settings stay in force; the ready new worker stays too (beyond the count).
      expect(w.state.groups[0]!.config.count).toBe(1);
      expect(w.live().map((x) => [x.id, x.slot, x.generation, x.phase])).toEqual([
        [1, 0, 1, 'ready'],
        [n1!.id, 1, 2, 'ready'],
      ]);
      expect(status(w).groups[0]!).toMatchObject({ desired: 1, generation: 2 });
      expect(w.armed()).toEqual([]);
      // The next reload applies the count and rolls everything.
      w.autoReady = true;
      w.reload();
      expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', done: 3, total: 3 });
      expect(w.live().map((x) => [x.slot, x.generation]).sort()).toEqual([
        [0, 3],
        [1, 3],
        [2, 3],
      ]);
    });

    it('a new worker crashing after ready while its group still rolls fails the reload', () => {
      const w = failingSetup();
      w.readyAll(); // new slot 0 ready; new slot 1 starting
      const n0 = w.live('web').find((x) => x.generation === 2 && x.phase === 'ready')!;
      w.crash(n0.id, ['oops']);
      const rep = w.finished.get(1)!;
      expect(rep.state).toBe('failed');
      expect(rep.failure).toMatchObject({ workerId: n0.id, stderrTail: ['oops'] });
      expect(rep.failure!.reason).toMatch(/while the reload was still rolling/);
      // The starting new worker is removed, old ones untouched.
      expect(w.live('web').filter((x) => x.generation === 2)).toEqual([]);
      expect(w.live('web').filter((x) => x.generation === 1)).toHaveLength(2);
      // Slot 0's old worker was already replaced: the slot restarts from its own (new)
      // generation after the backoff, like any crashed worker.
      w.advance(100);
      expect(w.live('web').find((x) => x.slot === 0)).toMatchObject({ generation: 2, phase: 'starting' });
    });

    it('a new worker crashing after its group rolled does not fail the reload', () => {
      const w = failingSetup();
      w.behave = () => ({ drainMs: 10 });
      w.autoReady = true;
      w.readyAll();
      // web rolled and drained? web's old workers still draining (drainMs applies to new procs only).
      const n = w.live('web').find((x) => x.generation === 2)!;
      expect(w.state.groups[0]!.rollTarget).toBeNull();
      w.crash(n.id);
      w.advance(1000);
      expect(w.finished.get(1)!.state).toBe('succeeded');
    });
  });

  describe('non-reloadable groups', () => {
    it('are skipped and untouched; a changed spec shows as pending', () => {
      const gw = groupConfig({ name: 'gw', reloadable: false });
      const w = runningWorld([groupConfig({ name: 'web' }), gw]);
      w.autoReady = true;
      w.current = makeConfig([groupConfig({ name: 'web' }), { ...gw, env: { X: '1' } }], 2);
      const gwPids = w.pids('gw');
      w.reload();
      const rep = w.finished.get(1)!;
      expect(rep.state).toBe('succeeded');
      expect(rep.groups.find((g) => g.name === 'gw')).toMatchObject({ state: 'skipped', done: 0, total: 0 });
      expect(w.pids('gw')).toEqual(gwPids);
      expect(w.state.groups[1]!.generation).toBe(1);
      expect(status(w).groups.find((g) => g.name === 'gw')!.pending).toBe(true);
      expect(w.progress.some((p) => p.event.step === 'group.skipped' && p.event.group === 'gw')).toBe(true);
    });

    it('are not pending when their spec did not change', () => {
      const w = runningWorld([groupConfig({ name: 'gw', reloadable: false })]);
      w.reload();
      expect(w.finished.get(1)!.state).toBe('succeeded');
      expect(status(w).groups[0]!.pending).toBe(false);
    });

    it('restart.request rolls a non-reloadable group and applies its pending spec', () => {
      const gw = groupConfig({ name: 'gw', reloadable: false, count: 2 });
      const w = runningWorld([groupConfig({ name: 'web' }), gw]);
      w.autoReady = true;
      w.current = makeConfig([groupConfig({ name: 'web' }), { ...gw, env: { X: '1' } }], 2);
      w.reload();
      expect(status(w).groups[1]!.pending).toBe(true);
      const webPids = w.pids('web');
      w.restart('gw', 5);
      expect(w.accepted(5)).toMatchObject({ reloadId: 2, state: 'running' });
      const rep = w.finished.get(2)!;
      expect(rep).toMatchObject({ state: 'succeeded', trigger: 'restart', done: 2, total: 2 });
      expect(rep.groups.map((g) => g.name)).toEqual(['gw']);
      expect(w.live('gw').every((x) => x.generation === 2)).toBe(true);
      expect(w.effectsOf('spawn').at(-1)!.spec.env).toEqual({ X: '1' });
      expect(status(w).groups[1]!.pending).toBe(false);
      expect(w.pids('web')).toEqual(webPids);
    });

    it('restart of an unknown group is refused', () => {
      const w = runningWorld([groupConfig()]);
      w.restart('nope', 3);
      expect(w.replyTo(3)).toMatchObject({ type: 'reply.refused', kind: 'unknown-group' });
    });
  });

  describe('queueing', () => {
    it('requests during a reload join ONE follow-up, which re-reads the config after the first ends', () => {
      const w = runningWorld([groupConfig({ name: 'web', count: 1 }), groupConfig({ name: 'api', count: 1 })]);
      w.reload(null, 1);
      w.reload(['web'], 2);
      w.reload(['api'], 3);
      w.restart('web', 4);
      const ids = [2, 3, 4].map((r) => w.accepted(r)!);
      expect(ids.map((a) => [a.reloadId, a.state])).toEqual([
        [2, 'queued'],
        [2, 'queued'],
        [2, 'queued'],
      ]);
      expect(w.loads).toEqual([1]);
      expect(w.state.queued).toMatchObject({ id: 2, groups: ['web', 'api'], force: ['web'] });
      expect(status(w).reload.queued).toBe(2);
      w.autoReady = true;
      w.readyAll();
      expect(w.finished.get(1)!).toMatchObject({ state: 'succeeded', queued: 2 });
      expect(w.loads).toEqual([1, 2]);
      expect(w.finished.get(2)!.state).toBe('succeeded');
      expect(w.finishedOrder).toEqual([1, 2]);
      expect(w.state.groups.map((g) => g.generation)).toEqual([3, 3]);
      // A later request starts a new reload with a new id.
      w.reload(null, 5);
      expect(w.accepted(5)).toMatchObject({ reloadId: 3, state: 'running' });
    });

    it('a reload-all joining a partial queued reload widens it to every group', () => {
      const w = runningWorld([groupConfig({ name: 'web' }), groupConfig({ name: 'api' })]);
      w.reload(['web']);
      w.reload(['web']);
      w.reload(null);
      expect(w.state.queued!.groups).toBeNull();
    });

    it('the follow-up starts after a failed reload too', () => {
      const w = runningWorld([groupConfig()]);
      w.reload(null, 1);
      w.reload(null, 2);
      w.crash(w.live().find((x) => x.generation === 2)!.id);
      expect(w.finished.get(1)!.state).toBe('failed');
      expect(w.loads).toEqual([1, 2]);
      w.readyAll();
      expect(w.finished.get(2)!.state).toBe('succeeded');
    });

    it('the follow-up waits until the old workers of the first have exited', () => {
      const w = runningWorld([groupConfig()]);
      w.proc(1).behavior.drainMs = 1000;
      w.reload(null, 1);
      w.reload(null, 2);
      w.readyAll();
      expect(w.finished.has(1)).toBe(false);
      expect(w.loads).toEqual([1]);
      w.advance(1000);
      expect(w.finished.get(1)!.state).toBe('succeeded');
      expect(w.loads).toEqual([1, 2]);
    });
  });

  it('is refused while stopping', () => {
    const w = runningWorld([groupConfig()]);
    w.proc(1).behavior.drainMs = 100;
    w.stop();
    w.reload(null, 8);
    w.restart('web', 9);
    expect(w.replyTo(8)).toEqual({ type: 'reply.stopping', requestId: 8 });
    expect(w.replyTo(9)).toEqual({ type: 'reply.stopping', requestId: 9 });
  });

  it('is refused on Windows while status and stop still work', () => {
    const w = runningWorld([groupConfig({ count: 2 })], { platform: 'win32' });
    w.reload(null, 1);
    w.restart('web', 2);
    expect(w.replyTo(1)).toMatchObject({ type: 'reply.refused', kind: 'windows' });
    expect((w.replyTo(1) as { message: string }).message).toMatch(/Windows/);
    expect(w.replyTo(2)).toMatchObject({ type: 'reply.refused', kind: 'windows' });
    expect(w.loads).toEqual([]);
    expect(w.state.daemon).toBe('running');
    expect(status(w).daemon.platform).toBe('win32');
    w.stop(false, 3);
    expect(w.replyTo(3)).toEqual({ type: 'reply.ok', requestId: 3 });
    expect(w.exitCode).toBe(0);
  });

  it('an unknown group is refused and nothing starts', () => {
    const w = runningWorld([groupConfig({ name: 'web' })]);
    w.reload(['web', 'nope'], 1);
    expect(w.replyTo(1)).toMatchObject({ type: 'reply.refused', kind: 'unknown-group' });
    expect((w.replyTo(1) as { message: string }).message).toMatch(/"nope"/);
    expect(w.loads).toEqual([]);
    expect(w.state.reload).toBeNull();
  });

  it('a config that fails to load fails the reload; nothing changes', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    const before = structuredClone(w.state.groups);
    w.loader = () => ({ fail: 'groups.web.count: must be >= 1', issues: [{ path: 'groups.web.count', message: 'got 0, must be >= 1' }] });
    w.reload(null, 1);
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('failed');
    expect(rep.errorCode).toBe(-32004);
    expect(rep.error).toMatch(/config refused, nothing changed/);
    expect(rep.error).toMatch(/groups.web.count: got 0/);
    expect(w.state.groups).toEqual(before);
    expect(w.effectsOf('spawn')).toHaveLength(2);
    expect(w.state.daemon).toBe('running');
  });

  it('a stale config answer is ignored', () => {
    const w = runningWorld([groupConfig()]);
    w.loader = () => 'manual';
    w.reload(null, 1);
    w.answerLoad(99, makeConfig([groupConfig({ count: 3 })]));
    expect(w.state.reload!.phase).toBe('loading');
  });

  it('applies count changes: up then down', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.autoReady = true;
    w.current = makeConfig([groupConfig({ count: 4 })], 2);
    w.reload();
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', done: 4, total: 4 });
    expect(w.live().map((x) => [x.slot, x.generation]).sort()).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
      [3, 2],
    ]);
    w.current = makeConfig([groupConfig({ count: 1 })], 3);
    w.reload();
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', done: 1, total: 1 });
    expect(w.live().map((x) => [x.slot, x.generation])).toEqual([[0, 3]]);
    expect(w.state.groups[0]!.slots).toHaveLength(1);
    expect(status(w).groups[0]!.desired).toBe(1);
  });

  it('adds and removes groups', () => {
    const w = runningWorld([groupConfig({ name: 'web' }), groupConfig({ name: 'old', count: 2 })]);
    w.autoReady = true;
    w.proc(2).behavior.drainMs = 100;
    w.proc(3).behavior.drainMs = 100;
    w.current = makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'new', count: 2 })], 2);
    w.reload();
    expect(w.state.groups.map((g) => g.name)).toEqual(['web', 'new', 'old']);
    expect(w.live('old')).toEqual([]);
    expect(w.live('new').map((x) => x.generation)).toEqual([1, 1]);
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('succeeded');
    expect(brief(rep.groups)).toEqual([
      { name: 'web', state: 'rolled', done: 1, total: 1, generation: 2 },
      { name: 'new', state: 'rolled', done: 2, total: 2, generation: 1 },
    ]);
    w.advance(100);
    expect(w.state.groups.map((g) => g.name)).toEqual(['web', 'new']);
    expect(status(w).groups.map((g) => g.name)).toEqual(['web', 'new']);
  });

  it('a group removed from the config keeps serving when the reload fails; the next successful one drains it', () => {
    const w = runningWorld([groupConfig({ name: 'web' }), groupConfig({ name: 'old' })]);
    const oldPid = w.live('old')[0]!.pid;
    w.current = makeConfig([groupConfig({ name: 'web' })], 2);
    w.reload();
    w.crash(w.live('web').find((x) => x.generation === 2)!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    // A failed reload touches no further old worker: the removed group is still there.
    expect(w.live('old').map((x) => x.pid)).toEqual([oldPid]);
    expect(w.state.groups.map((g) => g.name)).toEqual(['web', 'old']);
    w.autoReady = true;
    w.reload();
    expect(w.finished.get(2)!.state).toBe('succeeded');
    expect(w.live('old')).toEqual([]);
  });

  it('a partial reload neither adds nor removes groups', () => {
    const w = runningWorld([groupConfig({ name: 'web' }), groupConfig({ name: 'old' })]);
    w.autoReady = true;
    w.current = makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'new' })], 2);
    w.reload(['web']);
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.state.groups.map((g) => g.name)).toEqual(['web', 'old']);
    expect(w.live('old')).toHaveLength(1);
  });

  it('a group that failed to roll is rolled again by the next reload; a removed group may come back', () => {
    const w = runningWorld([groupConfig({ name: 'web' }), groupConfig({ name: 'api' })]);
    w.proc(2).behavior.drainMs = 500;
    w.autoReady = true;
    // api removed: draining for 500 ms.
    w.current = makeConfig([groupConfig({ name: 'web' })], 2);
    w.reload();
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.state.groups.map((g) => g.name)).toEqual(['web', 'api']);
    // api comes back while its old worker still drains.
    w.current = makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'api' })], 3);
    w.reload();
    expect(w.finished.get(2)!.state).toBe('succeeded');
    expect(w.live('api')).toHaveLength(1);
    w.advance(500);
    expect(w.state.groups.map((g) => g.name)).toEqual(['web', 'api']);
    expect(w.live('api')).toHaveLength(1);
    expect(w.effectsOf('spawn').length).toBeLessThan(10);
  });

  it('a group added by a reload that fails before its turn is not left behind empty', () => {
    const w = runningWorld([groupConfig({ name: 'web' })]);
    w.current = makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'api', reloadable: false })], 2);
    w.reload();
    w.crash(w.live('web').find((x) => x.generation === 2)!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    expect(w.state.groups.map((g) => g.name)).toEqual(['web']);
    // The next partial reload must not trip over it.
    w.autoReady = true;
    w.reload(['web']);
    expect(w.finished.get(2)!.state).toBe('succeeded');
  });
});

describe('stop', () => {
  it('stops every group in parallel and exits 0', () => {
    const w = runningWorld([groupConfig({ name: 'web', count: 2 }), groupConfig({ name: 'api' })]);
    w.stop(false, 1);
    expect(w.replyTo(1)).toEqual({ type: 'reply.ok', requestId: 1 });
    expect(w.effectsOf('daemon.state').at(-1)!.state).toBe('stopping');
    expect(w.exitCode).toBe(0);
    expect(w.state.workers).toEqual([]);
    expect(w.armed()).toEqual([]);
  });

  it('during a reload: the reload and the queued one are aborted, every worker stops, exit 0, no timers left', () => {
    const w = runningWorld([groupConfig({ count: 2 }), groupConfig({ name: 'api', restartDelayMs: 5000 })]);
    w.crash(w.live('api')[0]!.id); // api waits in backoff
    w.reload(null, 1);
    w.reload(null, 2);
    w.readyAll();
    for (const p of w.procs.values()) p.behavior.drainMs = 300;
    expect(w.state.workers.length).toBeGreaterThan(2);
    w.stop(false, 3);
    expect(w.finished.get(1)).toMatchObject({ state: 'aborted', errorCode: -32006 });
    // The queued one never started; its callers get the same stable error code.
    expect(w.finished.get(2)).toMatchObject({ id: 2, state: 'aborted', errorCode: -32006, error: 'smoothd is stopping', startedAt: null });
    expect(w.finished.get(2)!.finishedAt).not.toBeNull();
    expect(w.effectsOf('spawn').filter((s) => s.group === 'api')).toHaveLength(1);
    expect(w.exitCode).toBeNull();
    w.advance(300);
    expect(w.exitCode).toBe(0);
    expect(w.state.workers).toEqual([]);
    expect(w.armed()).toEqual([]);
    expect(timerKeys(w.state.timers)).toEqual([]);
    expect(w.state.exited).toBe(true);
  });

  it('a second stop with force SIGKILLs the workers', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    for (const p of w.procs.values()) p.behavior.ignoreStop = true;
    w.stop(false, 1);
    expect(w.exitCode).toBeNull();
    w.stop(true, 2);
    expect(w.replyTo(2)).toEqual({ type: 'reply.ok', requestId: 2 });
    expect([...w.procs.values()].map((p) => p.signals)).toEqual([
      ['SIGTERM', 'SIGKILL'],
      ['SIGTERM', 'SIGKILL'],
    ]);
    expect(w.exitCode).toBe(0);
    expect(w.armed()).toEqual([]);
  });

  it('stop while starting exits 0 after the workers exit', () => {
    const w = new World(makeConfig([groupConfig({ count: 2 })]));
    w.stop();
    expect(w.exitCode).toBe(0);
  });

  it('a stop with no live worker (all in backoff) exits at once', () => {
    const w = runningWorld([groupConfig()]);
    w.crash(1);
    w.stop();
    expect(w.exitCode).toBe(0);
    expect(w.armed()).toEqual([]);
  });
});

describe('buildStatus', () => {
  it('has the documented shape before any reload', () => {
    const listen = [
      {
        address: { kind: 'tcp' as const, host: '127.0.0.1', port: 0, family: 4 as const, key: 'tcp:127.0.0.1:0' },
        name: 'http',
        backlog: 511,
        mode: null,
        text: '127.0.0.1:0',
      },
    ];
    const w = runningWorld([groupConfig({ name: 'web', count: 2, listen }), groupConfig({ name: 'gw', reloadable: false })]);
    w.advance(1234);
    const st = status(w);
    expect(st.version).toBe(1);
    expect(st.daemon).toEqual({
      pid: 4242,
      version: '0.1.0',
      state: 'running',
      startedAt: new Date(w.state.startedAt).toISOString(),
      uptimeMs: 1234,
      platform: 'linux',
      configPath: CONFIG_PATH,
    });
    expect(st.reload).toMatchObject({ id: 0, state: 'idle', done: 0, total: 0, startedAt: null, finishedAt: null, error: null, queued: null, groups: [] });
    expect(st.groups).toHaveLength(2);
    const web = st.groups[0]!;
    expect(web).toMatchObject({ name: 'web', reloadable: true, generation: 1, desired: 2, pending: false });
    expect(web.listen).toEqual([{ name: 'http', address: '127.0.0.1:0', bound: '127.0.0.1:41234' }]);
    expect(web.workers).toHaveLength(2);
    const wk = web.workers[0]!;
    expect(Object.keys(wk).sort()).toEqual(
      ['id', 'slot', 'pid', 'generation', 'state', 'startedAt', 'readyAt', 'restarts', 'rssBytes', 'statusText', 'lastExit'].sort(),
    );
    expect(wk).toMatchObject({ id: 1, slot: 0, generation: 1, state: 'ready', restarts: 0, lastExit: null, statusText: null });
    expect(wk.rssBytes).toBe(wk.pid! * 10);
    expect(st.groups[1]).toMatchObject({ name: 'gw', reloadable: false });
    JSON.stringify(st); // plain data
  });

  it('shows backoff pseudo-workers, restarts, lastExit and status text', () => {
    const w = runningWorld([groupConfig({ count: 2, restartDelayMs: 1000 })]);
    w.send({ type: 'worker.status', workerId: 2, text: 'serving 12 req/s' });
    w.exit(1, null, 'SIGSEGV');
    w.advance(250);
    let st = status(w);
    const ws = st.groups[0]!.workers;
    expect(ws).toHaveLength(2);
    const b = ws.find((x) => x.state === 'backoff')!;
    expect(b).toMatchObject({ id: null, pid: null, slot: 0, generation: 1, restarts: 1, statusText: 'restarting in 750 ms' });
    expect(b.lastExit).toMatchObject({ code: null, signal: 'SIGSEGV' });
    expect(b.lastExit!.reason).toMatch(/SIGSEGV/);
    expect(ws.find((x) => x.slot === 1)!.statusText).toBe('serving 12 req/s');
    w.advance(750);
    st = status(w);
    expect(st.groups[0]!.workers.find((x) => x.slot === 0)).toMatchObject({ id: 3, state: 'starting', restarts: 1 });
    expect(st.groups[0]!.workers.find((x) => x.slot === 0)!.lastExit!.signal).toBe('SIGSEGV');
  });

  it('keeps the last report after a reload', () => {
    const w = runningWorld([groupConfig()]);
    w.autoReady = true;
    w.reload();
    const st = status(w);
    expect(st.reload).toMatchObject({ id: 1, state: 'succeeded', done: 1, total: 1 });
    expect(st.daemon.state).toBe('running');
  });
});
