/**
 * The timer table's promise (src/supervisor/timers.ts): a step that arms or
 * clears one timer copies one small bucket, because the keys the machine uses
 * spread over the buckets. A table whose keys piled into a few buckets would
 * still answer right, but make a 1 024-worker start-up quadratic again.
 */
import { describe, expect, it } from 'vitest';
import { NO_TIMERS, timerDue, withTimer } from '../../src/supervisor/timers.js';

describe('timer table buckets', () => {
  it('the ready and kill timers of 1 024 workers spread over the 64 buckets, none holding more than 3 times its share', () => {
    let t = NO_TIMERS;
    for (let i = 1; i <= 1024; i++) {
      t = withTimer(t, `ready:${i}`, i);
      t = withTimer(t, `kill:${i}`, i + 1);
    }
    const sizes = t.buckets.map((b) => Object.keys(b).length);
    expect(sizes).toHaveLength(64);
    expect(t.size).toBe(2048);
    // Measured: 62 of 64 buckets used, the fullest holds 74 keys (the share is 32).
    expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(56);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(96);
    expect(timerDue(t, 'ready:1024')).toBe(1024);
    expect(timerDue(t, 'kill:1024')).toBe(1025);
  });

  it('arming one timer copies only its own bucket: every other bucket is the same object as before', () => {
    let t = NO_TIMERS;
    for (let i = 1; i <= 256; i++) t = withTimer(t, `ready:${i}`, i);
    const next = withTimer(t, 'kill:7', 5);
    const changed = next.buckets.filter((b, i) => b !== t.buckets[i]);
    expect(changed).toHaveLength(1);
    expect(changed[0]!['kill:7']).toBe(5);
  });
});
