import { describe, it, expect } from 'vitest';
import { nextRollAction, rolledCount, isOld, type RollAction } from '../../src/supervisor/policy.js';
import type { GroupState, WorkerRecord, WorkerPhase } from '../../src/supervisor/types.js';
import { groupConfig, specFor } from './harness.js';

function group(count: number, surge: number, unavailable: number): GroupState {
  const config = groupConfig({ count, rolling: { surge, unavailable } });
  return {
    name: 'web',
    config,
    generation: 2,
    lastGeneration: 2,
    specs: { '1': specFor(config), '2': specFor(config) },
    slots: [],
    rollTarget: 2,
    pending: null,
    removing: false,
    history: [],
  };
}

let nextId = 1;
function worker(slot: number, generation: number, phase: WorkerPhase, id = nextId++): WorkerRecord {
  return {
    id,
    group: 'web',
    slot,
    generation,
    pid: 1000 + id,
    phase,
    startedAt: 0,
    readyAt: phase === 'ready' ? 1 : null,
    stoppingAt: phase === 'stopping' ? 2 : null,
    statusText: null,
    stopReason: null,
    killed: false,
    retiredBy: null,
    startedBy: generation === 2 ? 1 : null,
    failed: false,
    leaderExit: null,
    counters: null,
    baseline: null,
  };
}

/** Apply actions the way the machine does until the policy waits or is done. */
function settle(g: GroupState, workers: WorkerRecord[], target = 2): { actions: RollAction[]; workers: WorkerRecord[] } {
  const actions: RollAction[] = [];
  let ws = workers.map((w) => ({ ...w }));
  for (let i = 0; i < 100; i++) {
    const a = nextRollAction(g, ws, target);
    actions.push(a);
    if (a.kind === 'wait' || a.kind === 'done') return { actions, workers: ws };
    if (a.kind === 'stop') ws = ws.map((w) => (w.id === a.workerId ? { ...w, phase: 'stopping' as const } : w));
    if (a.kind === 'start') ws = [...ws, worker(a.slot, target, 'starting')];
  }
  throw new Error('policy did not settle');
}

/** Make every starting worker ready, then settle again; repeat until done. Checks the bounds on the way. */
function rollToEnd(g: GroupState, workers: WorkerRecord[]): { steps: string[]; workers: WorkerRecord[] } {
  const steps: string[] = [];
  let ws = workers;
  const { count, rolling } = g.config;
  for (let round = 0; round < 50; round++) {
    const r = settle(g, ws);
    ws = r.workers;
    const live = ws.filter((w) => w.phase !== 'stopping');
    expect(live.length).toBeLessThanOrEqual(count + rolling.surge);
    for (const a of r.actions) {
      if (a.kind === 'start') steps.push(`start ${a.slot}`);
      if (a.kind === 'stop') steps.push(`stop ${ws.find((w) => w.id === a.workerId)!.slot}`);
    }
    if (r.actions.at(-1)!.kind === 'done') return { steps, workers: ws };
    steps.push('ready');
    ws = ws.map((w) => (w.phase === 'starting' ? { ...w, phase: 'ready' as const, readyAt: 5 } : w));
    const ready = ws.filter((w) => w.phase === 'ready').length;
    expect(ready).toBeGreaterThanOrEqual(count - rolling.unavailable);
  }
  throw new Error('roll never finished');
}

describe('nextRollAction', () => {
  it('surge 1 / unavailable 0: starts a new worker first, retires the old one once it is ready', () => {
    const g = group(2, 1, 0);
    const old0 = worker(0, 1, 'ready');
    const old1 = worker(1, 1, 'ready');
    expect(nextRollAction(g, [old0, old1], 2)).toEqual({ kind: 'start', slot: 0 });

    const new0 = worker(0, 2, 'starting');
    // At count + surge: nothing else may start, and nothing ready may stop.
    expect(nextRollAction(g, [old0, old1, new0], 2)).toEqual({ kind: 'wait' });

    new0.phase = 'ready';
    expect(nextRollAction(g, [old0, old1, new0], 2)).toEqual({ kind: 'stop', workerId: old0.id, reason: 'replaced' });

    old0.phase = 'stopping';
    // A draining worker counts against neither bound: the next slot starts.
    expect(nextRollAction(g, [old0, old1, new0], 2)).toEqual({ kind: 'start', slot: 1 });
  });

  it('surge 1 / unavailable 0: the full sequence', () => {
    const { steps } = rollToEnd(group(3, 1, 0), [worker(0, 1, 'ready'), worker(1, 1, 'ready'), worker(2, 1, 'ready')]);
    expect(steps).toEqual(['start 0', 'ready', 'stop 0', 'start 1', 'ready', 'stop 1', 'start 2', 'ready', 'stop 2']);
  });

  it('surge 0 / unavailable 1 (Workerman order): retires an old worker first, then starts its replacement', () => {
    const g = group(2, 0, 1);
    const old0 = worker(0, 1, 'ready');
    const old1 = worker(1, 1, 'ready');
    expect(nextRollAction(g, [old0, old1], 2)).toEqual({ kind: 'stop', workerId: old0.id, reason: 'replaced' });
    old0.phase = 'stopping';
    expect(nextRollAction(g, [old0, old1], 2)).toEqual({ kind: 'start', slot: 0 });
    const new0 = worker(0, 2, 'starting');
    // Ready would fall below count - unavailable = 1 if old1 stopped now.
    expect(nextRollAction(g, [old0, old1, new0], 2)).toEqual({ kind: 'wait' });
    new0.phase = 'ready';
    expect(nextRollAction(g, [old0, old1, new0], 2)).toEqual({ kind: 'stop', workerId: old1.id, reason: 'replaced' });

    const { steps } = rollToEnd(g, [worker(0, 1, 'ready'), worker(1, 1, 'ready')]);
    expect(steps).toEqual(['stop 0', 'start 0', 'ready', 'stop 1', 'start 1', 'ready']);
  });

  it('surge 0 / unavailable 1 retires a starting old worker before a ready one', () => {
    const g = group(2, 0, 1);
    const old0 = worker(0, 1, 'ready');
    const old1 = worker(1, 1, 'starting');
    expect(nextRollAction(g, [old0, old1], 2)).toEqual({ kind: 'stop', workerId: old1.id, reason: 'replaced' });
  });

  it('surge 2: two new workers start at once', () => {
    const g = group(3, 2, 0);
    const old = [worker(0, 1, 'ready'), worker(1, 1, 'ready'), worker(2, 1, 'ready')];
    const r = settle(g, old);
    expect(r.actions).toEqual([{ kind: 'start', slot: 0 }, { kind: 'start', slot: 1 }, { kind: 'wait' }]);
    const { steps } = rollToEnd(g, old);
    expect(steps).toEqual(['start 0', 'start 1', 'ready', 'stop 0', 'stop 1', 'start 2', 'ready', 'stop 2']);
  });

  it('unavailable 2 / surge 0: two old workers retire at once', () => {
    const g = group(3, 0, 2);
    const old = [worker(0, 1, 'ready'), worker(1, 1, 'ready'), worker(2, 1, 'ready')];
    const r = settle(g, old);
    expect(r.actions.map((a) => a.kind)).toEqual(['stop', 'start', 'stop', 'start', 'wait']);
    const { steps } = rollToEnd(g, old);
    expect(steps).toEqual(['stop 0', 'start 0', 'stop 1', 'start 1', 'ready', 'stop 2', 'start 2', 'ready']);
  });

  it('surge 1 / unavailable 1: starts and retires in the same round', () => {
    const g = group(2, 1, 1);
    const old = [worker(0, 1, 'ready'), worker(1, 1, 'ready')];
    const r = settle(g, old);
    expect(r.actions.map((a) => a.kind)).toEqual(['start', 'stop', 'start', 'wait']);
    rollToEnd(g, old);
  });

  it('count lowered: workers in slots beyond count are retired', () => {
    const g = group(2, 1, 0);
    const old = [worker(0, 1, 'ready'), worker(1, 1, 'ready'), worker(2, 1, 'ready'), worker(3, 1, 'ready')];
    const a = nextRollAction(g, old, 2);
    expect(a).toEqual({ kind: 'stop', workerId: old[2]!.id, reason: 'count lowered' });
    const { steps, workers } = rollToEnd(g, old);
    expect(steps.slice(0, 2)).toEqual(['stop 2', 'stop 3']);
    expect(workers.filter((w) => w.phase !== 'stopping').map((w) => [w.slot, w.generation])).toEqual([
      [0, 2],
      [1, 2],
    ]);
  });

  it('count lowered: ready workers beyond count are not retired below count - unavailable', () => {
    const g = group(1, 1, 0);
    // slot 0 is starting (restarting after a crash); slots 1 and 2 are ready and too many.
    const w0 = worker(0, 1, 'starting');
    const w1 = worker(1, 1, 'ready');
    const w2 = worker(2, 1, 'ready');
    expect(nextRollAction(g, [w0, w1, w2], 2)).toEqual({ kind: 'stop', workerId: w1.id, reason: 'count lowered' });
    w1.phase = 'stopping';
    // w2 is the last ready worker: it stays until something else is ready.
    expect(nextRollAction(g, [w0, w1, w2], 2)).toEqual({ kind: 'wait' });
  });

  it('count raised: empty slots are filled first', () => {
    const g = group(3, 1, 0);
    const old = [worker(0, 1, 'ready')];
    const r = settle(g, old);
    expect(r.actions).toEqual([{ kind: 'start', slot: 1 }, { kind: 'start', slot: 2 }, { kind: 'start', slot: 0 }, { kind: 'wait' }]);
    rollToEnd(g, old);
  });

  it('an empty slot (old worker crashed) is refilled', () => {
    const g = group(2, 1, 0);
    expect(nextRollAction(g, [worker(0, 1, 'ready')], 2)).toEqual({ kind: 'start', slot: 1 });
  });

  it('done only when every slot has a ready worker of the target and no old worker is live', () => {
    const g = group(2, 1, 0);
    const n0 = worker(0, 2, 'ready');
    const n1 = worker(1, 2, 'starting');
    const oldStopping = worker(1, 1, 'stopping');
    expect(nextRollAction(g, [n0, n1, oldStopping], 2)).toEqual({ kind: 'wait' });
    n1.phase = 'ready';
    expect(nextRollAction(g, [n0, n1, oldStopping], 2)).toEqual({ kind: 'done' });
    // An old live worker left: not done (it gets retired instead).
    const old1 = worker(1, 1, 'ready');
    expect(nextRollAction(g, [n0, n1, old1], 2)).toEqual({ kind: 'stop', workerId: old1.id, reason: 'replaced' });
    // A missing slot: not done.
    expect(nextRollAction(g, [n0], 2)).toEqual({ kind: 'start', slot: 1 });
  });

  it('mixed generations left by a failed roll: the older worker of a doubled slot is retired first', () => {
    // slot 1 holds its old worker and a ready worker of the failed generation 2; rolling to 3.
    const g = group(2, 1, 0);
    g.rollTarget = 3;
    const a = worker(0, 1, 'ready');
    const b = worker(1, 1, 'ready');
    const c = worker(1, 2, 'ready');
    expect(nextRollAction(g, [a, b, c], 3)).toEqual({ kind: 'stop', workerId: b.id, reason: 'replaced' });
    b.phase = 'stopping';
    expect(nextRollAction(g, [a, b, c], 3)).toEqual({ kind: 'start', slot: 0 });
    // Never below the floor: with only the two ready workers of slot 1, neither goes.
    expect(nextRollAction(group(2, 1, 0), [worker(1, 1, 'ready'), worker(1, 2, 'ready')], 3)).toEqual({ kind: 'start', slot: 0 });
  });

  it('ignores other groups', () => {
    const g = group(1, 1, 0);
    const other = { ...worker(0, 1, 'ready'), group: 'api' };
    expect(nextRollAction(g, [other], 2)).toEqual({ kind: 'start', slot: 0 });
  });

  it('rolledCount and isOld', () => {
    const g = group(3, 1, 0);
    const ws = [worker(0, 2, 'ready'), worker(1, 2, 'starting'), worker(2, 1, 'ready'), worker(3, 2, 'ready')];
    expect(rolledCount(g, ws, 2)).toBe(1);
    expect(isOld(ws[2]!, 2, 3)).toBe(true);
    expect(isOld(ws[3]!, 2, 3)).toBe(true);
    expect(isOld(ws[0]!, 2, 3)).toBe(false);
  });
});
