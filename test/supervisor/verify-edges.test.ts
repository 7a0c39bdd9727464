import { describe, expect, it } from 'vitest';
import { since } from '../../src/supervisor/verify.js';

// A worker that restarted its counters (or reset one of them) reports values
// below the baseline: the newer report then counts alone, whichever of the two
// counters went backwards.
describe('since: a counter that went backwards', () => {
  it('takes the newer report alone when only requests went backwards', () => {
    expect(since({ requests: 5, errors: 3 }, { requests: 10, errors: 1 })).toStrictEqual({ requests: 5, errors: 3 });
  });

  it('takes the newer report alone when only errors went backwards', () => {
    expect(since({ requests: 40, errors: 1 }, { requests: 10, errors: 4 })).toStrictEqual({ requests: 40, errors: 1 });
  });

  it('subtracts when neither went backwards, equal counters included', () => {
    expect(since({ requests: 10, errors: 4 }, { requests: 10, errors: 4 })).toStrictEqual({ requests: 0, errors: 0 });
  });

  it('returns a copy, not the report it was given', () => {
    const now = { requests: 1, errors: 0 };
    const out = since(now, { requests: 2, errors: 0 });
    expect(out).not.toBe(now);
    expect(out).toStrictEqual(now);
  });
});
