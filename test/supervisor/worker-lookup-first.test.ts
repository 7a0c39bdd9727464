/**
 * findWorker (src/supervisor/worker-lookup.ts) of the record at position 0:
 * the first worker of the list is found like any other (position 0 is a hit,
 * not "missing"), in an ordered and in a hand-built list.
 */
import { describe, expect, it } from 'vitest';
import type { WorkerRecord } from '../../src/supervisor/types.js';
import { findWorker } from '../../src/supervisor/worker-lookup.js';

const rec = (id: number) => ({ id }) as WorkerRecord;

describe('findWorker of the first record', () => {
  it('returns the record at position 0 of an ordered list', () => {
    const list = [rec(4), rec(9), rec(12)];
    expect(findWorker(list, 4)).toBe(list[0]);
  });

  it('returns the record at position 0 of a list in another order, and undefined for a missing id', () => {
    const list = [rec(30), rec(2), rec(17)];
    expect(findWorker(list, 30)).toBe(list[0]);
    const single = [rec(5)];
    expect(findWorker(single, 5)).toBe(single[0]);
    expect(findWorker(list, 31)).toBeUndefined();
  });
});
