import { describe, it, expect } from 'vitest';
import { hasTimer, NO_TIMERS, timerDue, timerKeys, withoutTimer, withTimer } from '../../src/supervisor/timers.js';

describe('timer table', () => {
  it('sets, replaces and clears keys without changing the table it was given', () => {
    const a = withTimer(NO_TIMERS, 'ready:1', 100);
    const b = withTimer(a, 'kill:2', 200);
    const c = withTimer(b, 'ready:1', 150);
    expect(timerDue(a, 'ready:1')).toBe(100);
    expect(timerDue(c, 'ready:1')).toBe(150);
    expect(c.size).toBe(2);
    expect(timerKeys(c).sort()).toEqual(['kill:2', 'ready:1']);
    const d = withoutTimer(c, 'ready:1');
    expect(hasTimer(d, 'ready:1')).toBe(false);
    expect(hasTimer(c, 'ready:1')).toBe(true);
    expect(d.size).toBe(1);
    expect(withoutTimer(d, 'absent')).toBe(d);
    expect(timerKeys(NO_TIMERS)).toEqual([]);
  });

  it('never reports inherited names such as constructor or toString as armed', () => {
    expect(hasTimer(NO_TIMERS, 'constructor')).toBe(false);
    expect(timerDue(NO_TIMERS, 'toString')).toBeUndefined();
  });

  it('keeps 2 000 keys like a plain map would', () => {
    let t = NO_TIMERS;
    const ref = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const key = i % 3 === 0 ? `ready:${i}` : `kill:${i >> 1}`;
      t = withTimer(t, key, i);
      ref.set(key, i);
      if (i % 7 === 0) {
        const gone = `ready:${i - 21}`;
        t = withoutTimer(t, gone);
        ref.delete(gone);
      }
    }
    expect(t.size).toBe(ref.size);
    expect(timerKeys(t).sort()).toEqual([...ref.keys()].sort());
    for (const [k, v] of ref) expect(timerDue(t, k)).toBe(v);
  });
});
