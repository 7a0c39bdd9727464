/**
 * Pure queries over a group's workers, and the rolling policy: given a
 * snapshot, which worker to start or stop next. No I/O, no mutation.
 */
import type { GroupState, WorkerRecord } from './types.js';

export function groupWorkers(workers: readonly WorkerRecord[], group: string): WorkerRecord[] {
  return workers.filter((w) => w.group === group);
}

/** Starting or ready, and not asked to stop: the workers the bounds count. */
export function isLive(w: WorkerRecord): boolean {
  return w.phase === 'starting' || w.phase === 'ready';
}

export function liveWorkers(workers: readonly WorkerRecord[]): WorkerRecord[] {
  return workers.filter(isLive);
}

export function readyCount(workers: readonly WorkerRecord[]): number {
  return workers.filter((w) => w.phase === 'ready').length;
}

/**
 * During a roll to `target`, a worker is old when it runs another generation
 * (an older one in a reload; the failed newer one in a rollback) or sits in a
 * slot beyond `count`.
 */
export function isOld(w: WorkerRecord, target: number, count: number): boolean {
  return w.generation !== target || w.slot >= count;
}

export type RollAction =
  | { kind: 'stop'; workerId: number; reason: string }
  | { kind: 'start'; slot: number }
  | { kind: 'done' }
  | { kind: 'wait' };

/**
 * The next step of a roll of one group to generation `target`.
 *
 * Bounds (DESIGN §3): starting + ready workers stay within `count + surge`,
 * ready workers at or above `count - unavailable`; draining workers count
 * against neither. Called repeatedly until it answers `wait` or `done`.
 */
export function nextRollAction(group: GroupState, workers: readonly WorkerRecord[], target: number): RollAction {
  const { count, rolling } = group.config;
  const mine = groupWorkers(workers, group.name);
  const live = liveWorkers(mine);
  const ready = readyCount(live);
  const floor = count - rolling.unavailable;
  const canRetire = (w: WorkerRecord): boolean => w.phase !== 'ready' || ready - 1 >= floor;
  const readyNewIn = (slot: number): boolean =>
    live.some((w) => w.slot === slot && w.generation === target && w.phase === 'ready');
  const newIn = (slot: number): boolean => live.some((w) => w.slot === slot && w.generation === target);
  const old = live.filter((w) => isOld(w, target, count));

  // A failed roll leaves ready new workers next to the old ones of their slots (mixed
  // generations): such a slot holds two live workers, and the older one is surplus.
  const supersededIn = (w: WorkerRecord): boolean =>
    live.some(
      (x) => x.id !== w.id && x.slot === w.slot && x.phase === 'ready' && (x.generation > w.generation || (x.generation === w.generation && x.id > w.id)),
    );

  // 1. An old worker whose replacement is ready (or whose slot is gone): retire it.
  for (const w of old) {
    if ((w.slot >= count || readyNewIn(w.slot) || supersededIn(w)) && canRetire(w)) {
      return { kind: 'stop', workerId: w.id, reason: w.slot >= count ? 'count lowered' : 'replaced' };
    }
  }

  // 2. Room for another worker: start the target generation in the next slot that lacks it,
  //    empty slots first.
  if (live.length < count + rolling.surge) {
    const lacking = [...Array(count).keys()].filter((s) => !newIn(s));
    const empty = lacking.find((s) => !live.some((w) => w.slot === s));
    const slot = empty ?? lacking[0];
    if (slot !== undefined) return { kind: 'start', slot };
  }

  // 3. No room: with `unavailable > 0`, retire an old worker that has no replacement yet
  //    (not-ready ones first) so its slot can be refilled.
  if (rolling.unavailable > 0 && live.length >= count + rolling.surge) {
    const candidates = old
      .filter((w) => !newIn(w.slot))
      .sort((a, b) => (a.phase === b.phase ? a.slot - b.slot : a.phase === 'starting' ? -1 : 1));
    const w = candidates.find(canRetire);
    if (w) return { kind: 'stop', workerId: w.id, reason: 'replaced' };
  }

  const complete =
    old.length === 0 && [...Array(count).keys()].every((s) => readyNewIn(s));
  return complete ? { kind: 'done' } : { kind: 'wait' };
}

/** Number of slots of the group that already run a ready worker of `target`. */
export function rolledCount(group: GroupState, workers: readonly WorkerRecord[], target: number): number {
  const mine = groupWorkers(workers, group.name);
  let n = 0;
  for (let s = 0; s < group.config.count; s++) {
    if (mine.some((w) => w.slot === s && w.generation === target && w.phase === 'ready')) n++;
  }
  return n;
}
