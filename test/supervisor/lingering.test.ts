/**
 * A worker's leader exits while other members of its process group live on
 * (a shell wrapper's child, DESIGN §13): the machine keeps the worker stopping
 * until `worker.gone`, SIGKILLs the group at stopTimeout, and handles a crash's
 * slot at once while the leftover members are stopped.
 */
import { describe, expect, it } from 'vitest';
import { buildStatus } from '../../src/supervisor/status.js';
import { LINGERING_TEXT } from '../../src/supervisor/machine.js';
import { World, groupConfig, makeConfig, runningWorld } from './harness.js';

const status = (w: World) => buildStatus(w.state, { pid: 1, version: 't', now: w.now, rss: () => null, bound: () => null });

describe('a process group that outlives its leader', () => {
  it('after a reload: the retired worker stays stopping, is SIGKILLed at stopTimeout and the reload waits for its group', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 1000 })]);
    w.proc(1).behavior.straggler = 'ignoresStop';
    w.reload();
    w.readyAll();
    // The new worker is ready, the old leader exited on SIGTERM, its child lingers.
    expect(w.proc(1).alive).toBe(false);
    expect(w.proc(1).lingering).toBe(true);
    const old = w.workers().find((x) => x.id === 1)!;
    expect(old).toMatchObject({ phase: 'stopping', leaderExit: { code: 0, signal: null, crash: false } });
    expect(w.state.reload?.phase).toBe('draining');
    expect(w.finished.size).toBe(0);
    expect(status(w).groups[0]!.workers.map((x) => [x.id, x.state, x.statusText])).toEqual([
      [1, 'stopping', LINGERING_TEXT],
      [2, 'ready', null],
    ]);
    w.advance(999);
    expect(w.proc(1).signals).toEqual(['SIGTERM']);
    w.advance(1);
    // SIGKILL to the group even though the leader is gone; worker.gone ends the reload.
    expect(w.proc(1).signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(w.workers().map((x) => x.id)).toEqual([2]);
    const report = w.finished.get(1)!;
    expect(report.state).toBe('succeeded');
    expect(report.durationMs).toBe(1000);
    expect(w.state.groups[0]!.slots[0]!.lastExit).toMatchObject({ code: 0, reason: 'killed after stopTimeout' });
    expect(w.progress.map((p) => p.event.step)).toContain('worker.stopped');
    expect(w.armed()).toEqual([]);
    expect(w.violations).toEqual([]);
  });

  it('a group that empties before stopTimeout ends the stop without a SIGKILL', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 1000 })]);
    w.proc(1).behavior.straggler = 'drains';
    w.proc(1).behavior.drainMs = 300;
    w.reload();
    w.readyAll();
    expect(w.proc(1).alive).toBe(true);
    w.advance(300);
    expect(w.proc(1).lingering).toBe(true);
    expect(w.finished.size).toBe(0);
    w.advance(300);
    expect(w.finished.get(1)?.state).toBe('succeeded');
    expect(w.proc(1).signals).toEqual(['SIGTERM']);
    expect(w.state.groups[0]!.slots[0]!.lastExit).toMatchObject({ reason: 'stopped (replaced)' });
    expect(w.armed()).toEqual([]);
  });

  it('a crash: the slot restarts after its backoff at once, the leftover members get the stop signal and SIGKILL at stopTimeout', () => {
    const w = runningWorld([groupConfig({ count: 2, stopTimeoutMs: 1000, restartDelayMs: 100 })]);
    w.proc(2).behavior.straggler = 'ignoresStop';
    w.exit(2, null, 'SIGKILL');
    const slot = w.state.groups[0]!.slots[1]!;
    expect(slot.restarts).toBe(1);
    expect(slot.lastExit).toMatchObject({ signal: 'SIGKILL', reason: 'was killed by SIGKILL' });
    expect(slot.backoffUntil).toBe(w.now + 100);
    expect(w.proc(2).signals).toEqual(['SIGTERM']);
    expect(w.workers().find((x) => x.id === 2)).toMatchObject({ phase: 'stopping', leaderExit: { crash: true } });
    w.advance(100);
    const fresh = w.workers().find((x) => x.slot === 1 && x.phase === 'starting')!;
    expect(fresh.id).toBe(3);
    w.ready(3);
    // Status shows the lingering one as stopping next to its replacement.
    expect(status(w).groups[0]!.workers.filter((x) => x.slot === 1).map((x) => [x.id, x.state])).toEqual([
      [2, 'stopping'],
      [3, 'ready'],
    ]);
    w.advance(900);
    expect(w.proc(2).signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(w.workers().map((x) => x.id)).toEqual([1, 3]);
    // The crash stays the slot's last exit.
    expect(w.state.groups[0]!.slots[1]!.lastExit).toMatchObject({ signal: 'SIGKILL', reason: 'was killed by SIGKILL' });
    expect(w.armed()).toEqual([]);
    expect(w.violations).toEqual([]);
  });

  it('a crash before the first readiness still fails the start; smoothd exits 71 once the leftover group is gone', () => {
    const w = new World(makeConfig([groupConfig({ count: 2, stopTimeoutMs: 1000 })]));
    w.ready(1);
    w.proc(2).behavior.straggler = 'ignoresStop';
    w.crash(2);
    expect(w.state.daemon).toBe('stopping');
    expect(w.state.startFailure).toMatchObject({ workerId: 2 });
    expect(w.exitCode).toBeNull();
    w.advance(1000);
    expect(w.proc(2).signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(w.exitCode).toBe(71);
    expect(w.armed()).toEqual([]);
  });

  it('a new worker crashing during a roll fails the reload at once, while its leftover group is stopped', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 1000 })]);
    w.reload();
    const fresh = w.workers().find((x) => x.generation === 2)!;
    w.proc(fresh.id).behavior.straggler = 'drains';
    w.proc(fresh.id).behavior.drainMs = 200;
    w.crash(fresh.id);
    expect(w.finished.get(1)?.state).toBe('failed');
    expect(w.workers().find((x) => x.id === fresh.id)?.phase).toBe('stopping');
    w.advance(200);
    expect(w.workers().map((x) => x.id)).toEqual([1]);
    expect(w.proc(fresh.id).signals).toEqual(['SIGTERM']);
  });

  it('a lingering group keeps smoothd from exiting until it is gone; a forced stop SIGKILLs it', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 30_000 })]);
    w.proc(1).behavior.straggler = 'ignoresStop';
    w.stop();
    expect(w.proc(1).lingering).toBe(true);
    expect(w.exitCode).toBeNull();
    w.stop(true);
    expect(w.proc(1).signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(w.exitCode).toBe(0);
    expect(w.violations).toEqual([]);
  });

  it('a stray worker.gone (no lingering group) changes nothing', () => {
    const w = runningWorld([groupConfig()]);
    const before = w.state;
    const fx = w.send({ type: 'worker.gone', workerId: 1 });
    expect(fx).toEqual([]);
    expect(w.state).toEqual(before);
  });
});
