/**
 * Coalesces workers' STATUS updates (ipc `{type: 'status'}` and notify
 * `STATUS=`) before they reach the state machine. A worker that sends one per
 * request would otherwise cost smoothd a full machine step per message.
 *
 * Per worker: the first update is delivered at once; updates within the next
 * `intervalMs` only replace the pending text, and the latest one is
 * delivered when the interval ends. So a worker gets at most one delivery per
 * interval and its last text is always delivered (at most `intervalMs` late).
 * An entry removes itself one quiet interval after its last delivery, so
 * workers that come and go leave nothing behind. Readiness flushes the
 * pending text first, so the state machine sees the text sent with READY=1.
 */

export interface CoalescerTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** At most one worker.status event per worker per this many ms. */
export const STATUS_INTERVAL_MS = 250;

interface Entry {
  pending: string | null;
  timer: unknown;
}

export class StatusCoalescer {
  private readonly entries = new Map<number, Entry>();

  constructor(
    private readonly deliver: (workerId: number, text: string) => void,
    private readonly timers: CoalescerTimers,
    private readonly intervalMs = STATUS_INTERVAL_MS,
  ) {}

  push(workerId: number, text: string): void {
    const entry = this.entries.get(workerId);
    if (entry) {
      entry.pending = text;
      return;
    }
    this.entries.set(workerId, { pending: null, timer: this.arm(workerId) });
    this.deliver(workerId, text);
  }

  /**
   * Delivers the worker's pending update now, if any (smoothd calls it when the
   * worker becomes ready, so `READY=1\nSTATUS=serving` shows "serving" at once).
   */
  flush(workerId: number): void {
    const entry = this.entries.get(workerId);
    if (!entry || entry.pending === null) return;
    const text = entry.pending;
    entry.pending = null;
    this.timers.clearTimeout(entry.timer);
    entry.timer = this.arm(workerId);
    this.deliver(workerId, text);
  }

  /** Updates waiting for their interval (for tests and diagnostics). */
  get waiting(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.pending !== null) n += 1;
    return n;
  }

  /** Drops every pending update and timer (smoothd is exiting). */
  closeAll(): void {
    for (const e of this.entries.values()) this.timers.clearTimeout(e.timer);
    this.entries.clear();
  }

  private arm(workerId: number): unknown {
    const handle = this.timers.setTimeout(() => this.tick(workerId), this.intervalMs);
    // A pending STATUS must never keep smoothd's process alive.
    (handle as { unref?: () => void } | null)?.unref?.();
    return handle;
  }

  private tick(workerId: number): void {
    const entry = this.entries.get(workerId);
    if (!entry) return;
    if (entry.pending === null) {
      this.entries.delete(workerId);
      return;
    }
    const text = entry.pending;
    entry.pending = null;
    entry.timer = this.arm(workerId);
    this.deliver(workerId, text);
  }
}
