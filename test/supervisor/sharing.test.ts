/**
 * A step's cost must not grow with the number of workers (issue 15 item 5):
 * it copies what the event changes and shares the rest with the state it was
 * given, which it never changes.
 */
import { describe, it, expect } from 'vitest';
import { step } from '../../src/supervisor/machine.js';
import type { MachineState } from '../../src/supervisor/types.js';
import { timerKeys } from '../../src/supervisor/timers.js';
import { World, deepFreeze, groupConfig, makeConfig, runningWorld } from './harness.js';

const COUNT = 64;

function pidOf(s: MachineState, id: number): number | null {
  return s.workers.find((w) => w.id === id)?.pid ?? null;
}

describe('structural sharing between steps', () => {
  it('a worker event copies that worker only: the other records, the slots and the timers are the same objects', () => {
    const w = runningWorld([groupConfig({ count: COUNT })]);
    const prev = deepFreeze(w.state);
    const target = prev.workers[5]!;
    const { state } = step(prev, { type: 'worker.status', workerId: target.id, text: 'busy' }, w.now);
    expect(state.workers.find((x) => x.id === target.id)?.statusText).toBe('busy');
    expect(target.statusText).toBeNull(); // the input is untouched
    const shared = state.workers.filter((x, i) => x === prev.workers[i]).length;
    expect(shared).toBe(COUNT - 1);
    expect(state.groups[0]!.slots).toBe(prev.groups[0]!.slots);
    expect(state.timers).toBe(prev.timers);
  });

  it('a step of a roll leaves the input state as it was and shares the records it did not change', () => {
    const w = runningWorld([groupConfig({ count: COUNT, rolling: { surge: 4, unavailable: 0 } })]);
    w.reload();
    const before = JSON.stringify(w.state);
    const prev = deepFreeze(w.state);
    const starting = prev.workers.find((x) => x.phase === 'starting' && x.pid === null) ?? prev.workers.find((x) => x.phase === 'starting')!;
    const { state } = step(prev, { type: 'worker.spawned', workerId: starting.id, pid: 99_999 }, w.now);
    expect(JSON.stringify(prev)).toBe(before);
    expect(pidOf(state, starting.id)).toBe(99_999);
    const changed = state.workers.filter((x, i) => x !== prev.workers[i]);
    expect(changed.map((x) => x.id)).toEqual([starting.id]);
  });

  it('with a timer per starting worker armed, a step that clears one copies one small bucket, not every timer', () => {
    const w = new World(makeConfig([groupConfig({ count: 512 })])); // all 512 starting, each with its timers
    const prev = deepFreeze(w.state);
    const armed = timerKeys(prev.timers).length;
    expect(armed).toBeGreaterThanOrEqual(512);
    const starting = prev.workers[0]!;
    const { state } = step(prev, { type: 'worker.ready', workerId: starting.id }, w.now);
    expect(timerKeys(state.timers).length).toBeLessThan(armed + 2);
    const copied = state.timers.buckets.filter((b, i) => b !== prev.timers.buckets[i]);
    expect(copied.length).toBeGreaterThan(0);
    expect(copied.length).toBeLessThanOrEqual(4);
    expect(copied.reduce((n, b) => n + Object.keys(b).length, 0)).toBeLessThan(armed / 4);
  });
});
