/**
 * Workers' rssBytes come from a background sampler (src/runtime/rss-sampler.ts):
 * a status request never reads /proc, each tick reads at most one slice of
 * workers, every worker is re-read within a sweep, and a real worker's growth
 * shows in status after the sampler's period.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { IsoCache } from '../../src/runtime/iso-cache.js';
import { RssSampler, type SamplerTimers } from '../../src/runtime/rss-sampler.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { startRuntime } from './start-runtime.js';

const GROW = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/grow-worker.mjs');

/** Timers run by hand: `fire()` runs the one pending timer and returns its delay. */
function manualTimers(): SamplerTimers & { pending: number; fire(): number } {
  const queue: Array<{ fn: () => void; ms: number }> = [];
  return {
    setTimeout: (fn, ms) => {
      const t = { fn, ms };
      queue.push(t);
      return t;
    },
    clearTimeout: (h) => {
      const i = queue.indexOf(h as { fn: () => void; ms: number });
      if (i >= 0) queue.splice(i, 1);
    },
    get pending() {
      return queue.length;
    },
    fire() {
      const t = queue.shift();
      if (!t) throw new Error('no timer pending');
      t.fn();
      return t.ms;
    },
  };
}

function countingReader(): { read(pid: number): number; reads: Map<number, number>; total(): number } {
  const reads = new Map<number, number>();
  return {
    reads,
    read: (pid) => {
      reads.set(pid, (reads.get(pid) ?? 0) + 1);
      return pid * 4096;
    },
    total: () => [...reads.values()].reduce((a, b) => a + b, 0),
  };
}

describe('RssSampler', () => {
  it('reads a worker once when it starts; get() never reads', () => {
    const r = countingReader();
    const s = new RssSampler(r.read, manualTimers());
    s.track(7);
    expect(r.total()).toBe(1);
    for (let i = 0; i < 100; i++) expect(s.get(7)).toBe(7 * 4096);
    expect(r.total()).toBe(1);
    expect(s.get(8)).toBeNull();
  });

  it('refresh() (a worker reported ready) reads that worker again at once; an unknown or exited pid is not read', () => {
    let rss = 1000;
    const reads: number[] = [];
    const s = new RssSampler((pid) => (reads.push(pid), rss), manualTimers());
    s.track(7);
    rss = 5000; // it grew while it started
    expect(s.get(7)).toBe(1000);
    s.refresh(7);
    expect(s.get(7)).toBe(5000);
    s.refresh(8);
    s.forget(7);
    s.refresh(7);
    expect(reads).toEqual([7, 7]);
    expect(s.get(7)).toBeNull();
  });

  it('1 024 workers: each tick reads one slice of 32, ticks 100 ms apart, every worker re-read in one sweep of 32 ticks', () => {
    const r = countingReader();
    const t = manualTimers();
    const s = new RssSampler(r.read, t);
    for (let pid = 1; pid <= 1024; pid++) s.track(pid);
    expect(t.pending).toBe(1);
    // The new workers are read again first, a slice per 100 ms.
    for (let tick = 0; tick < 32; tick++) {
      const before = r.total();
      expect(t.fire()).toBe(100);
      expect(r.total() - before).toBe(32);
    }
    r.reads.clear();
    for (let tick = 0; tick < 32; tick++) {
      const before = r.total();
      expect(t.fire()).toBe(100);
      expect(r.total() - before).toBe(32);
    }
    expect(r.reads.size).toBe(1024);
    expect([...r.reads.values()].every((n) => n === 1)).toBe(true);
  });

  it('a new worker is read again 100 ms after it started, even while a slow tick is armed', () => {
    const r = countingReader();
    const t = manualTimers();
    const s = new RssSampler(r.read, t);
    s.track(1);
    t.fire();
    r.reads.clear();
    s.track(2); // the armed tick was 2 s away
    expect(t.pending).toBe(1);
    expect(t.fire()).toBe(100);
    expect([...r.reads.entries()]).toEqual([[2, 2]]);
  });

  it('a few workers: one tick per sweep (2 s) reads them all', () => {
    const r = countingReader();
    const t = manualTimers();
    const s = new RssSampler(r.read, t);
    for (const pid of [10, 11, 12]) s.track(pid);
    expect(t.fire()).toBe(100); // the second read of new workers
    r.reads.clear();
    expect(t.fire()).toBe(2000);
    expect([...r.reads.entries()].sort()).toEqual([
      [10, 1],
      [11, 1],
      [12, 1],
    ]);
  });

  it('an exited worker is no longer read, and no timer runs once none is left', () => {
    const r = countingReader();
    const t = manualTimers();
    const s = new RssSampler(r.read, t);
    s.track(1);
    s.track(2);
    s.forget(1);
    r.reads.clear();
    t.fire();
    expect([...r.reads.keys()]).toEqual([2]);
    t.fire();
    expect([...r.reads.keys()]).toEqual([2]);
    expect(s.get(1)).toBeNull();
    s.forget(2);
    expect(t.pending).toBe(0);
  });
});

describe('IsoCache', () => {
  it('formats like Date#toISOString and stays bounded', () => {
    const c = new IsoCache(4);
    for (let i = 0; i < 10; i++) expect(c.format(1_700_000_000_000 + i)).toBe(new Date(1_700_000_000_000 + i).toISOString());
    expect(c.size).toBeLessThanOrEqual(4);
  });
});

let cleanup: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});


function workers(runtime: Runtime): Array<{ pid: number | null; rssBytes: number | null }> {
  return runtime.status().groups.flatMap((g) => g.workers);
}

describe('status and the RSS sampler (real workers)', () => {
  it('status does not read /proc: 100 status requests make no read; rssBytes shows the sampled value', async () => {
    const r = countingReader();
    const runtime = await startRuntime(`groups:\n  s:\n    command: [sleep, infinity]\n    count: 3\n    ready: 50ms\n`, cleanup, {
      readRss: r.read,
      rssSampling: { sweepMs: 3_600_000, minTickMs: 3_600_000 }, // no background tick during the test
    });
    const ws = workers(runtime);
    expect(ws).toHaveLength(3);
    const readsAfterStart = r.total();
    expect(readsAfterStart).toBe(3); // one per worker, when it started
    for (let i = 0; i < 100; i++) runtime.status();
    expect(r.total()).toBe(readsAfterStart);
    for (const w of ws) expect(w.rssBytes).toBe(w.pid! * 4096);
  });

  it('a worker that grows by 64 MiB shows it in rssBytes after the sampler period (default settings, /proc)', async () => {
    const runtime = await startRuntime(`groups:\n  g:\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(GROW)}]\n    ready: ipc\n`, cleanup, {});
    const [w] = workers(runtime);
    expect(w!.pid).not.toBeNull();
    const start = await waitFor('a first rssBytes above 1 MiB', () => {
      const v = workers(runtime)[0]?.rssBytes ?? null;
      return v !== null && v > 1024 * 1024 ? v : null;
    });
    process.kill(w!.pid!, 'SIGUSR1');
    const grown = await waitFor('rssBytes to grow by 48 MiB', () => {
      const v = workers(runtime)[0]?.rssBytes ?? null;
      return v !== null && v > start + 48 * 1024 * 1024 ? v : null;
    });
    expect(grown).toBeGreaterThan(start);
  });
});

async function waitFor<T>(what: string, fn: () => T | null, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
