// Types of bench/experiment.js, for test/bench/experiment.test.ts.
type Spread = { min: number; median: number; max: number; mean: number; n: number };
export interface Experiment {
  title: string;
  keepAlive: boolean[];
  /** Variant name -> change to the example's group; the first is the baseline. */
  variants: Record<string, Record<string, unknown> & { env?: Record<string, string> }>;
}
export const EXPERIMENTS: Record<string, Experiment>;
export interface Trial {
  round: number;
  keepAlive: boolean;
  variant: string;
}
export function trialPlan(name: string, trials: number): Trial[];
export function applyVariant(group: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown>;
export function trialFigures(closed: unknown, open: unknown): Record<string, number>;
export const FIGURES: Array<[string, string]>;
export function summarize(results: Array<Trial & { figures: Record<string, number> }>): Record<string, Record<string, Record<string, Spread>>>;
export function summaryText(summary: ReturnType<typeof summarize>): string;
