/**
 * The machine's armed timers (key -> due time) as a persistent table: a step
 * that sets or clears one timer copies one small bucket and the bucket list,
 * not every armed timer. With 1 024 workers starting, about 2 000 timers are
 * armed at once; copying them all on every step made start-up quadratic.
 * Tables are never changed in place (the property tests freeze the input state).
 */
const BUCKETS = 64;

export interface TimerTable {
  /** BUCKETS buckets, each key -> due time; a key lives in the bucket of its hash. */
  readonly buckets: readonly Readonly<Record<string, number>>[];
  readonly size: number;
}

const EMPTY_BUCKET: Readonly<Record<string, number>> = Object.freeze({});

export const NO_TIMERS: TimerTable = Object.freeze({ buckets: Object.freeze(Array.from({ length: BUCKETS }, () => EMPTY_BUCKET)), size: 0 });

function bucketOf(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0;
  return (h >>> 0) % BUCKETS;
}

export function timerDue(t: TimerTable, key: string): number | undefined {
  const b = t.buckets[bucketOf(key)]!;
  return Object.hasOwn(b, key) ? b[key] : undefined;
}

export function hasTimer(t: TimerTable, key: string): boolean {
  return Object.hasOwn(t.buckets[bucketOf(key)]!, key);
}

/** Every armed key (no particular order). */
export function timerKeys(t: TimerTable): string[] {
  const keys: string[] = [];
  for (const b of t.buckets) for (const k of Object.keys(b)) keys.push(k);
  return keys;
}

/** A table like t with key armed for due. */
export function withTimer(t: TimerTable, key: string, due: number): TimerTable {
  const i = bucketOf(key);
  const old = t.buckets[i]!;
  const buckets = t.buckets.slice();
  buckets[i] = { ...old, [key]: due };
  return { buckets, size: t.size + (Object.hasOwn(old, key) ? 0 : 1) };
}

/** A table like t without key (t itself when key is not armed). */
export function withoutTimer(t: TimerTable, key: string): TimerTable {
  const i = bucketOf(key);
  const old = t.buckets[i]!;
  if (!Object.hasOwn(old, key)) return t;
  const { [key]: _gone, ...rest } = old;
  const buckets = t.buckets.slice();
  buckets[i] = rest;
  return { buckets, size: t.size - 1 };
}
