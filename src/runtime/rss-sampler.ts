/**
 * Samples the workers' resident memory (`rssBytes` in status) in the
 * background, so a status request never waits on /proc. Reading
 * /proc/PID/statm costs tens of microseconds per worker; at 1 024 workers a
 * status that read them all blocked the event loop for ~45 ms.
 *
 * Each worker is read once when it starts (so its rssBytes is never null
 * while it lives; that first value is its exec wrapper's), again one
 * `minTickMs` later (by then it runs its own program) and when it reports
 * ready (the runtime calls refresh()), then round-robin in
 * slices of at most `slice` workers per tick. Ticks are `sweepMs / number of slices` apart, but never closer than
 * `minTickMs`: so every worker is re-read about every `sweepMs` (2 s) up to
 * `slice * sweepMs / minTickMs` workers (640), and every `n / slice *
 * minTickMs` above (3.2 s at 1 024), while no tick blocks the loop for more
 * than `slice` reads. The timer is unref'd and only runs while workers exist.
 */

export interface SamplerTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RssSamplerOptions {
  /** Target time between two reads of the same worker. */
  sweepMs?: number;
  /** Most workers read in one tick. */
  slice?: number;
  /** Least time between two ticks. */
  minTickMs?: number;
}

export const RSS_SWEEP_MS = 2000;
export const RSS_SLICE = 32;
export const RSS_MIN_TICK_MS = 100;

export class RssSampler {
  private readonly order: number[] = [];
  /** Started since the last tick: read again at the next one, which comes `minTickMs` after a start. */
  private fresh: number[] = [];
  private timerFast = false;
  private readonly values = new Map<number, number | null>();
  private cursor = 0;
  private timer: unknown = null;
  private readonly sweepMs: number;
  private readonly slice: number;
  private readonly minTickMs: number;

  constructor(
    private readonly read: (pid: number) => number | null,
    private readonly timers: SamplerTimers,
    opts: RssSamplerOptions = {},
  ) {
    this.sweepMs = opts.sweepMs ?? RSS_SWEEP_MS;
    this.slice = opts.slice ?? RSS_SLICE;
    this.minTickMs = opts.minTickMs ?? RSS_MIN_TICK_MS;
  }

  /** A worker started: read it now, then with the others. */
  track(pid: number): void {
    if (!this.values.has(pid)) this.order.push(pid);
    this.values.set(pid, this.read(pid));
    this.fresh.push(pid);
    if (this.timer !== null && !this.timerFast) this.stop();
    this.arm();
  }

  /**
   * A worker reported ready: read it again now. A program's memory grows most
   * while it starts, so the value right after ready (what an operator looks at
   * after a reload) is its own, not one from early in its start-up.
   */
  refresh(pid: number): void {
    if (this.values.has(pid)) this.values.set(pid, this.read(pid));
  }

  /** A worker exited: no more reads of its pid. */
  forget(pid: number): void {
    if (!this.values.delete(pid)) return;
    if (this.fresh.includes(pid)) this.fresh = this.fresh.filter((p) => p !== pid);
    const i = this.order.indexOf(pid);
    const last = this.order.pop()!;
    if (i < this.order.length) this.order[i] = last;
    if (this.order.length === 0) this.stop();
  }

  /** The last sampled resident memory of `pid` in bytes; null when unknown. Never reads /proc. */
  get(pid: number): number | null {
    return this.values.get(pid) ?? null;
  }

  /** Time between two ticks for the workers tracked now. */
  get tickMs(): number {
    const slices = Math.max(1, Math.ceil(this.order.length / this.slice));
    return Math.max(this.minTickMs, Math.ceil(this.sweepMs / slices));
  }

  stop(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.timer !== null || this.order.length === 0) return;
    this.timerFast = this.fresh.length > 0;
    const handle = this.timers.setTimeout(() => this.tick(), this.timerFast ? this.minTickMs : this.tickMs);
    // Sampling must never keep smoothd's process alive.
    (handle as { unref?: () => void } | null)?.unref?.();
    this.timer = handle;
  }

  private tick(): void {
    this.timer = null;
    if (this.fresh.length > 0) {
      // New workers first (a slice of them), the round-robin resumes once none is left.
      for (const pid of this.fresh.splice(0, this.slice)) this.values.set(pid, this.read(pid));
      this.arm();
      return;
    }
    const n = Math.min(this.slice, this.order.length);
    for (let k = 0; k < n; k++) {
      if (this.cursor >= this.order.length) this.cursor = 0;
      const pid = this.order[this.cursor++]!;
      this.values.set(pid, this.read(pid));
    }
    this.arm();
  }
}
