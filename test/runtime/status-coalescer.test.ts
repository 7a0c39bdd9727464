import { describe, expect, it } from 'vitest';
import { StatusCoalescer, type CoalescerTimers } from '../../src/runtime/status-coalescer.js';

/** A hand-driven clock: timers fire only when the test advances time. */
function fakeTimers(): CoalescerTimers & { advance(ms: number): void; pending(): number } {
  let now = 0;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(h) {
      timers.delete(h as number);
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const next = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!next) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = until;
    },
    pending: () => timers.size,
  };
}

describe('StatusCoalescer', () => {
  it('delivers the first update at once, then at most one per 250 ms, always the latest', () => {
    const t = fakeTimers();
    const got: Array<[number, number, string]> = [];
    const c = new StatusCoalescer((id, text) => got.push([t.now(), id, text]), t);
    c.push(1, 'a');
    expect(got).toEqual([[0, 1, 'a']]);
    // 1000 updates within the first interval: none delivered until it ends, then only the last.
    for (let i = 0; i < 1000; i++) c.push(1, `req ${i}`);
    expect(got).toHaveLength(1);
    t.advance(250);
    expect(got).toEqual([
      [0, 1, 'a'],
      [250, 1, 'req 999'],
    ]);
    // A flood of one update per ms for 1 s: 4 deliveries, the last text among them.
    for (let ms = 0; ms < 1000; ms++) {
      c.push(1, `tick ${ms}`);
      t.advance(1);
    }
    t.advance(250);
    const flood = got.slice(2);
    expect(flood.length).toBeLessThanOrEqual(5);
    expect(flood.at(-1)?.[2]).toBe('tick 999');
    for (let i = 1; i < got.length; i++) expect(got[i]![0] - got[i - 1]![0]).toBeGreaterThanOrEqual(250);
  });

  it('keeps workers apart and forgets a worker one quiet interval after its last delivery', () => {
    const t = fakeTimers();
    const got: string[] = [];
    const c = new StatusCoalescer((id, text) => got.push(`${id}:${text}`), t);
    c.push(1, 'x');
    c.push(2, 'y');
    c.push(1, 'x2');
    expect(got).toEqual(['1:x', '2:y']);
    t.advance(250);
    expect(got).toEqual(['1:x', '2:y', '1:x2']);
    t.advance(250);
    expect(t.pending()).toBe(0);
    // After the quiet interval a new update goes out at once again.
    c.push(1, 'later');
    expect(got.at(-1)).toBe('1:later');
  });

  it('flush delivers the pending text at once (readiness) and starts a new interval', () => {
    const t = fakeTimers();
    const got: Array<[number, string]> = [];
    const c = new StatusCoalescer((_id, text) => got.push([t.now(), text]), t);
    c.push(1, 'warming up');
    t.advance(10);
    c.push(1, 'serving');
    c.flush(1);
    expect(got).toEqual([
      [0, 'warming up'],
      [10, 'serving'],
    ]);
    c.push(1, 'busy');
    t.advance(249);
    expect(got).toHaveLength(2);
    t.advance(1);
    expect(got.at(-1)).toEqual([260, 'busy']);
    c.flush(2); // nothing pending for an unknown worker: no delivery
    expect(got).toHaveLength(3);
  });

  it('closeAll drops pending updates and timers', () => {
    const t = fakeTimers();
    const got: string[] = [];
    const c = new StatusCoalescer((_id, text) => got.push(text), t);
    c.push(1, 'a');
    c.push(1, 'b');
    expect(c.waiting).toBe(1);
    c.closeAll();
    expect(t.pending()).toBe(0);
    t.advance(1000);
    expect(got).toEqual(['a']);
  });
});
