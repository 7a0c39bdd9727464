/**
 * bootNice's give-back deadline (boot-nice.ts): a worker still booting when
 * its deadline (half its readyTimeout) passes gets its
 * normal priority back and a log line says so; a worker that got ready, or
 * exited, before then has its timer cleared. Real processes, fake timers.
 */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { BootPriority, type BootTimers } from '../../src/runtime/boot-nice.js';
import { logger, sleeper } from './boot-nice-fixture.js';

/** Timers that fire only when the test says so. */
function fakeTimers(): BootTimers & { pending: Map<number, { fn: () => void; ms: number }>; fire(): void } {
  const pending = new Map<number, { fn: () => void; ms: number }>();
  let next = 1;
  return {
    pending,
    setTimeout: (fn, ms) => {
      pending.set(next, { fn, ms });
      return next++;
    },
    clearTimeout: (h) => void pending.delete(h as number),
    fire() {
      const all = [...pending.values()];
      pending.clear();
      for (const t of all) t.fn();
    },
  };
}

function setup() {
  const { log, lines } = logger();
  const timers = fakeTimers();
  // Autogroups are left out (mayChangeAutogroups false): this is about the thread priority and the timer.
  const bp = new BootPriority(log, { mayLowerTo: () => true, mayChangeAutogroups: () => false, timers });
  return { bp, timers, lines: () => lines.filter((l) => String(l.msg).startsWith('worker still booting')) };
}

describe('bootNice give-back deadline', () => {
  it('a worker still booting at its deadline gets its normal priority back, and the log says so', () => {
    const { bp, timers, lines } = setup();
    const pid = sleeper(true);
    const base = os.getPriority(pid);
    bp.lower(1, pid, 'web', 10, 10000);
    expect(os.getPriority(pid)).toBe(base + 10);
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([5000]);
    timers.fire();
    expect(os.getPriority(pid)).toBe(base);
    expect(bp.pending).toEqual([]);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatchObject({ group: 'web', workerId: 1, pid, bootNice: 10, afterMs: 5000, level: 30 });
    expect(String(lines()[0]!.msg)).toContain('half its readyTimeout (5000 ms)');
  });

  it('a worker ready or gone before its deadline has its timer cleared: nothing fires later', () => {
    const { bp, timers, lines } = setup();
    const ready = sleeper(true);
    const gone = sleeper(true);
    bp.lower(1, ready, 'web', 10, 10000);
    bp.lower(2, gone, 'web', 10, 10000);
    expect(timers.pending.size).toBe(2);
    bp.restore(1);
    bp.forget(2);
    expect(timers.pending.size).toBe(0);
    expect(lines()).toHaveLength(0);
  });

  it('no deadline: the priority stays low until ready', () => {
    const { bp, timers } = setup();
    const pid = sleeper(true);
    bp.lower(1, pid, 'web', 10);
    expect(timers.pending.size).toBe(0);
    expect(bp.pending).toEqual([1]);
  });
});
