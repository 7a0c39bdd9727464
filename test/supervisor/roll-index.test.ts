/**
 * The rolling policy's index (src/supervisor/roll-index.ts) against the scan
 * it replaces: a long random walk of worker lists changed the way the machine
 * changes them (records replaced, appended, removed, and records of the
 * current step changed in place after the index read them), with the indexed
 * answer compared with the scan after every change. The property tests
 * (properties.test.ts) compare them inside every step of the real machine.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { nextRollAction, rolledCount, scanRollAction } from '../../src/supervisor/policy.js';
import { rollIndex } from '../../src/supervisor/roll-index.js';
import type { GroupState, WorkerRecord, WorkerPhase } from '../../src/supervisor/types.js';
import { groupConfig, specFor } from './harness.js';

function group(count: number, surge: number, unavailable: number, name = 'web'): GroupState {
  const config = groupConfig({ name, count, rolling: { surge, unavailable } });
  return { name, config, generation: 2, lastGeneration: 2, specs: { '1': specFor(config), '2': specFor(config) }, slots: [], rollTarget: 2, pending: null, removing: false, history: [] };
}

function worker(id: number, slot: number, generation: number, phase: WorkerPhase, name = 'web'): WorkerRecord {
  return {
    id, group: name, slot, generation, pid: 1000 + id, phase, startedAt: 0, readyAt: phase === 'ready' ? 1 : null, stoppingAt: null, statusText: null,
    stopReason: null, killed: false, retiredBy: null, startedBy: null, failed: false, leaderExit: null, counters: null, baseline: null,
  };
}

type Op =
  | { t: 'add'; slot: number; generation: number; phase: WorkerPhase; other: boolean }
  | { t: 'replace'; pick: number; phase: WorkerPhase; generation: number }
  | { t: 'inPlace'; pick: number; phase: WorkerPhase; slot: number }
  | { t: 'remove'; pick: number }
  | { t: 'nextStep' };

const phaseArb = fc.constantFrom<WorkerPhase>('starting', 'ready', 'ready', 'stopping');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('add' as const), slot: fc.nat(7), generation: fc.integer({ min: 1, max: 3 }), phase: phaseArb, other: fc.boolean() }),
  fc.record({ t: fc.constant('replace' as const), pick: fc.nat(), phase: phaseArb, generation: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ t: fc.constant('inPlace' as const), pick: fc.nat(), phase: phaseArb, slot: fc.nat(7) }),
  fc.record({ t: fc.constant('remove' as const), pick: fc.nat() }),
  fc.constant({ t: 'nextStep' as const }),
);

describe('the rolling policy index', () => {
  it('answers what a scan answers after every change of the worker list', () => {
    let compared = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 2 }),
        fc.array(opArb, { minLength: 1, maxLength: 120, size: 'max' }),
        (count, surge, unavailable, ops) => {
          const g = group(count, Math.max(surge, unavailable === 0 ? 1 : 0), Math.min(unavailable, count));
          let list: WorkerRecord[] = [];
          let owned = new WeakSet<WorkerRecord>(); // records "this step" made: it may change them in place
          const changing = (w: WorkerRecord): boolean => owned.has(w);
          let nextId = 1;
          for (const op of ops) {
            if (op.t === 'add') {
              const w = worker(nextId++, op.slot, op.generation, op.phase, op.other ? 'other' : 'web');
              owned.add(w);
              list.push(w);
            } else if (op.t === 'replace' && list.length > 0) {
              const i = op.pick % list.length;
              const copy = { ...list[i]!, phase: op.phase, generation: op.generation };
              owned.add(copy);
              list[i] = copy;
            } else if (op.t === 'inPlace' && list.length > 0) {
              const w = list[op.pick % list.length]!;
              if (owned.has(w)) Object.assign(w, { phase: op.phase, slot: op.slot });
            } else if (op.t === 'remove' && list.length > 0) {
              list = list.filter((_, i) => i !== op.pick % list.length);
            } else if (op.t === 'nextStep') {
              list = list.slice();
              owned = new WeakSet();
            }
            for (const target of [2, 3]) {
              expect(nextRollAction(g, list, target, changing)).toEqual(scanRollAction(g, list, target));
              expect(rolledCount(g, list, target, changing)).toBe(rolledCount(g, list, target));
              compared += 1;
            }
          }
        },
      ),
      { numRuns: 300 },
    );
    expect(compared).toBeGreaterThan(300);
  });

  it('follows only a list ordered by id: any other order is scanned', () => {
    const ws = [worker(5, 0, 1, 'ready'), worker(4, 0, 3, 'ready')];
    expect(rollIndex(ws, 'web', 2, 2, () => false)).toBeNull();
    // ... and the answer is still the scan's (the first old worker in list order goes first).
    const g = group(2, 1, 1);
    expect(nextRollAction(g, ws, 2, () => false)).toEqual({ kind: 'stop', workerId: 5, reason: 'replaced' });
    expect(scanRollAction(g, ws, 2)).toEqual({ kind: 'stop', workerId: 5, reason: 'replaced' });
    expect(rollIndex([...ws].reverse(), 'web', 2, 2, () => false)).not.toBeNull();
  });

  it('sees a change made in place to a record the step is still changing', () => {
    const g = group(2, 2, 0);
    const a = worker(1, 0, 1, 'ready');
    const b = worker(2, 1, 1, 'ready');
    const fresh = worker(3, 0, 2, 'starting');
    const list = [a, b, fresh];
    const mine = new Set<WorkerRecord>([fresh]);
    expect(nextRollAction(g, list, 2, (w) => mine.has(w))).toEqual({ kind: 'start', slot: 1 });
    fresh.phase = 'ready'; // the same step makes it ready in place
    expect(nextRollAction(g, list, 2, (w) => mine.has(w))).toEqual({ kind: 'stop', workerId: 1, reason: 'replaced' });
    expect(rolledCount(g, list, 2, (w) => mine.has(w))).toBe(1);
  });
});
