/**
 * Single decisions of the rolling policy on hand-built snapshots: each case
 * pins one condition of nextRollAction / rolledCount / isOld that the roll
 * scenarios of policy.test.ts pass through without deciding it.
 */
import { describe, it, expect } from 'vitest';
import { nextRollAction, rolledCount, isOld, isLive, liveWorkers, readyCount, groupWorkers } from '../../src/supervisor/policy.js';
import { policyGroup as group, policyWorker as worker } from './policy-fixture.js';


describe('policy queries', () => {
  it('count only their own group and only live or ready workers', () => {
    const ws = [worker(1, 0, 1, 'ready'), worker(2, 0, 1, 'starting'), worker(3, 0, 1, 'stopping'), worker(4, 0, 1, 'ready', 'api')];
    expect(groupWorkers(ws, 'web').map((w) => w.id)).toEqual([1, 2, 3]);
    expect(liveWorkers(ws).map((w) => w.id)).toEqual([1, 2, 4]);
    expect(ws.map(isLive)).toEqual([true, true, false, true]);
    expect(readyCount(ws)).toBe(2);
  });

  it('isOld: another generation, or a slot at or beyond count', () => {
    expect(isOld(worker(1, 0, 2, 'ready'), 2, 2)).toBe(false);
    expect(isOld(worker(1, 1, 2, 'ready'), 2, 2)).toBe(false);
    expect(isOld(worker(1, 2, 2, 'ready'), 2, 2)).toBe(true);
    expect(isOld(worker(1, 0, 3, 'ready'), 2, 2)).toBe(true);
  });

  it('rolledCount counts slots below count with a READY worker of the target, once per slot', () => {
    const g = group(2, 1, 0);
    const ws = [
      worker(1, 0, 2, 'ready'),
      worker(2, 0, 2, 'ready'), // same slot twice: one slot
      worker(3, 1, 2, 'starting'),
      worker(4, 2, 2, 'ready'), // beyond count
      worker(5, 1, 1, 'ready'),
      worker(6, 1, 2, 'ready', 'api'), // another group
    ];
    expect(rolledCount(g, ws, 2)).toBe(1);
    expect(rolledCount(g, [...ws, worker(7, 1, 2, 'ready')], 2)).toBe(2);
  });
});

describe('nextRollAction decisions', () => {
  it('retires a STARTING old worker even at the ready floor (it is not ready, so the floor does not hold it)', () => {
    const g = group(1, 1, 0);
    // Slot 0: the old worker is still starting, the new one is ready.
    expect(nextRollAction(g, [worker(1, 0, 1, 'starting'), worker(2, 0, 2, 'ready')], 2)).toEqual({ kind: 'stop', workerId: 1, reason: 'replaced' });
  });

  it('holds a ready old worker whose retirement would go below count - unavailable', () => {
    const g = group(2, 1, 0);
    // Slot 0 has its ready replacement, but slot 1's old worker is the other ready one:
    // ready = 3, floor 2, so retiring 1 is allowed; with the new one only starting it is not.
    expect(nextRollAction(g, [worker(1, 0, 1, 'ready'), worker(2, 1, 1, 'ready'), worker(3, 0, 2, 'ready')], 2)).toEqual({ kind: 'stop', workerId: 1, reason: 'replaced' });
    expect(nextRollAction(g, [worker(1, 0, 1, 'ready'), worker(3, 0, 2, 'ready')], 2)).toEqual({ kind: 'start', slot: 1 });
    // Exactly at the floor after the stop (ready - 1 === floor) is allowed; one below is not.
    const g1 = group(2, 0, 1);
    expect(nextRollAction(g1, [worker(1, 0, 1, 'ready'), worker(2, 1, 2, 'ready')], 2)).toEqual({ kind: 'stop', workerId: 1, reason: 'replaced' });
    expect(nextRollAction(g1, [worker(1, 0, 1, 'ready'), worker(2, 1, 2, 'starting')], 2)).toEqual({ kind: 'wait' });
  });

  it('a slot at or beyond count is retired as "count lowered", even without a replacement', () => {
    const g = group(1, 1, 0);
    expect(nextRollAction(g, [worker(1, 0, 2, 'ready'), worker(2, 1, 2, 'ready')], 2)).toEqual({ kind: 'stop', workerId: 2, reason: 'count lowered' });
  });

  it('a superseded worker (a newer ready one in its slot, same generation, higher id) is surplus', () => {
    const g = group(1, 1, 0);
    const same = [worker(1, 0, 1, 'ready'), worker(2, 0, 1, 'ready')];
    // Rolling to 1 (a rollback target): both are of the target, neither old: the roll is done.
    expect(nextRollAction(g, same, 1)).toEqual({ kind: 'done' });
    // Rolling to 2: both old; worker 1 is superseded by ready worker 2 (same generation, higher id).
    expect(nextRollAction(g, same, 2)).toEqual({ kind: 'stop', workerId: 1, reason: 'replaced' });
    // A newer generation in the slot supersedes an older one even with a lower id.
    expect(nextRollAction(g, [worker(5, 0, 1, 'ready'), worker(4, 0, 3, 'ready')], 2)).toEqual({ kind: 'stop', workerId: 5, reason: 'replaced' });
    // A starting one supersedes nothing: room for the target's start instead.
    expect(nextRollAction(group(1, 2, 0), [worker(1, 0, 1, 'ready'), worker(2, 0, 1, 'starting')], 2)).toEqual({ kind: 'start', slot: 0 });
  });

  it('starts in an empty slot before a slot that still has an old worker', () => {
    const g = group(3, 1, 0);
    expect(nextRollAction(g, [worker(1, 0, 1, 'ready'), worker(2, 2, 1, 'ready')], 2)).toEqual({ kind: 'start', slot: 1 });
    expect(nextRollAction(g, [worker(1, 0, 1, 'ready'), worker(2, 1, 1, 'ready'), worker(3, 2, 1, 'ready')], 2)).toEqual({ kind: 'start', slot: 0 });
  });

  it('with no room and unavailable > 0, retires a starting old worker before a ready one, lower slot first', () => {
    const g = group(3, 0, 1);
    const ws = [worker(1, 0, 1, 'ready'), worker(2, 1, 1, 'ready'), worker(3, 2, 1, 'starting')];
    expect(nextRollAction(g, ws, 2)).toEqual({ kind: 'stop', workerId: 3, reason: 'replaced' });
    const allReady = [worker(1, 0, 1, 'ready'), worker(2, 1, 1, 'ready'), worker(3, 2, 1, 'ready')];
    expect(nextRollAction(g, allReady, 2)).toEqual({ kind: 'stop', workerId: 1, reason: 'replaced' });
    const reversed = [worker(3, 2, 1, 'ready'), worker(2, 1, 1, 'ready'), worker(1, 0, 1, 'ready')];
    expect(nextRollAction(g, reversed, 2)).toEqual({ kind: 'stop', workerId: 1, reason: 'replaced' });
    // unavailable 0 never takes this path: with no room it waits.
    expect(nextRollAction(group(3, 0, 0), allReady, 2)).toEqual({ kind: 'wait' });
  });

  it('is done only when no old worker is live and every slot has a ready worker of the target', () => {
    const g = group(2, 1, 0);
    expect(nextRollAction(g, [worker(1, 0, 2, 'ready'), worker(2, 1, 2, 'ready')], 2)).toEqual({ kind: 'done' });
    expect(nextRollAction(g, [worker(1, 0, 2, 'ready'), worker(2, 1, 2, 'starting')], 2)).toEqual({ kind: 'wait' });
    // A stopping old worker does not hold the roll: it counts as neither live nor old.
    expect(nextRollAction(g, [worker(1, 0, 2, 'ready'), worker(2, 1, 2, 'ready'), worker(3, 1, 1, 'stopping')], 2)).toEqual({ kind: 'done' });
  });
});
