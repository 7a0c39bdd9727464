/**
 * Decisions of the rolling policy that the roll scenarios and the random runs
 * pass through without deciding them (found by mutation testing): which old
 * worker a roll with no room stops first (not-ready ones, then by slot, then
 * by id, whatever order the index met them in), which worker of a slot with
 * two generations is surplus (the older generation, whatever the ids or the
 * list order), and a roll is not done while a slot is empty. Each case asks
 * both the indexed path (nextRollAction with `changing`) and the scan
 * (scanRollAction), which must agree.
 */
import { describe, it, expect } from 'vitest';
import { nextRollAction, scanRollAction, type RollAction } from '../../src/supervisor/policy.js';
import type { GroupState, WorkerRecord } from '../../src/supervisor/types.js';
import { policyGroup as group, policyWorker as worker } from './policy-fixture.js';


const none = (): boolean => false;

/** The indexed answer and the scan's, for a roll to generation 2. */
function decide(g: GroupState, list: WorkerRecord[], changing: (w: WorkerRecord) => boolean = none): { indexed: RollAction; scanned: RollAction } {
  return { indexed: nextRollAction(g, list, 2, changing), scanned: scanRollAction(g, list, 2) };
}

const stop = (workerId: number, reason = 'replaced'): RollAction => ({ kind: 'stop', workerId, reason });

describe('a roll with no room stops an old worker that has no replacement yet', () => {
  // count 3, surge 0, unavailable 2: every slot holds an old worker, none replaced.
  const g = group(3, 0, 2);

  it('a starting one before a ready one in a lower slot (the starting one is not serving)', () => {
    const list = [worker(1, 0, 1, 'ready'), worker(2, 1, 1, 'ready'), worker(3, 2, 1, 'starting')];
    expect(decide(g, list)).toEqual({ indexed: stop(3), scanned: stop(3) });
  });

  it('a starting one before ready ones, also when it comes first in the list', () => {
    const list = [worker(1, 2, 1, 'starting'), worker(2, 0, 1, 'ready'), worker(3, 1, 1, 'ready')];
    expect(decide(g, list)).toEqual({ indexed: stop(1), scanned: stop(1) });
  });

  it('among starting ones, the lowest slot, not the lowest id', () => {
    const list = [worker(1, 1, 1, 'starting'), worker(2, 0, 1, 'starting'), worker(3, 2, 1, 'ready')];
    expect(decide(g, list)).toEqual({ indexed: stop(2), scanned: stop(2) });
  });

  it('in one slot, the lowest id, also after that record was replaced by a copy (the index met it last)', () => {
    // count 2, surge 0, unavailable 1: slot 0 holds two starting old workers, slot 1 none.
    const g2 = group(2, 0, 1);
    const first = [worker(1, 0, 1, 'starting'), worker(2, 0, 1, 'starting')];
    expect(decide(g2, first)).toEqual({ indexed: stop(1), scanned: stop(1) });
    // The next step changed worker 1 (copy on write: a new record, same id and facts).
    const next = [{ ...first[0]!, statusText: 'warming up' }, first[1]!];
    expect(decide(g2, next)).toEqual({ indexed: stop(1), scanned: stop(1) });
  });
});

describe('a slot with two ready workers: the surplus one is retired first', () => {
  // count 1, surge 1, unavailable 0: slot 0 holds two ready old workers, so one can go.
  const g = group(1, 1, 0);

  it('the older generation, even when its id is higher (a slot left mixed by a failed roll)', () => {
    const list = [worker(3, 0, 1, 'ready'), worker(4, 0, 0, 'ready')];
    expect(decide(g, list)).toEqual({ indexed: stop(4), scanned: stop(4) });
  });

  it('of one generation, the lower id, also in a list not ordered by id', () => {
    const list = [worker(5, 0, 1, 'ready'), worker(3, 0, 1, 'ready')];
    expect(decide(g, list)).toEqual({ indexed: stop(3), scanned: stop(3) });
  });

  it('of one generation, the lower id, also after the index re-read a record the step changed in place', () => {
    const w1 = worker(1, 0, 1, 'starting');
    const w2 = worker(2, 0, 1, 'ready');
    const list = [w1, w2];
    const changing = (w: WorkerRecord): boolean => w === w1;
    // A not-ready old worker in a slot with a ready one is surplus at once.
    expect(decide(g, list, changing)).toEqual({ indexed: stop(1), scanned: stop(1) });
    // The same step makes worker 1 ready (it owns the record): still the lower id goes.
    w1.phase = 'ready';
    w1.readyAt = 2;
    expect(decide(g, list, changing)).toEqual({ indexed: stop(1), scanned: stop(1) });
  });
});

describe('the end of a roll', () => {
  it('is not reached while a slot is empty, even with no old worker and no room', () => {
    // count 2, surge 0: two ready new workers in slot 0 (no room), slot 1 empty.
    const g = group(2, 0, 0);
    const list = [worker(1, 0, 2, 'ready'), worker(2, 0, 2, 'ready')];
    expect(decide(g, list)).toEqual({ indexed: { kind: 'wait' }, scanned: { kind: 'wait' } });
  });
});

describe('the cost of a decision', () => {
  it('on an unchanged list of 1 000 workers reads about one field per worker (the index), not a scan of every worker', () => {
    const n = 1000;
    const g = group(n, 1, 0);
    let reads = 0;
    const list = Array.from({ length: n }, (_, i) =>
      new Proxy(worker(i + 1, i, 1, 'ready'), {
        get(target, key, receiver) {
          reads++;
          return Reflect.get(target, key, receiver);
        },
      }),
    );
    expect(nextRollAction(g, list, 2, none)).toEqual({ kind: 'start', slot: 0 });
    reads = 0;
    expect(nextRollAction(g, list.slice(), 2, none)).toEqual({ kind: 'start', slot: 0 });
    // A scan reads group, phase, slot and generation of every worker (over 4 000 reads).
    expect(reads).toBeLessThanOrEqual(n + 16);
  });
});
