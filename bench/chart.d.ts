// Types of bench/chart.js, for test/bench/quick.test.ts.
export interface ChartRun {
  label: string;
  buckets: Array<{ t: number; rps: number; p99: number; failed: number }>;
  windows?: Array<{ from: number; to: number }>;
  phases?: Array<{ from: number; to: number; label: string }>;
}
export function renderChart(opts: { title: string; subtitle?: string; bucketMs: number; runs: ChartRun[] }): string;
export function niceCeil(v: number): number;
export function esc(s: unknown): string;
