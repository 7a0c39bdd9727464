/**
 * Request counters for deploy verification (DESIGN §10): the kit counts every
 * finished HTTP response and those with status >= 500, and reports both,
 * cumulative, to smoothd about once a second while they change —
 * `{type: 'stats', requests, errors}` over IPC (`SMOOTHD_READY=ipc`), or
 * `X_SMOOTHD_REQUESTS=N` / `X_SMOOTHD_ERRORS=N` on NOTIFY_SOCKET
 * (`SMOOTHD_READY=notify`, sent with `systemd-notify`, since Node cannot send
 * unix datagrams). Outside smoothd nothing is sent.
 *
 * Counting costs two integer increments per response; the report is one
 * message a second at most, and none while nothing changes.
 */
import { execFile } from 'node:child_process';

export const REPORT_INTERVAL_MS = 1000;
/**
 * A busy worker reports early, once this many responses came since its last
 * report (at most every EARLY_MIN_GAP_MS): a canary answering 500s is judged
 * within a few dozen responses, not after a whole second of them.
 */
export const EARLY_REPORT_AFTER = 50;
export const EARLY_MIN_GAP_MS = 100;

const counts = { requests: 0, errors: 0 };
let sent = { requests: -1, errors: -1 };
let timer: NodeJS.Timeout | null = null;
let sending = false;
let sentAt = 0;

/** Count one finished response by its status code (the kit calls it for every HTTP response it sees). */
export function countResponse(status: number): void {
  counts.requests += 1;
  if (status >= 500) counts.errors += 1;
  if (timer !== null && !sending && counts.requests - sent.requests >= EARLY_REPORT_AFTER) {
    const now = Date.now();
    if (now - sentAt >= EARLY_MIN_GAP_MS) void reportStats();
  }
}

/** The counters so far (cumulative for this process). */
export function stats(): { requests: number; errors: number } {
  return { ...counts };
}

/** Sends the counters if they changed since the last report; resolves when it was handed over. */
export function reportStats(): Promise<void> {
  if (sending || (counts.requests === sent.requests && counts.errors === sent.errors)) return Promise.resolve();
  const now = { ...counts };
  const mode = process.env.SMOOTHD_READY;
  if (mode === 'ipc' && typeof process.send === 'function' && process.connected) {
    sending = true;
    return new Promise((resolve) => {
      process.send!({ type: 'stats', requests: now.requests, errors: now.errors }, undefined, undefined, (err: Error | null) => {
        sending = false;
        sentAt = Date.now();
        if (!err) sent = now;
        resolve();
      });
    });
  }
  if (mode === 'notify' && process.env.NOTIFY_SOCKET) {
    sending = true;
    return new Promise((resolve) => {
      const args = ['--no-block', `X_SMOOTHD_REQUESTS=${now.requests}`, `X_SMOOTHD_ERRORS=${now.errors}`];
      execFile('systemd-notify', args, { timeout: 5000 }, (err) => {
        sending = false;
        sentAt = Date.now();
        if (!err) sent = now;
        resolve();
      });
    });
  }
  return Promise.resolve();
}

let shedShare = 0;

/**
 * During a canary's bake smoothd asks the old workers to answer a share of
 * their responses with `Connection: close` (`{type: 'smoothd.shed', share}`):
 * keep-alive clients then reconnect, and the canary gets its share of them.
 */
export function shouldShed(): boolean {
  return shedShare > 0 && Math.random() < shedShare;
}

function onSupervisorMessage(m: unknown): void {
  if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'smoothd.shed') return;
  const share = (m as { share?: unknown }).share;
  if (typeof share === 'number' && share >= 0 && share <= 1) shedShare = share;
}

/** Starts the once-a-second report under smoothd (idempotent; never keeps the process alive). */
export function startStatsReporter(): void {
  if (timer !== null) return;
  if (typeof process.send === 'function') {
    process.on('message', onSupervisorMessage);
    // A 'message' listener refs the channel: it must not keep a drained worker alive.
    process.channel?.unref();
  }
  const mode = process.env.SMOOTHD_READY;
  if (mode !== 'ipc' && mode !== 'notify') return;
  timer = setInterval(() => void reportStats(), REPORT_INTERVAL_MS);
  timer.unref();
}
