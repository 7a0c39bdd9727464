/**
 * The log's way out to stdout: a pino destination that never blocks the
 * event loop, whatever the reader of stdout does.
 *
 * A reader that stalls (journald under I/O pressure, `smoothd | less`, a hung
 * log shipper) must not stall the supervisor: `status`, reloads, crash
 * restarts and the systemd watchdog all run on the same loop. So lines are
 * written with a non-blocking write; what the reader does not take yet waits
 * in a buffer bounded in bytes (4 MiB by default); a line that does not fit is
 * dropped whole and counted, and so is every line after it until the reader
 * has taken the whole buffer; then one warning says how many lines were lost,
 * at the place in the log where they are missing.
 *
 * How fd 1 is written:
 * - a pipe or socket (journald, `| less`): Node puts it in O_NONBLOCK when
 *   `process.stdout` is first touched; then `writeSync` returns at once,
 *   EAGAIN included, and a timer retries what is left.
 * - a regular file: plain `writeSync` (file writes do not wait on a reader).
 * - a terminal, /dev/null, or a pipe that stayed blocking: `fs.write` on the
 *   thread pool, one write at a time, so a stopped terminal holds one pool
 *   thread and never the loop.
 *
 * Each line may be rewritten on its way out: made pretty (`format`), and given
 * the sd-daemon priority prefix (`<3>`, `<4>`, `<6>`, `<7>`) when stdout is the
 * journal's stream.
 *
 * On a normal exit (the event loop runs empty) the buffer is flushed for at
 * most `exitFlushMs`, so the last lines ("smoothd stopped") survive.
 */
import fs from 'node:fs';

export const DEFAULT_LOG_BUFFER_BYTES = 4 * 1024 * 1024;
const RETRY_MS = 20;
const MAX_WRITE_BYTES = 256 * 1024;

export interface SinkOptions {
  /** Default 1 (stdout). */
  fd?: number;
  /** Bytes held while the reader does not read; beyond it whole lines are dropped. */
  maxBytes?: number;
  /** Prefix every line with its syslog priority (stdout is the journal's stream). */
  priorityPrefix?: boolean;
  /** Turns a pino JSON line (with its newline) into the text to write (pino-pretty). */
  format?: (jsonLine: string) => string;
  /** How long a normal exit waits for a slow reader to take the buffer (default 2 s). */
  exitFlushMs?: number;
  /** Hook the process's exit (default true); tests of several sinks turn it off. */
  flushOnExit?: boolean;
}

export interface SinkStats {
  /** Bytes waiting for the reader. */
  bufferedBytes: number;
  /** Lines dropped since the last "dropped" warning. */
  dropping: number;
  /** Lines dropped over the sink's life. */
  droppedTotal: number;
}

type Mode = 'nonblocking' | 'file' | 'threadpool';

/** sd-daemon(3) priority for a pino level number: error/fatal 3, warn 4, info 6, debug/trace 7. */
export function syslogPriority(level: number): number {
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

function pinoLevel(line: string): number {
  // pino writes `{"level":N,` first.
  const m = /^\{"level":(\d+)/.exec(line);
  return m ? Number(m[1]) : 30;
}

function fdFlags(fd: number): number | null {
  try {
    const m = /^flags:\s*([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m ? parseInt(m[1]!, 8) : null;
  } catch {
    return null;
  }
}

const O_NONBLOCK = 0o4000;

function pickMode(fd: number): Mode {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch {
    return 'threadpool';
  }
  if (st.isFile()) return 'file';
  if (st.isFIFO() || st.isSocket()) {
    // Node opens fd 1 as a libuv pipe, which sets O_NONBLOCK on it.
    if (fd === 1) void process.stdout.writable;
    const flags = fdFlags(fd);
    if (flags !== null && (flags & O_NONBLOCK) !== 0) return 'nonblocking';
  }
  return 'threadpool';
}

export class StdoutSink {
  private readonly fd: number;
  private readonly maxBytes: number;
  private readonly prefix: boolean;
  private readonly format: ((jsonLine: string) => string) | undefined;
  private readonly exitFlushMs: number;
  readonly mode: Mode;
  private queue: Buffer[] = [];
  private queued = 0;
  private dropping = 0;
  private droppedTotal = 0;
  private inFlight = false;
  private timer: NodeJS.Timeout | null = null;
  private exitDeadline: number | null = null;
  private waiters: (() => void)[] = [];
  private readonly onBeforeExit = (): void => this.beforeExit();
  private readonly onExit = (): void => this.lastAttempt();
  private readonly hooked: boolean;
  private pumpQueued = false;
  private readonly pumpSoon = (): void => {
    this.pumpQueued = false;
    this.pump();
  };

  constructor(opts: SinkOptions = {}) {
    this.fd = opts.fd ?? 1;
    this.maxBytes = opts.maxBytes ?? DEFAULT_LOG_BUFFER_BYTES;
    this.prefix = opts.priorityPrefix ?? false;
    this.format = opts.format;
    this.exitFlushMs = opts.exitFlushMs ?? 2_000;
    this.mode = pickMode(this.fd);
    this.hooked = opts.flushOnExit ?? true;
    if (this.hooked) {
      process.on('beforeExit', this.onBeforeExit);
      process.on('exit', this.onExit);
    }
  }

  /** pino's destination interface: one record (a JSON line ending in a newline). */
  write(line: string): boolean {
    // Once a line is dropped, every line is until the reader has taken the whole buffer: the
    // warning then stands exactly where lines are missing.
    if (this.dropping > 0) {
      this.dropping += 1;
      this.droppedTotal += 1;
      return true;
    }
    const buf = this.render(line);
    if (this.queued + buf.length > this.maxBytes) {
      this.dropping += 1;
      this.droppedTotal += 1;
      return true;
    }
    const idle = this.queued === 0;
    this.queue.push(buf);
    this.queued += buf.length;
    // Lines behind a blocked write wait for the retry: one syscall per retry, not per line. And
    // lines of one task (a worker ready, the next one stopped, another started) leave in one write
    // once that task is done, not in one write each (the thread pool's writes queue up by themselves,
    // and start at once so a process.exit() right after a line has the best chance to see it written).
    if (idle && this.mode === 'threadpool') this.pump();
    else if (idle && !this.pumpQueued) {
      this.pumpQueued = true;
      queueMicrotask(this.pumpSoon);
    }
    return true;
  }

  stats(): SinkStats {
    return { bufferedBytes: this.queued, dropping: this.dropping, droppedTotal: this.droppedTotal };
  }

  /** Calls back once the buffer is empty (pino's `logger.flush(cb)`). */
  flush(cb?: (err?: Error) => void): void {
    if (this.queued === 0 && !this.inFlight) {
      cb?.();
      return;
    }
    if (cb) this.waiters.push(() => cb());
    this.pump();
  }

  /** Stops the retry timer and the exit hooks (what is still buffered is given up). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.hooked) {
      process.off('beforeExit', this.onBeforeExit);
      process.off('exit', this.onExit);
    }
  }

  private render(line: string): Buffer {
    let text = this.format ? this.format(line) : line;
    if (this.prefix) {
      const p = `<${syslogPriority(pinoLevel(line))}>`;
      const end = text.endsWith('\n') ? text.length - 1 : text.length;
      text = p + text.slice(0, end).split('\n').join(`\n${p}`) + text.slice(end);
    }
    return Buffer.from(text);
  }

  /** The next chunk to write: queued lines joined, at most MAX_WRITE_BYTES (or one longer line). */
  private head(): Buffer {
    if (this.queue.length === 1 || this.queue[0]!.length >= MAX_WRITE_BYTES) return this.queue[0]!;
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && bytes + this.queue[n]!.length <= MAX_WRITE_BYTES) bytes += this.queue[n++]!.length;
    const chunk = Buffer.concat(this.queue.splice(0, n), bytes);
    this.queue.unshift(chunk);
    return chunk;
  }

  private consumed(n: number): void {
    this.queued -= n;
    while (n > 0) {
      const first = this.queue[0]!;
      if (first.length <= n) {
        n -= first.length;
        this.queue.shift();
      } else {
        this.queue[0] = first.subarray(n);
        n = 0;
      }
    }
  }

  private pump(): void {
    if (this.inFlight) return;
    if (this.mode === 'threadpool') return this.pumpAsync();
    while (this.queued > 0) {
      let n: number;
      try {
        n = fs.writeSync(this.fd, this.head());
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return this.retryLater();
        return this.giveUp();
      }
      this.consumed(n);
    }
    this.drained();
  }

  private pumpAsync(): void {
    if (this.queued === 0) return this.drained();
    this.inFlight = true;
    const chunk = this.head();
    fs.write(this.fd, chunk, (err, n) => {
      this.inFlight = false;
      if (err) {
        if (err.code === 'EAGAIN') return this.retryLater();
        return this.giveUp();
      }
      this.consumed(n);
      this.pump();
    });
  }

  private retryLater(): void {
    if (this.timer) return;
    const remaining = this.exitDeadline === null ? RETRY_MS : Math.min(RETRY_MS, this.exitDeadline - Date.now());
    if (remaining <= 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, remaining);
    // While smoothd runs, a stalled reader must not keep it alive; the exit flush refs its own timer.
    if (this.exitDeadline === null) this.timer.unref();
  }

  /** The reader is gone for good (EPIPE, EBADF): nothing more can be written. */
  private giveUp(): void {
    this.droppedTotal += this.queue.length;
    this.queue = [];
    this.queued = 0;
    this.dropping = 0;
    this.drained();
  }

  private drained(): void {
    if (this.queued > 0) return;
    if (this.dropping > 0) {
      const n = this.dropping;
      this.dropping = 0;
      // Shaped like the logger's own lines (pino JSON, ISO time), then formatted like them.
      const warn = `{"level":40,"time":${JSON.stringify(new Date().toISOString())},"dropped":${n},"msg":"${n} log line${n === 1 ? '' : 's'} dropped while stdout was blocked"}\n`;
      const buf = this.render(warn);
      this.queue.push(buf);
      this.queued += buf.length;
      return this.pump();
    }
    for (const w of this.waiters.splice(0)) w();
  }

  private beforeExit(): void {
    if (this.queued === 0) return;
    this.exitDeadline ??= Date.now() + this.exitFlushMs;
    if (Date.now() >= this.exitDeadline) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // A ref'd timer keeps the process alive until the reader takes the rest or the deadline passes.
    this.retryLater();
  }

  private lastAttempt(): void {
    if (this.mode === 'threadpool') return;
    try {
      while (this.queued > 0) this.consumed(fs.writeSync(this.fd, this.head()));
    } catch {
      // EAGAIN or a closed reader: what is left is lost.
    }
  }
}
