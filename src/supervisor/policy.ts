/**
 * Pure queries over a group's workers, and the rolling policy: given a
 * snapshot, which worker to start or stop next. No I/O, no mutation.
 */
import type { GroupState, WorkerRecord } from './types.js';
import { rollIndex, type RollIndex } from './roll-index.js';

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
 *
 * With `changing` (which records the calling step may still change in place)
 * the answer comes from an index kept up to date between calls (roll-index.ts):
 * O(1) per decision apart from a pointer walk over the list. Without it, or for
 * a list not ordered by id, from a scan of every worker (scanRollAction). Both
 * give the same answer.
 */
export function nextRollAction(group: GroupState, workers: readonly WorkerRecord[], target: number, changing?: (w: WorkerRecord) => boolean): RollAction {
  const ix = changing ? rollIndex(workers, group.name, target, group.config.count, changing) : null;
  if (!ix) return scanRollAction(group, workers, target);
  const action = indexedRollAction(group, ix);
  if (checking) expectSame('nextRollAction', action, scanRollAction(group, workers, target));
  return action;
}

let checking = false;
let checks = 0;

/** Tests: every indexed answer is compared with the scan's, and a difference throws (inside the step that asked). */
export function checkRollIndex(on: boolean): void {
  checking = on;
}

/** How many indexed answers were compared since the start. */
export function rollIndexChecks(): number {
  return checks;
}

function expectSame(what: string, indexed: unknown, scanned: unknown): void {
  checks += 1;
  const a = JSON.stringify(indexed);
  const b = JSON.stringify(scanned);
  if (a !== b) throw new Error(`internal: the rolling policy's index answered ${what} ${a} where a scan answers ${b}`);
}

function indexedRollAction(group: GroupState, ix: RollIndex): RollAction {
  const { count, rolling } = group.config;
  const floor = count - rolling.unavailable;
  const canRetire = (w: WorkerRecord): boolean => w.phase !== 'ready' || ix.ready - 1 >= floor;

  // 1. The lowest-id old worker whose replacement is ready (or whose slot is gone) and may go.
  let pick: WorkerRecord | undefined;
  for (const w of ix.retirable) if (canRetire(w) && (pick === undefined || w.id < pick.id)) pick = w;
  if (pick) return { kind: 'stop', workerId: pick.id, reason: pick.slot >= count ? 'count lowered' : 'replaced' };

  // 2. Room for another worker: empty slots first, then slots that lack the target.
  if (ix.live < count + rolling.surge) {
    const slot = ix.empty.min() ?? ix.lacking.min();
    if (slot !== undefined) return { kind: 'start', slot };
  }

  // 3. As scanRollAction (this path looks at every old worker: only with `unavailable > 0` and no room).
  if (rolling.unavailable > 0 && ix.live >= count + rolling.surge) {
    const candidates = [...ix.old]
      .filter((w) => !ix.hasNew(w.slot))
      .sort((a, b) => (a.phase === b.phase ? a.slot - b.slot || a.id - b.id : a.phase === 'starting' ? -1 : 1));
    const w = candidates.find(canRetire);
    if (w) return { kind: 'stop', workerId: w.id, reason: 'replaced' };
  }

  return ix.old.size === 0 && ix.readyNewSlots === count ? { kind: 'done' } : { kind: 'wait' };
}

/** nextRollAction from a scan of every worker: the reference the index is checked against. */
export function scanRollAction(group: GroupState, workers: readonly WorkerRecord[], target: number): RollAction {
  const { count, rolling } = group.config;
  const live = liveWorkers(groupWorkers(workers, group.name));
  const ready = readyCount(live);
  const floor = count - rolling.unavailable;
  const canRetire = (w: WorkerRecord): boolean => w.phase !== 'ready' || ready - 1 >= floor;
  // One pass builds what the questions below ask per slot, so a decision costs
  // O(workers) however many slots it looks at (a roll of n workers makes O(n) decisions).
  const slots = slotIndex(live, target);
  const readyNewIn = (slot: number): boolean => slots.get(slot)?.readyNew ?? false;
  const newIn = (slot: number): boolean => slots.get(slot)?.hasNew ?? false;
  const old = live.filter((w) => isOld(w, target, count));

  // A failed roll leaves ready new workers next to the old ones of their slots (mixed
  // generations): such a slot holds two live workers, and the older one is surplus.
  const supersededIn = (w: WorkerRecord): boolean => {
    const top = slots.get(w.slot)?.newestReady;
    return top !== undefined && (top.generation > w.generation || (top.generation === w.generation && top.id > w.id));
  };

  // 1. An old worker whose replacement is ready (or whose slot is gone): retire it.
  for (const w of old) {
    if ((w.slot >= count || readyNewIn(w.slot) || supersededIn(w)) && canRetire(w)) {
      return { kind: 'stop', workerId: w.id, reason: w.slot >= count ? 'count lowered' : 'replaced' };
    }
  }

  // 2. Room for another worker: start the target generation in the next slot that lacks it,
  //    empty slots first.
  if (live.length < count + rolling.surge) {
    let lacking: number | undefined;
    let empty: number | undefined;
    for (let s = 0; s < count && empty === undefined; s++) {
      if (newIn(s)) continue;
      lacking ??= s;
      if (!slots.has(s)) empty = s;
    }
    const slot = empty ?? lacking;
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

  let complete = old.length === 0;
  for (let s = 0; s < count && complete; s++) complete = readyNewIn(s);
  return complete ? { kind: 'done' } : { kind: 'wait' };
}

interface SlotFacts {
  /** A live worker of the target generation runs in the slot. */
  hasNew: boolean;
  /** ... and is ready. */
  readyNew: boolean;
  /** The ready worker of the slot with the highest (generation, id). */
  newestReady: WorkerRecord | undefined;
}

/** Per slot that holds a live worker: what the rolling policy asks about it. */
function slotIndex(live: readonly WorkerRecord[], target: number): Map<number, SlotFacts> {
  const slots = new Map<number, SlotFacts>();
  for (const w of live) {
    let f = slots.get(w.slot);
    if (!f) slots.set(w.slot, (f = { hasNew: false, readyNew: false, newestReady: undefined }));
    if (w.generation === target) f.hasNew = true;
    if (w.phase !== 'ready') continue;
    if (w.generation === target) f.readyNew = true;
    const top = f.newestReady;
    if (!top || w.generation > top.generation || (w.generation === top.generation && w.id > top.id)) f.newestReady = w;
  }
  return slots;
}

/** Number of slots of the group that already run a ready worker of `target` (`changing`: as for nextRollAction). */
export function rolledCount(group: GroupState, workers: readonly WorkerRecord[], target: number, changing?: (w: WorkerRecord) => boolean): number {
  const ix = changing ? rollIndex(workers, group.name, target, group.config.count, changing) : null;
  if (ix && !checking) return ix.readyNewSlots;
  const rolled = new Set<number>();
  for (const w of workers) {
    if (w.group === group.name && w.generation === target && w.phase === 'ready' && w.slot < group.config.count) rolled.add(w.slot);
  }
  if (ix) expectSame('rolledCount', ix.readyNewSlots, rolled.size);
  return rolled.size;
}
