import { describe, expect, it } from 'vitest';
import type { VerifyPolicy } from '../../src/config/types.js';
import { bakeVerdict, failureReason, judge, since } from '../../src/supervisor/verify.js';

const policy = (o: Partial<VerifyPolicy> = {}): VerifyPolicy => ({ bakeMs: 0, maxErrorRate: 0.05, minRequests: 20, watchMs: 0, ...o });

describe('judge: one new worker on its counters since ready', () => {
  it('is off without maxErrorRate', () => {
    expect(judge(policy({ maxErrorRate: null }), { requests: 1000, errors: 1000 })).toBe('off');
  });

  it('waits for minRequests responses', () => {
    expect(judge(policy(), { requests: 19, errors: 19 })).toBe('insufficient-data');
    expect(judge(policy(), { requests: 20, errors: 19 })).toBe('failed');
  });

  it('fails only when the share is strictly greater than maxErrorRate', () => {
    expect(judge(policy(), { requests: 100, errors: 5 })).toBe('ok');
    expect(judge(policy(), { requests: 100, errors: 6 })).toBe('failed');
    expect(judge(policy({ maxErrorRate: 0 }), { requests: 20, errors: 0 })).toBe('ok');
    expect(judge(policy({ maxErrorRate: 0 }), { requests: 20, errors: 1 })).toBe('failed');
  });
});

describe('bakeVerdict', () => {
  it('passes a bake without an error budget (exits alone are judged)', () => {
    expect(bakeVerdict(policy({ maxErrorRate: null, bakeMs: 1000 }), { requests: 0, errors: 0 })).toBe('passed');
  });
  it('says insufficient-data when the canary saw too little traffic, and failed over budget', () => {
    expect(bakeVerdict(policy(), { requests: 3, errors: 0 })).toBe('insufficient-data');
    expect(bakeVerdict(policy(), { requests: 50, errors: 6 })).toBe('failed');
    expect(bakeVerdict(policy(), { requests: 50, errors: 2 })).toBe('passed');
  });
});

describe('since, failureReason', () => {
  it('subtracts a baseline, and survives a counter that went backwards', () => {
    expect(since({ requests: 30, errors: 4 }, { requests: 10, errors: 1 })).toEqual({ requests: 20, errors: 3 });
    expect(since({ requests: 5, errors: 0 }, { requests: 10, errors: 1 })).toEqual({ requests: 5, errors: 0 });
  });
  it('puts the canary beside the old workers', () => {
    expect(failureReason(policy(), { requests: 50, errors: 6 }, { requests: 1000, errors: 1 })).toBe(
      'answered 12.0% errors (6 of 50), above maxErrorRate 5.0%; old workers over the same window: 0.1% errors (1 of 1000)',
    );
  });
});
