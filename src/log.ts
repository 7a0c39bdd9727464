/**
 * smoothd's logger: pino JSON lines on stdout (journald keeps one entry per
 * line), pretty when stdout is a TTY or with `--log-format pretty`.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type LogFormat = 'json' | 'pretty';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export async function createLogger(level: LevelWithSilent, format: LogFormat | null): Promise<Logger> {
  const pretty = format === 'pretty' || (format === null && process.stdout.isTTY === true);
  const base = { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (!pretty) return pino(base, pino.destination({ dest: 1, sync: true }));
  // Loaded only when needed: pino-pretty costs start-up time and memory.
  const { default: prettyStream } = await import('pino-pretty');
  return pino(base, prettyStream({ colorize: process.stdout.isTTY === true, sync: true, ignore: 'pid,hostname' }));
}
