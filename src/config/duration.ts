/**
 * Durations in the config: a number of milliseconds, or a string of one or
 * more `<number><unit>` parts (`500ms`, `30s`, `1.5s`, `2m`, `1h`, `1m30s`).
 */

/**
 * Node's timers hold at most a signed 32-bit number of milliseconds; a longer
 * setTimeout fires at once (with a warning), which would turn "wait 30 days"
 * into "don't wait". So no config duration may be longer (about 24.8 days).
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const UNIT_MS = { ms: 1n, s: 1000n, m: 60_000n, h: 3_600_000n } as const;
type Unit = keyof typeof UNIT_MS;

const ALLOWED =
  'expected a duration: a whole number of milliseconds (e.g. 500) or a string with a unit ' +
  'ms, s, m or h (e.g. "500ms", "30s", "1.5s", "2m", "1m30s")';

const PART = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)/y;

/**
 * Parses a config duration. Returns the milliseconds, or a string saying what
 * is allowed (the caller adds the key path and the bad value).
 */
export function parseDuration(value: unknown): number | string {
  if (typeof value === 'number') return parseMilliseconds(value);
  if (typeof value === 'string') return parseDurationText(value.trim());
  return ALLOWED;
}

function parseMilliseconds(value: number): number | string {
  if (!Number.isFinite(value) || !Number.isInteger(value)) return ALLOWED;
  if (value < 0) return `${ALLOWED}; a duration cannot be negative`;
  return withinLimit(value);
}

function parseDurationText(text: string): number | string {
  if (text === '') return ALLOWED;
  if (/^-/.test(text)) return `${ALLOWED}; a duration cannot be negative`;
  if (/^\d+(\.\d+)?$/.test(text)) {
    return `${ALLOWED}; a number in quotes needs a unit, e.g. "${text}ms" or "${text}s"`;
  }
  let total = 0n;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const match = PART.exec(text);
    if (!match) return ALLOWED;
    const part = partToMilliseconds(match[1] as string, match[2] as Unit);
    if (part === null) return `${ALLOWED}; it must come to a whole number of milliseconds`;
    total += part;
  }
  if (total > BigInt(MAX_DURATION_MS)) return tooLong();
  return withinLimit(Number(total));
}

/** Exact decimal arithmetic, so "1.234s" is 1234 and not 1233.9999. */
function partToMilliseconds(amount: string, unit: Unit): bigint | null {
  const [whole = '', fraction = ''] = amount.split('.');
  const scale = 10n ** BigInt(fraction.length);
  const numerator = BigInt((whole || '0') + fraction) * UNIT_MS[unit];
  if (numerator % scale !== 0n) return null;
  return numerator / scale;
}

function withinLimit(ms: number): number | string {
  return ms > MAX_DURATION_MS ? tooLong() : ms;
}

function tooLong(): string {
  return `${ALLOWED}; the longest allowed is ${MAX_DURATION_MS}ms (about 24.8 days)`;
}

/** The shortest exact text for a duration, e.g. 1500 -> "1.5s", 120000 -> "2m". */
export function formatDuration(ms: number): string {
  if (ms !== 0) {
    if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
    if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  }
  if (ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
