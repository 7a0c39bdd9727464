/**
 * A step's cost must not grow with the number of workers (issue 15 item 5):
 * it copies what the event changes and shares the rest with the state it was
 * given, which it never changes.
 */
import { describe, it, expect } from 'vitest';
import { step } from '../../src/supervisor/machine.js';
import type { MachineState } from '../../src/supervisor/types.js';
import { deepFreeze, groupConfig, runningWorld } from './harness.js';

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
});
