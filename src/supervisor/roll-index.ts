/**
 * What the rolling policy asks about one group's live workers during a roll
 * to one target generation, kept up to date from one call to the next instead
 * of rebuilt from every worker on every decision (a roll of n workers makes
 * O(n) decisions; rebuilding made it O(n^2)).
 *
 * The index is a cache, never state: it is derived from the worker list it is
 * handed and answers exactly what a scan of that list answers (the tests check
 * it against policy.ts's scan after every step of random runs). It follows the
 * list by identity: the machine replaces a record when it changes one, appends
 * new workers and removes exited ones, so the list stays ordered by id and a
 * merge walk over the previous and the current list (pointer compares where
 * nothing changed) finds the records to update. A list that is not ordered by
 * id gets no index (null): the caller scans.
 *
 * A record the current step made (a copy it is changing, or a new worker) can
 * still change in place after the index read it: the caller says which records
 * those are (`changing`), the index remembers what it counted for them and
 * checks them again on every later call until a later step has taken over (from
 * then on a record never changes: a step copies a record before changing it).
 */
import type { WorkerRecord } from './types.js';

/** What the index counted for a record. */
interface Facts {
  live: boolean;
  ready: boolean;
  slot: number;
  generation: number;
}

function factsOf(w: WorkerRecord): Facts {
  return { live: w.phase === 'starting' || w.phase === 'ready', ready: w.phase === 'ready', slot: w.slot, generation: w.generation };
}

function sameFacts(a: Facts, b: Facts): boolean {
  return a.live === b.live && a.ready === b.ready && a.slot === b.slot && a.generation === b.generation;
}

interface SlotEntry {
  /** Live workers of the group in this slot (a slot holds one or two, rarely more). */
  members: WorkerRecord[];
  hasNew: boolean;
  readyNew: boolean;
  newestReady: WorkerRecord | undefined;
}

/** A set of slot numbers below `count` with its smallest member found from a lower bound. */
class SlotSet {
  private readonly bits: Uint8Array;
  private low = 0;
  size = 0;
  constructor(count: number) {
    this.bits = new Uint8Array(count);
  }
  set(slot: number, on: boolean): void {
    if (slot >= this.bits.length || (this.bits[slot] === 1) === on) return;
    this.bits[slot] = on ? 1 : 0;
    this.size += on ? 1 : -1;
    if (on && slot < this.low) this.low = slot;
  }
  /** The smallest slot in the set; amortised O(1) while slots leave it from the low end (a roll). */
  min(): number | undefined {
    if (this.size === 0) return undefined;
    while (this.bits[this.low] !== 1) this.low += 1;
    return this.low;
  }
}

export class RollIndex {
  /** The list this index reflects, as it was when last synced (the machine changes its list in place within a step). */
  private seen: WorkerRecord[] = [];
  private readonly slots = new Map<number, SlotEntry>();
  live = 0;
  ready = 0;
  /** Slots below count with a live worker of the target that is ready. */
  readyNewSlots = 0;
  /** Slots below count without a live worker of the target. */
  readonly lacking: SlotSet;
  /** Slots below count without any live worker. */
  readonly empty: SlotSet;
  /** Live old workers (another generation, or a slot at or beyond count). */
  readonly old = new Set<WorkerRecord>();
  /** Old workers whose slot is gone, or holds a ready replacement or a newer ready worker: step 1 of the policy. */
  readonly retirable = new Set<WorkerRecord>();
  /** Records read while the step that made them could still change them, with what was counted for them. */
  private readonly volatile = new Map<WorkerRecord, Facts>();

  constructor(
    readonly group: string,
    readonly target: number,
    readonly count: number,
  ) {
    this.lacking = new SlotSet(count);
    this.empty = new SlotSet(count);
    for (let s = 0; s < count; s++) {
      this.lacking.set(s, true);
      this.empty.set(s, true);
    }
  }

  hasNew(slot: number): boolean {
    return this.slots.get(slot)?.hasNew ?? false;
  }

  /** Brings the index up to `workers`; false when that list is not ordered by id (then it cannot follow it). */
  sync(workers: readonly WorkerRecord[], changing: (w: WorkerRecord) => boolean): boolean {
    for (const [w, counted] of this.volatile) {
      const now = factsOf(w);
      if (!sameFacts(now, counted)) {
        this.remove(w, counted);
        this.add(w, now);
      }
      if (changing(w)) this.volatile.set(w, now);
      else this.volatile.delete(w);
    }
    const seen = this.seen;
    let i = 0;
    let j = 0;
    let lastId = -Infinity;
    while (i < seen.length || j < workers.length) {
      const a = seen[i];
      const b = workers[j];
      if (a === b) {
        lastId = a!.id;
        i++;
        j++;
        continue;
      }
      if (b !== undefined && b.id <= lastId) return false;
      if (b === undefined || (a !== undefined && a.id < b.id)) {
        this.drop(a!);
        i++;
      } else if (a === undefined || b.id < a.id) {
        this.take(b, changing);
        lastId = b.id;
        j++;
      } else {
        this.drop(a);
        this.take(b, changing);
        lastId = b.id;
        i++;
        j++;
      }
    }
    this.seen = workers.slice();
    return true;
  }

  /** A record entered the list. */
  private take(w: WorkerRecord, changing: (w: WorkerRecord) => boolean): void {
    if (w.group !== this.group) return;
    const f = factsOf(w);
    if (changing(w)) this.volatile.set(w, f);
    this.add(w, f);
  }

  /** A record left the list. */
  private drop(w: WorkerRecord): void {
    if (w.group !== this.group) return;
    const counted = this.volatile.get(w);
    this.volatile.delete(w);
    this.remove(w, counted ?? factsOf(w));
  }

  private add(w: WorkerRecord, f: Facts): void {
    if (!f.live) return;
    let e = this.slots.get(f.slot);
    if (!e) this.slots.set(f.slot, (e = { members: [], hasNew: false, readyNew: false, newestReady: undefined }));
    e.members.push(w);
    this.live += 1;
    if (f.ready) this.ready += 1;
    if (f.generation !== this.target || f.slot >= this.count) this.old.add(w);
    this.refresh(f.slot, e);
  }

  private remove(w: WorkerRecord, f: Facts): void {
    if (!f.live) return;
    const e = this.slots.get(f.slot)!;
    e.members.splice(e.members.indexOf(w), 1);
    this.live -= 1;
    if (f.ready) this.ready -= 1;
    this.old.delete(w);
    this.retirable.delete(w);
    this.refresh(f.slot, e);
    if (e.members.length === 0) this.slots.delete(f.slot);
  }

  /** Recomputes one slot's facts from its members, and what depends on them. */
  private refresh(slot: number, e: SlotEntry): void {
    const wasReadyNew = e.readyNew;
    e.hasNew = false;
    e.readyNew = false;
    e.newestReady = undefined;
    for (const w of e.members) {
      if (w.generation === this.target) e.hasNew = true;
      if (w.phase !== 'ready') continue;
      if (w.generation === this.target) e.readyNew = true;
      const top = e.newestReady;
      if (!top || w.generation > top.generation || (w.generation === top.generation && w.id > top.id)) e.newestReady = w;
    }
    if (slot < this.count && wasReadyNew !== e.readyNew) this.readyNewSlots += e.readyNew ? 1 : -1;
    this.lacking.set(slot, !e.hasNew);
    this.empty.set(slot, e.members.length === 0);
    const top = e.newestReady;
    for (const w of e.members) {
      if (!this.old.has(w)) continue;
      const superseded = top !== undefined && (top.generation > w.generation || (top.generation === w.generation && top.id > w.id));
      if (slot >= this.count || e.readyNew || superseded) this.retirable.add(w);
      else this.retirable.delete(w);
    }
  }
}

/** The last indexes asked for: one per (group, target, count); a few, so rolls of several groups and tests do not thrash. */
const cache: RollIndex[] = [];
const CACHE_SIZE = 8;

/** The index of `group`'s live workers in `workers` for a roll to `target` with `count` slots, or null when `workers` is not ordered by id. */
export function rollIndex(
  workers: readonly WorkerRecord[],
  group: string,
  target: number,
  count: number,
  changing: (w: WorkerRecord) => boolean,
): RollIndex | null {
  const k = cache.findIndex((x) => x.group === group && x.target === target && x.count === count);
  const ix = k >= 0 ? cache[k]! : new RollIndex(group, target, count);
  if (k !== 0) {
    if (k > 0) cache.splice(k, 1);
    cache.unshift(ix);
    if (cache.length > CACHE_SIZE) cache.length = CACHE_SIZE;
  }
  if (ix.sync(workers, changing)) return ix;
  // Not ordered by id (or half-read when that showed): forget it, the next call reads afresh.
  cache.splice(cache.indexOf(ix), 1);
  return null;
}
