/**
 * smoothd's logger: pino JSON lines on stdout (journald keeps one entry per
 * line), pretty when stdout is a TTY or with `--log-format pretty`.
 *
 * Lines leave through a `StdoutSink` (src/log-sink.ts), which never blocks the
 * event loop on a slow reader. When stdout is the journal's stream
 * (`JOURNAL_STREAM` names its device and inode) every line starts with its
 * syslog priority, so `journalctl -p warning` works.
 */
import fs from 'node:fs';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { StdoutSink } from './log-sink.js';

export type LogFormat = 'json' | 'pretty';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerOptions {
  /** Where the lines go (default 1, stdout). */
  fd?: number;
  env?: NodeJS.ProcessEnv;
  /** Bytes buffered for a reader that does not read (default 4 MiB). */
  maxBytes?: number;
  /** Hook the process's exit to flush the buffer (default true). */
  flushOnExit?: boolean;
}

/** True when `JOURNAL_STREAM` ("DEV:INODE", set by systemd) is the stream behind `fd`. */
export function isJournalStream(env: NodeJS.ProcessEnv, fd: number): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

/**
 * Colour in pretty logs: FORCE_COLOR set turns it on (`0` or `false` turns it
 * off), else a non-empty NO_COLOR turns it off, else colour on a terminal.
 * (FORCE_COLOR before NO_COLOR, as Node itself decides.)
 */
export function useColor(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return isTTY;
}

export async function createLogger(level: LevelWithSilent, format: LogFormat | null, opts: LoggerOptions = {}): Promise<Logger> {
  const fd = opts.fd ?? 1;
  const env = opts.env ?? process.env;
  const isTTY = fd === 1 ? process.stdout.isTTY === true : (await import('node:tty')).isatty(fd);
  const pretty = format === 'pretty' || (format === null && isTTY);
  const base = { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  let render: ((line: string) => string) | undefined;
  if (pretty) {
    // Loaded only when needed: pino-pretty costs start-up time and memory.
    const { prettyFactory } = await import('pino-pretty');
    render = prettyFactory({ colorize: useColor(env, isTTY), ignore: 'pid,hostname' });
  }
  const sink = new StdoutSink({
    fd,
    maxBytes: opts.maxBytes,
    priorityPrefix: isJournalStream(env, fd),
    format: render,
    flushOnExit: opts.flushOnExit,
  });
  return pino(base, sink);
}
