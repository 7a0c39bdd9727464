/**
 * Finding a worker by id (src/supervisor/worker-lookup.ts): the machine's list
 * is ordered by id, so a lookup reads O(log n) records, not the whole list; a
 * list in another order is still searched correctly; a missing id is -1 /
 * undefined.
 */
import { describe, expect, it } from 'vitest';
import type { WorkerRecord } from '../../src/supervisor/types.js';
import { findWorker, workerAt } from '../../src/supervisor/worker-lookup.js';

const rec = (id: number) => ({ id }) as WorkerRecord;

/** The list, and how many of its records a lookup has read. */
function counted(ids: number[]): { list: WorkerRecord[]; reads: () => number } {
  const records = ids.map(rec);
  let reads = 0;
  const list = new Proxy(records, {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
      return Reflect.get(target, key, receiver);
    },
  });
  return { list, reads: () => reads };
}

describe('finding a worker by id', () => {
  it('in the machine\'s list (ordered by id, with gaps) reads at most log2(n) + 1 records', () => {
    const ids = Array.from({ length: 1024 }, (_, i) => 3 * i + 7); // ids only grow; exited ones leave gaps
    for (const [pos, id] of [[0, 7], [1023, 3 * 1023 + 7], [511, 3 * 511 + 7], [700, 3 * 700 + 7]] as const) {
      const { list, reads } = counted(ids);
      expect(workerAt(list, id)).toBe(pos);
      expect(reads()).toBeLessThanOrEqual(11);
    }
  });

  it('finds every id of an ordered list, and none that is not in it', () => {
    const ids = [2, 3, 5, 8, 13, 21, 34];
    const list = ids.map(rec);
    ids.forEach((id, i) => expect(workerAt(list, id)).toBe(i));
    for (const id of [0, 1, 4, 20, 35]) expect(workerAt(list, id)).toBe(-1);
    expect(workerAt([], 1)).toBe(-1);
    expect(findWorker(list, 13)).toBe(list[4]);
    expect(findWorker(list, 14)).toBeUndefined();
  });

  it('a list in another order is still searched correctly', () => {
    const list = [9, 4, 7, 1].map(rec);
    expect(workerAt(list, 1)).toBe(3);
    expect(workerAt(list, 9)).toBe(0);
    expect(findWorker(list, 7)).toBe(list[2]);
    expect(findWorker(list, 5)).toBeUndefined();
  });
});
