// Types of bench/stats.js, for test/bench/quick.test.ts (the benchmark itself is plain JS).
export interface Records {
  n: number;
  t: Float64Array;
  lat: Float32Array;
  kind: Uint8Array;
}
export interface Window {
  from: number;
  to: number;
}
export interface WindowStats {
  requests: number;
  ok: number;
  failed: number;
  failures: Record<string, number>;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
export interface Bucket {
  t: number;
  rps: number;
  p99: number;
  failed: number;
}
export interface Overhead {
  durationMs: number;
  overheadMs: number;
  workerMs: number;
  replaced: number;
  overheadPerWorkerMs: number;
  overheadInclSpawnMs: number;
  overheadInclSpawnPerWorkerMs: number;
  configMs: number;
  spawnMs: number[];
  path: Array<Record<string, unknown>>;
}
export const KIND: Readonly<{ OK: 0; NON_2XX: 1; ERROR: 2; TIMEOUT: 3; DROPPED: 4; HUNG: 5; UNSENT: 6 }>;
export const KIND_NAMES: string[];
export function percentile(sorted: ArrayLike<number>, p: number): number;
export function sortedCopy(values: Iterable<number> | ArrayLike<number>): Float64Array;
export function median(values: Iterable<number> | ArrayLike<number>): number;
export function spread(values: Iterable<number> | ArrayLike<number>): { min: number; median: number; max: number; mean: number; n: number };
export function windowStats(records: Records, from: number, to: number, windows?: Window[] | null): WindowStats;
export function inWindows(t: number, windows: Window[]): boolean;
export function buckets(records: Records, from: number, to: number, bucketMs: number): Bucket[];
export interface ProfileBin {
  offsetMs: number;
  requests: number;
  p50: number;
  p99: number;
}
export function alignedProfile(records: Records, anchors: number[], fromMs: number, toMs: number, binMs: number): ProfileBin[];
export function reloadOverhead(entries: Array<Record<string, unknown> & { time: string; msg: string }>, startMs: number, endMs: number, reloadId?: number | null): Overhead | null;
export function cpuTicks(statText: string): number;
export function procKb(text: string, names: string[]): Record<string, number>;
export function childTicks(statText: string): number;
export function machineTicks(procStatText: string): { busy: number; total: number };
