/**
 * Deploy verification's judgement (DESIGN §10), as data in and verdict out:
 * the counters a new worker reported since it became ready, the group's
 * policy, and nothing else. The machine decides when to ask; this module only
 * answers, so the rules are tested on their own.
 */
import type { VerifyPolicy } from '../config/types.js';

/** Cumulative responses and responses with status >= 500, as a worker reports them. */
export interface Counters {
  requests: number;
  errors: number;
}

export const ZERO: Counters = { requests: 0, errors: 0 };

/** The verdict on a group's verification, as the report shows it. */
export type Verdict = 'passed' | 'failed' | 'insufficient-data' | 'off';

/** What one judgement of one new worker says. */
export type Judgement = 'ok' | 'failed' | 'insufficient-data' | 'off';

/** The counters between two reports of the same worker (a counter never goes backwards; if it did, the newer value counts alone). */
export function since(now: Counters, base: Counters): Counters {
  if (now.requests < base.requests || now.errors < base.errors) return { ...now };
  return { requests: now.requests - base.requests, errors: now.errors - base.errors };
}

export function add(a: Counters, b: Counters): Counters {
  return { requests: a.requests + b.requests, errors: a.errors + b.errors };
}

/**
 * One new worker on its counters since it became ready: it fails when it has
 * at least `minRequests` responses and its share of errors is strictly
 * greater than `maxErrorRate`.
 */
export function judge(p: VerifyPolicy, c: Counters): Judgement {
  if (p.maxErrorRate === null) return 'off';
  if (c.requests < p.minRequests) return 'insufficient-data';
  return c.errors / c.requests > p.maxErrorRate ? 'failed' : 'ok';
}

/** The verdict of a bake that ran its full length without an exit. */
export function bakeVerdict(p: VerifyPolicy, canary: Counters): Verdict {
  switch (judge(p, canary)) {
    case 'off':
      return 'passed';
    case 'insufficient-data':
      return 'insufficient-data';
    case 'failed':
      return 'failed';
    case 'ok':
      return 'passed';
  }
}

/** "12.0% errors (6 of 50)" */
export function describeRate(c: Counters): string {
  if (c.requests === 0) return 'no responses';
  return `${((100 * c.errors) / c.requests).toFixed(1)}% errors (${c.errors} of ${c.requests})`;
}

/** Why a new worker failed its judgement, with the old workers' figures beside it. */
export function failureReason(p: VerifyPolicy, worker: Counters, old: Counters): string {
  return (
    `answered ${describeRate(worker)}, above maxErrorRate ${(100 * (p.maxErrorRate ?? 0)).toFixed(1)}%; ` +
    `old workers over the same window: ${describeRate(old)}`
  );
}
