import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { formatDuration, MAX_DURATION_MS, parseDuration } from '../../src/config/duration.js';

describe('parseDuration', () => {
  it.each([
    [0, 0],
    [250, 250],
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['1.234s', 1234],
    ['.5s', 500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    [' 10s ', 10_000],
    ['0s', 0],
  ])('reads %j as %d ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each([
    [-1, /cannot be negative/],
    ['-5s', /cannot be negative/],
    [1.5, /whole number of milliseconds/],
    [Number.NaN, /expected a duration/],
    [Number.POSITIVE_INFINITY, /expected a duration/],
    ['500', /needs a unit, e.g. "500ms"/],
    ['10 seconds', /ms, s, m or h/],
    ['5d', /ms, s, m or h/],
    ['1.5ms', /whole number of milliseconds/],
    ['', /expected a duration/],
    ['30S', /expected a duration/],
    [true, /expected a duration/],
    [null, /expected a duration/],
    ['25d', /ms, s, m or h/],
    ['600h', /longest allowed is 2147483647ms/],
    [MAX_DURATION_MS + 1, /longest allowed/],
  ])('refuses %j with a message saying what is allowed', (input, pattern) => {
    const result = parseDuration(input);
    expect(typeof result).toBe('string');
    expect(result).toMatch(pattern);
  });

  it('accepts the largest duration a Node timer can wait', () => {
    expect(parseDuration(MAX_DURATION_MS)).toBe(MAX_DURATION_MS);
  });

  it('formats durations with the largest exact unit', () => {
    expect(formatDuration(0)).toBe('0ms');
    expect(formatDuration(999)).toBe('999ms');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(30_000)).toBe('30s');
    expect(formatDuration(120_000)).toBe('2m');
    expect(formatDuration(7_200_000)).toBe('2h');
  });

  it('round-trips every valid duration through formatDuration', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_DURATION_MS }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
        expect(parseDuration(ms)).toBe(ms);
      }),
    );
  });

  it('reads any integer amount with each unit exactly', () => {
    const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
    fc.assert(
      fc.property(fc.constantFrom('ms', 's', 'm', 'h'), fc.integer({ min: 0, max: 500 }), (unit, amount) => {
        expect(parseDuration(`${amount}${unit}`)).toBe(amount * units[unit as keyof typeof units]);
      }),
    );
  });
});
