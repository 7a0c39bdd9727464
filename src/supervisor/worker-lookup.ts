/**
 * Finding a worker record by id in the machine's worker list. The machine
 * appends new workers (ids only grow) and removes exited ones, so the list is
 * ordered by id and a binary search finds a record in O(log n); a list in
 * another order (hand-built in tests) is searched from the start.
 */
import type { WorkerRecord } from './types.js';

/** Position of the worker with this id, or -1. */
export function workerAt(workers: readonly WorkerRecord[], id: number): number {
  let lo = 0;
  let hi = workers.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = workers[mid]!.id;
    if (at === id) return mid;
    if (at < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return workers.findIndex((w) => w.id === id);
}

/** The worker with this id, or undefined. */
export function findWorker(workers: readonly WorkerRecord[], id: number): WorkerRecord | undefined {
  const i = workerAt(workers, id);
  return i < 0 ? undefined : workers[i];
}
