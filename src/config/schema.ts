/**
 * Validation of the config document (DESIGN §3) into a `Config` with every
 * default filled in. All problems are collected and thrown together as one
 * `ConfigError`; each names the key path, the value found and what is allowed.
 *
 * Maps may be plain objects or `Map`s (loadConfig hands over `Map`s so that a
 * group named "1" keeps its place: plain objects put integer-like keys first).
 * A key whose value is null (`user:` or `user: ~` in YAML) counts as not set.
 */
import { dirname, resolve } from 'node:path';
import { formatDuration, parseDuration } from './duration.js';
import { FD_NAME_PATTERN, isEphemeral, parseListenAddress, addressesOverlap } from './listen.js';
import {
  ConfigError,
  type Config,
  type ConfigIssue,
  type GroupConfig,
  type ListenAddress,
  type ListenEntry,
  type MetricsConfig,
  type LogLimits,
  type ReadyMode,
  type OnFailure,
  type RollingPolicy,
  type VerifyPolicy,
} from './types.js';
import { closestKey } from '../suggest.js';

export { addressesOverlap } from './listen.js';

export const DEFAULT_SOCKET_MODE = 0o600;
export const GROUP_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const MAX_COUNT = 1024;
export const DEFAULT_BACKLOG = 511;

/** Defaults for a group's keys (DESIGN §3); durations in ms. Copy, don't mutate. */
export const DEFAULTS = {
  count: 1,
  reloadable: true,
  ready: { kind: 'delay', ms: 1000 } as ReadyMode,
  readyTimeoutMs: 30_000,
  stopSignal: 'SIGTERM' as NodeJS.Signals,
  stopTimeoutMs: 30_000,
  rolling: { surge: 1, unavailable: 0 } as RollingPolicy,
  restartDelayMs: 100,
  maxRestartDelayMs: 30_000,
  verify: { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 0 } as VerifyPolicy,
  onFailure: 'rollback' as OnFailure,
  history: 5,
  compileCache: true,
  bootNice: 0,
} as const;

/** Highest `bootNice`: Linux nice values end at 19. */
export const MAX_BOOT_NICE = 19;

export const MAX_HISTORY = 100;

/** Signals a worker can catch to drain; SIGKILL/SIGSTOP cannot be caught. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGTERM',
  'SIGINT',
  'SIGQUIT',
  'SIGHUP',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
];

/** Set by smoothd for every worker (DESIGN §4); a config value would be overwritten or break the handoff. */
export const RESERVED_ENV = [
  'LISTEN_FDS',
  'LISTEN_PID',
  'LISTEN_FDNAMES',
  'NOTIFY_SOCKET',
  'SMOOTHD_GROUP',
  'SMOOTHD_WORKER_ID',
  'SMOOTHD_WORKER_SLOT',
  'SMOOTHD_GENERATION',
  'SMOOTHD_READY',
];

const TOP_KEYS = ['socketMode', 'socketGroup', 'groups', 'metrics'];
const GROUP_KEYS = [
  'command',
  'cwd',
  'env',
  'user',
  'group',
  'count',
  'listen',
  'reloadable',
  'ready',
  'readyTimeout',
  'stopSignal',
  'stopTimeout',
  'rolling',
  'restartDelay',
  'maxRestartDelay',
  'verify',
  'onFailure',
  'history',
  'compileCache',
  'bootNice',
  'logs',
];
const VERIFY_KEYS = ['bake', 'maxErrorRate', 'minRequests', 'watch'];
const LISTEN_KEYS = ['address', 'name', 'backlog', 'mode'];
const ROLLING_KEYS = ['surge', 'unavailable'];

const MAX_RENDERED = 80;

/** JSON-ish text of a value for messages, cut short when long. */
export function renderValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string | undefined;
  if (typeof value === 'number' || typeof value === 'bigint') text = String(value);
  else {
    try {
      text = JSON.stringify(value, (_key, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v));
    } catch {
      text = undefined;
    }
  }
  text ??= String(value);
  return text.length > MAX_RENDERED ? `${text.slice(0, MAX_RENDERED - 1)}…` : text;
}

/**
 * Parses a file mode (socketMode, listen `mode`): a string of octal digits
 * ("0600", "600", "0o600") or a number. YAML reads a plain `0660` as the
 * decimal 660, so a number is accepted only when it cannot be such a
 * misread octal: 0..7 (same in both bases) or a value up to 511 whose
 * decimal digits include an 8 or 9 (e.g. 384 = 0o600). Any other number
 * made only of digits 0-7 is refused with a hint to quote it or write 0o.
 * loadConfig turns YAML `0o660` literals into the string "0o660" first, so
 * they are always accepted.
 */
export function parseMode(value: unknown): number | string {
  const allowed = 'expected an octal file mode from "000" to "777" in quotes, e.g. "0600", or a YAML octal such as 0o600';
  if (typeof value === 'string') {
    const match = /^(?:0o)?0*([0-7]{1,3})$/.exec(value.trim());
    return match ? parseInt(match[1] as string, 8) : allowed;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) return allowed;
  if (value >= 8 && /^[0-7]+$/.test(String(value))) {
    return `a plain ${value} is the decimal number ${value}, not octal; write it in quotes ("0${value}") or as 0o${value}`;
  }
  return value <= 0o777 ? value : allowed;
}

/** Reading context: collects issues, knows the config folder. */
class Reader {
  readonly issues: ConfigIssue[] = [];
  /** Where each accepted listen entry was written, for overlap messages. */
  readonly listenPaths = new Map<ListenEntry, string>();
  constructor(readonly baseDir: string) {}

  add(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  /** `got VALUE; ALLOWED` (or `missing; ALLOWED`). */
  bad(path: string, value: unknown, allowed: string): undefined {
    const found = value === undefined ? 'missing' : `got ${renderValue(value)}`;
    this.add(path, `${found}; ${allowed}`);
    return undefined;
  }

  /** Entries of a mapping, unknown keys reported; undefined if not a mapping. */
  mapping(
    value: unknown,
    path: string,
    allowedKeys: readonly string[],
    example: string,
  ): Map<string, unknown> | undefined {
    const entries = mappingEntries(value);
    if (!entries) return this.bad(path, value, `expected a map, e.g. ${example}`);
    const result = new Map<string, unknown>();
    for (const [key, child] of entries) {
      if (!allowedKeys.includes(key)) {
        this.add(join(path, key), unknownKeyMessage(key, allowedKeys));
        continue;
      }
      if (child !== null && child !== undefined) result.set(key, child);
    }
    return result;
  }

  integer(value: unknown, path: string, min: number, max: number, note = ''): number | undefined {
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    return this.bad(path, value, `expected a whole number from ${min} to ${max}${note}`);
  }

  duration(value: unknown, path: string, minMs: number): number | undefined {
    const ms = parseDuration(value);
    if (typeof ms === 'string') return this.bad(path, value, ms);
    if (ms < minMs) return this.bad(path, value, `expected a duration of at least ${formatDuration(minMs)}`);
    return ms;
  }

  /** A non-empty string without NUL; integers are accepted as ids (uid/gid). */
  name(value: unknown, path: string, what: string): string | undefined {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return String(value);
    if (typeof value === 'string' && value.trim() !== '' && !/[\0\n:]/.test(value)) return value.trim();
    return this.bad(path, value, `expected ${what} (a name or a numeric id)`);
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** [key, value] pairs of a Map or plain object; null for anything else. */
function mappingEntries(value: unknown): Array<[string, unknown]> | null {
  if (value instanceof Map) {
    return [...value.entries()].map(([k, v]): [string, unknown] => [String(k), v]);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return null;
  return Object.entries(value);
}

function unknownKeyMessage(key: string, allowedKeys: readonly string[]): string {
  const guess = closestKey(key, allowedKeys);
  const hint = guess ? ` (did you mean "${guess}"?)` : '';
  return `unknown key "${key}"${hint}; allowed keys here: ${allowedKeys.join(', ')}`;
}

/**
 * Validates a parsed config document. `file` is the config file's path; it
 * becomes `Config.path` (absolute) and its folder is the base for relative
 * `cwd` and `unix:` paths. Throws ConfigError listing every problem found.
 */
export function validateConfig(doc: unknown, file: string): Config {
  const path = resolve(file);
  const reader = new Reader(dirname(path));
  const top = reader.mapping(doc, '', TOP_KEYS, 'groups: { web: { command: [node, server.js] } }');

  const socketMode = readSocketMode(reader, top?.get('socketMode'));
  const socketGroupValue = top?.get('socketGroup');
  const socketGroup =
    socketGroupValue === undefined ? null : (reader.name(socketGroupValue, 'socketGroup', 'a unix group') ?? null);
  const groups = top ? readGroups(reader, top.get('groups')) : [];
  checkOverlaps(reader, groups);
  const metrics = readMetrics(reader, top?.get('metrics'), groups);

  if (reader.issues.length > 0) throw new ConfigError(path, reader.issues);
  return { path, socketMode, socketGroup, groups, metrics };
}

export const DEFAULT_LOG_LIMITS: LogLimits = { lines: 1000, bytes: 1024 * 1024 };
const MAX_LOG_LINES = 1_000_000;
const MAX_LOG_BYTES = 1024 * 1024 * 1024;

/** A size: bytes as a number, or `512KiB`, `1MiB`, `1GiB` (also kB/MB/GB, powers of 1000). */
export function parseSize(value: unknown): number | string {
  const allowed = 'expected a size such as 1048576, "512KiB" or "1MiB"';
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : allowed;
  if (typeof value !== 'string') return allowed;
  const m = /^\s*(\d+)\s*(B|KiB|MiB|GiB|kB|KB|MB|GB)?\s*$/.exec(value);
  if (!m) return allowed;
  const unit: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, kB: 1000, KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3 };
  return Number(m[1]) * unit[m[2] ?? 'B']!;
}

/** `logs: {lines, bytes}` per group: both bound the ring of the workers' last lines. */
function readLogs(reader: Reader, value: unknown, path: string): LogLimits {
  if (value === undefined) return { ...DEFAULT_LOG_LIMITS };
  const fields = reader.mapping(value, path, ['lines', 'bytes'], '{ lines: 1000, bytes: 1MiB }');
  if (!fields) return { ...DEFAULT_LOG_LIMITS };
  const linesValue = fields.get('lines');
  const lines = linesValue === undefined ? DEFAULT_LOG_LIMITS.lines : reader.integer(linesValue, `${path}.lines`, 1, MAX_LOG_LINES, ' (lines kept)');
  const bytesValue = fields.get('bytes');
  let bytes: number | undefined = DEFAULT_LOG_LIMITS.bytes;
  if (bytesValue !== undefined) {
    const size = parseSize(bytesValue);
    if (typeof size === 'string') bytes = reader.bad(`${path}.bytes`, bytesValue, size);
    else if (size < 1024 || size > MAX_LOG_BYTES) bytes = reader.bad(`${path}.bytes`, bytesValue, 'expected a size from 1KiB to 1GiB');
    else bytes = size;
  }
  return { lines: lines ?? DEFAULT_LOG_LIMITS.lines, bytes: bytes ?? DEFAULT_LOG_LIMITS.bytes };
}

/** `metrics: {listen: "HOST:PORT"}`: TCP only, never overlapping a group's address (`:0` is fine). */
function readMetrics(reader: Reader, value: unknown, groups: GroupConfig[]): MetricsConfig | null {
  if (value === undefined) return null;
  const fields = reader.mapping(value, 'metrics', ['listen'], 'metrics: { listen: "127.0.0.1:9464" }');
  if (!fields) return null;
  const text = fields.get('listen');
  const allowed = 'expected a TCP address "HOST:PORT" such as "127.0.0.1:9464" (":PORT" for all interfaces, port 0 for any free port)';
  if (typeof text !== 'string') return reader.bad('metrics.listen', text, allowed) ?? null;
  const parsed = parseListenAddress(text, reader.baseDir);
  if (typeof parsed === 'string') return reader.bad('metrics.listen', text, parsed) ?? null;
  if (parsed.kind !== 'tcp') return reader.bad('metrics.listen', text, `${allowed}; the metrics listener is TCP only`) ?? null;
  for (const g of groups) {
    for (const entry of g.listen) {
      if (addressesOverlap(entry.address, parsed)) {
        reader.add(
          'metrics.listen',
          `got ${renderValue(text)}; it overlaps ${renderValue(entry.text)} at ${reader.listenPaths.get(entry) ?? `groups.${g.name}.listen`}` +
            `${overlapReason(entry.address, parsed)}; give the metrics listener its own port`,
        );
        return null;
      }
    }
  }
  return { address: parsed, listen: text.trim() };
}

function readSocketMode(reader: Reader, value: unknown): number {
  if (value === undefined) return DEFAULT_SOCKET_MODE;
  const mode = parseMode(value);
  if (typeof mode === 'string') return reader.bad('socketMode', value, mode) ?? DEFAULT_SOCKET_MODE;
  return mode;
}

function readGroups(reader: Reader, value: unknown): GroupConfig[] {
  const allowed = 'expected a map of group name to group, e.g. groups: { web: { command: [node, server.js] } }';
  const entries = mappingEntries(value);
  if (!entries) {
    reader.bad('groups', value, allowed);
    return [];
  }
  if (entries.length === 0) {
    reader.add('groups', `got {}; ${allowed} (at least one group is needed)`);
    return [];
  }
  const groups: GroupConfig[] = [];
  for (const [name, body] of entries) {
    const path = `groups.${name}`;
    if (!GROUP_NAME_PATTERN.test(name)) {
      reader.add(
        path,
        `group name "${name}" is not allowed; use 1 to 64 letters, digits, "_", "." or "-"`,
      );
    }
    const group = readGroup(reader, name, body, path);
    if (group) groups.push(group);
  }
  return groups;
}

function readGroup(reader: Reader, name: string, body: unknown, path: string): GroupConfig | undefined {
  const fields = reader.mapping(body, path, GROUP_KEYS, '{ command: [node, server.js], count: 2 }');
  if (!fields) return undefined;
  const at = (key: string): string => `${path}.${key}`;
  const get = (key: string): unknown => fields.get(key);

  const command = readCommand(reader, get('command'), at('command')) ?? [];
  const cwd = readCwd(reader, get('cwd'), at('cwd'));
  const env = readEnv(reader, get('env'), at('env'));
  const user = get('user') === undefined ? null : (reader.name(get('user'), at('user'), 'a user') ?? null);
  const group = get('group') === undefined ? null : (reader.name(get('group'), at('group'), 'a unix group') ?? null);
  const countValue =
    get('count') === undefined
      ? DEFAULTS.count
      : reader.integer(get('count'), at('count'), 1, MAX_COUNT, ' (the number of workers)');
  const count = countValue ?? DEFAULTS.count;
  const listen = readListen(reader, name, get('listen'), at('listen'));
  const reloadable = readBoolean(reader, get('reloadable'), at('reloadable'), DEFAULTS.reloadable);
  const compileCache = readBoolean(reader, get('compileCache'), at('compileCache'), DEFAULTS.compileCache);
  const bootNice =
    get('bootNice') === undefined
      ? DEFAULTS.bootNice
      : reader.integer(get('bootNice'), at('bootNice'), 0, MAX_BOOT_NICE, ' (nice levels added while a worker boots; 0 = off)');
  const ready = readReady(reader, get('ready'), at('ready'));
  const readyTimeoutMs = optionalDuration(reader, get('readyTimeout'), at('readyTimeout'), 1, DEFAULTS.readyTimeoutMs);
  const stopSignal = readStopSignal(reader, get('stopSignal'), at('stopSignal'));
  const stopTimeoutMs = optionalDuration(reader, get('stopTimeout'), at('stopTimeout'), 0, DEFAULTS.stopTimeoutMs);
  const rolling = readRolling(reader, get('rolling'), at('rolling'), countValue);
  // A zero restart delay would double to zero forever: a crash loop with no pause.
  const restartDelayMs = optionalDuration(reader, get('restartDelay'), at('restartDelay'), 1, DEFAULTS.restartDelayMs);
  const maxRestartDelayMs = optionalDuration(
    reader,
    get('maxRestartDelay'),
    at('maxRestartDelay'),
    1,
    DEFAULTS.maxRestartDelayMs,
  );

  const verify = readVerify(reader, get('verify'), at('verify'));
  const onFailure = readOnFailure(reader, get('onFailure'), at('onFailure'));
  const logs = readLogs(reader, get('logs'), at('logs'));
  const history =
    get('history') === undefined ? DEFAULTS.history : reader.integer(get('history'), at('history'), 1, MAX_HISTORY, ' (generations kept)');

  if (verify?.maxErrorRate != null && ready?.kind === 'delay') {
    reader.add(
      at('verify.maxErrorRate'),
      `got ${verify.maxErrorRate} with ready: ${formatDuration(ready.ms)}; a worker ready by duration has no channel to report its ` +
        'request counters, so its error rate cannot be judged. Use ready: ipc (Node, the smoothd/worker kit) or ready: notify, or remove maxErrorRate',
    );
  }
  if (ready?.kind === 'delay' && readyTimeoutMs !== undefined && ready.ms >= readyTimeoutMs) {
    reader.add(
      at('ready'),
      `got ${renderValue(get('ready'))}; a delay must be shorter than readyTimeout (${formatDuration(readyTimeoutMs)}), ` +
        'or the worker would time out before it counts as ready. Shorten ready or raise readyTimeout',
    );
  }
  if (restartDelayMs !== undefined && maxRestartDelayMs !== undefined && maxRestartDelayMs < restartDelayMs) {
    const why = 'the crash backoff grows from restartDelay up to maxRestartDelay';
    if (get('maxRestartDelay') !== undefined) {
      reader.add(
        at('maxRestartDelay'),
        `got ${renderValue(get('maxRestartDelay'))}; expected at least restartDelay (${formatDuration(restartDelayMs)}), since ${why}`,
      );
    } else {
      reader.add(
        at('restartDelay'),
        `got ${renderValue(get('restartDelay'))}; expected at most maxRestartDelay (${formatDuration(maxRestartDelayMs)}, ` +
          `the default), since ${why}; lower restartDelay or raise maxRestartDelay`,
      );
    }
  }

  return {
    name,
    command,
    cwd: cwd ?? reader.baseDir,
    env,
    user,
    group,
    count,
    listen,
    reloadable,
    ready: ready ?? { ...DEFAULTS.ready },
    readyTimeoutMs: readyTimeoutMs ?? DEFAULTS.readyTimeoutMs,
    stopSignal: stopSignal ?? DEFAULTS.stopSignal,
    stopTimeoutMs: stopTimeoutMs ?? DEFAULTS.stopTimeoutMs,
    rolling: rolling ?? { ...DEFAULTS.rolling },
    restartDelayMs: restartDelayMs ?? DEFAULTS.restartDelayMs,
    maxRestartDelayMs: maxRestartDelayMs ?? DEFAULTS.maxRestartDelayMs,
    verify: verify ?? { ...DEFAULTS.verify },
    onFailure: onFailure ?? DEFAULTS.onFailure,
    history: history ?? DEFAULTS.history,
    compileCache,
    bootNice: bootNice ?? DEFAULTS.bootNice,
    logs,
  };
}

function readVerify(reader: Reader, value: unknown, path: string): VerifyPolicy | undefined {
  if (value === undefined) return { ...DEFAULTS.verify };
  const fields = reader.mapping(value, path, VERIFY_KEYS, 'verify: { bake: 10s, maxErrorRate: 0.05, minRequests: 20, watch: 60s }');
  if (!fields) return undefined;
  const bakeMs = optionalDuration(reader, fields.get('bake'), `${path}.bake`, 0, DEFAULTS.verify.bakeMs);
  const watchMs = optionalDuration(reader, fields.get('watch'), `${path}.watch`, 0, DEFAULTS.verify.watchMs);
  const minRequests =
    fields.get('minRequests') === undefined
      ? DEFAULTS.verify.minRequests
      : reader.integer(fields.get('minRequests'), `${path}.minRequests`, 1, 1_000_000_000, ' (responses before the error rate is judged)');
  let maxErrorRate: number | null | undefined = null;
  const rate = fields.get('maxErrorRate');
  if (rate !== undefined) {
    if (typeof rate === 'number' && Number.isFinite(rate) && rate >= 0 && rate < 1) maxErrorRate = rate;
    else maxErrorRate = reader.bad(`${path}.maxErrorRate`, rate, 'expected a share of responses from 0 up to (not including) 1, e.g. 0.05 for 5% of responses with status 500 or above');
  }
  if (bakeMs === undefined || watchMs === undefined || minRequests === undefined || maxErrorRate === undefined) return undefined;
  return { bakeMs, maxErrorRate, minRequests, watchMs };
}

function readOnFailure(reader: Reader, value: unknown, path: string): OnFailure | undefined {
  if (value === undefined) return DEFAULTS.onFailure;
  if (value === 'rollback' || value === 'keep') return value;
  return reader.bad(path, value, 'expected rollback (a failed reload returns every slot to the generation it ran before; the default) or keep (ready new workers stay: mixed generations)');
}

function optionalDuration(
  reader: Reader,
  value: unknown,
  path: string,
  minMs: number,
  fallback: number,
): number | undefined {
  return value === undefined ? fallback : reader.duration(value, path, minMs);
}

function readBoolean(reader: Reader, value: unknown, path: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  return reader.bad(path, value, 'expected true or false') ?? fallback;
}

/**
 * A scalar argument or env value: strings as they are; numbers and booleans
 * as text (loadConfig already replaces YAML numbers with their source text,
 * so `1.10` stays "1.10"; for plain objects String() is used).
 */
function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function readCommand(reader: Reader, value: unknown, path: string): string[] | undefined {
  const allowed = 'expected the program and its arguments as a list (no shell is used), e.g. command: [node, server.js]';
  if (typeof value === 'string') return reader.bad(path, value, commandStringHint(value));
  if (!Array.isArray(value) || value.length === 0) return reader.bad(path, value, allowed);
  const argv: string[] = [];
  let ok = true;
  value.forEach((item: unknown, index) => {
    const text = scalarText(item);
    if (text === undefined || text.includes('\0')) {
      reader.bad(`${path}[${index}]`, item, 'expected a string (an argument)');
      ok = false;
    } else argv.push(text);
  });
  if (ok && (argv[0] as string).trim() === '') {
    return reader.bad(`${path}[0]`, value[0], 'expected the program to run (a name looked up in PATH, or a path)');
  }
  return ok ? argv : undefined;
}

function commandStringHint(text: string): string {
  if (/[|&;<>()$`*?"'\\]/.test(text)) {
    return (
      'expected a list of arguments; no shell is used. For shell syntax write ' +
      `command: [/bin/sh, -c, ${JSON.stringify(text)}] (and exec the server so signals reach it)`
    );
  }
  const words = text.trim().split(/\s+/).filter(Boolean);
  return `expected a list of arguments (no shell is used); write command: [${words.join(', ')}]`;
}

function readCwd(reader: Reader, value: unknown, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '' || value.includes('\0')) {
    return reader.bad(path, value, 'expected a folder path (relative paths start from the config file\'s folder)');
  }
  if (value.startsWith('~')) {
    return reader.bad(path, value, 'expected a folder path; "~" is not expanded (no shell), write the full path');
  }
  return resolve(reader.baseDir, value);
}

function readEnv(reader: Reader, value: unknown, path: string): Record<string, string> {
  const env: Record<string, string> = {};
  if (value === undefined) return env;
  const entries = mappingEntries(value);
  if (!entries) {
    reader.bad(path, value, 'expected a map of variable name to value, e.g. env: { NODE_ENV: production }');
    return env;
  }
  for (const [key, raw] of entries) {
    const at = `${path}.${key}`;
    if (key === '' || key.includes('=') || key.includes('\0')) {
      reader.add(at, `"${key}" is not a valid variable name; names must be non-empty without "=" or NUL`);
      continue;
    }
    if (RESERVED_ENV.includes(key)) {
      reader.add(at, `${key} is set by smoothd for each worker; remove it from env`);
      continue;
    }
    const text = scalarText(raw);
    if (text === undefined || text.includes('\0')) {
      const hint = raw === null || raw === undefined ? ` (for an empty value write ${key}: "")` : '';
      reader.bad(at, raw, `expected a string value${hint}`);
      continue;
    }
    env[key] = text;
  }
  return env;
}

function readReady(reader: Reader, value: unknown, path: string): ReadyMode | undefined {
  if (value === undefined) return { ...DEFAULTS.ready };
  if (value === 'ipc' || value === 'notify') return { kind: value };
  const ms = parseDuration(value);
  if (typeof ms === 'number') return { kind: 'delay', ms };
  return reader.bad(
    path,
    value,
    'expected ipc (process.send("ready")), notify (sd_notify READY=1) or a duration such as "1s" (ready once alive that long)',
  );
}

function readStopSignal(reader: Reader, value: unknown, path: string): NodeJS.Signals | undefined {
  if (value === undefined) return DEFAULTS.stopSignal;
  const allowed = `expected one of ${STOP_SIGNALS.join(', ')} (the "SIG" prefix is optional)`;
  if (typeof value !== 'string') return reader.bad(path, value, allowed);
  const upper = value.trim().toUpperCase();
  const name = (upper.startsWith('SIG') ? upper : `SIG${upper}`) as NodeJS.Signals;
  if (name === 'SIGKILL' || name === 'SIGSTOP') {
    return reader.bad(
      path,
      value,
      `${name} cannot be caught, so the worker could not drain its connections; smoothd sends SIGKILL itself after stopTimeout; ${allowed}`,
    );
  }
  return STOP_SIGNALS.includes(name) ? name : reader.bad(path, value, allowed);
}

/** surge may go up to count (count = start every new worker at once). */
function readRolling(reader: Reader, value: unknown, path: string, count: number | undefined): RollingPolicy | undefined {
  if (value === undefined) return { ...DEFAULTS.rolling };
  const fields = reader.mapping(value, path, ROLLING_KEYS, 'rolling: { surge: 1, unavailable: 0 }');
  if (!fields) return undefined;
  const limit = count ?? MAX_COUNT;
  const limitNote = count === undefined ? '' : ` (count is ${count})`;
  const read = (key: 'surge' | 'unavailable'): number | undefined => {
    const raw = fields.get(key);
    return raw === undefined ? DEFAULTS.rolling[key] : reader.integer(raw, `${path}.${key}`, 0, limit, limitNote);
  };
  const surge = read('surge');
  const unavailable = read('unavailable');
  if (surge === undefined || unavailable === undefined) return undefined;
  if (surge === 0 && unavailable === 0) {
    reader.add(
      path,
      `got ${renderValue(value)}; surge and unavailable cannot both be 0 (no worker could ever be replaced). ` +
        'Use { surge: 1, unavailable: 0 } to start a new worker before stopping an old one, ' +
        'or { surge: 0, unavailable: 1 } to stop one first (Workerman order)',
    );
    return undefined;
  }
  return { surge, unavailable };
}

function readListen(reader: Reader, group: string, value: unknown, path: string): ListenEntry[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    const hint = typeof value === 'string' ? `; write listen: [${JSON.stringify(value)}]` : '';
    reader.bad(path, value, `expected a list of addresses, e.g. listen: ["127.0.0.1:8080", "unix:/run/app.sock"]${hint}`);
    return [];
  }
  const entries: ListenEntry[] = [];
  const seenNames = new Map<string, number>();
  value.forEach((item: unknown, index) => {
    const at = `${path}[${index}]`;
    const entry = readListenEntry(reader, group, item, index, at);
    if (!entry) return;
    const previous = seenNames.get(entry.name);
    if (previous !== undefined) {
      reader.add(
        at,
        `the name "${entry.name}" is already used by ${path}[${previous}]; give each entry its own name`,
      );
      return;
    }
    seenNames.set(entry.name, index);
    reader.listenPaths.set(entry, at);
    entries.push(entry);
  });
  return entries;
}

function readListenEntry(
  reader: Reader,
  group: string,
  item: unknown,
  index: number,
  path: string,
): ListenEntry | undefined {
  if (typeof item === 'number') {
    return reader.bad(path, item, `expected an address in quotes; write ":${item}" for all IPv4 interfaces or "127.0.0.1:${item}"`);
  }
  const isObject = typeof item !== 'string';
  if (isObject && !mappingEntries(item)) {
    return reader.bad(
      path,
      item,
      'expected an address such as "127.0.0.1:8080" or a map { address, name, backlog, mode }',
    );
  }
  const fields = isObject
    ? reader.mapping(item, path, LISTEN_KEYS, '{ address: "127.0.0.1:8080", name: http }')
    : new Map<string, unknown>([['address', item]]);
  if (!fields) return undefined;

  const addressPath = isObject ? `${path}.address` : path;
  const text = fields.get('address');
  let address: ListenAddress | undefined;
  if (typeof text !== 'string') {
    address = reader.bad(addressPath, text, 'expected an address such as "127.0.0.1:8080" or "unix:/run/app.sock"');
  } else {
    const parsed = parseListenAddress(text, reader.baseDir);
    address = typeof parsed === 'string' ? reader.bad(addressPath, text, parsed) : parsed;
  }

  const name = readFdName(reader, fields.get('name'), `${path}.name`, `listen${index}`);
  const backlogValue = fields.get('backlog');
  const backlog =
    backlogValue === undefined ? DEFAULT_BACKLOG : reader.integer(backlogValue, `${path}.backlog`, 1, 65535);
  const mode = readListenMode(reader, fields.get('mode'), `${path}.mode`, address?.kind);
  if (!address || name === undefined || backlog === undefined || mode === undefined) return undefined;

  // Port 0 gets a fresh port per socket: two such entries are different
  // sockets, so the key names the entry to keep it unique and stable across reloads.
  const key = isEphemeral(address) ? `${address.key}#${group}.${name}` : address.key;
  return { address: { ...address, key }, name, backlog, mode, text: (text as string).trim() };
}

function readFdName(reader: Reader, value: unknown, path: string, fallback: string): string | undefined {
  if (value === undefined) return fallback;
  if (typeof value === 'string' && FD_NAME_PATTERN.test(value)) return value;
  return reader.bad(
    path,
    value,
    'expected a name for LISTEN_FDNAMES: 1 to 255 letters, digits, "_", "." or "-" (no ":")',
  );
}

function readListenMode(
  reader: Reader,
  value: unknown,
  path: string,
  kind: string | undefined,
): number | null | undefined {
  if (value === undefined) return null;
  if (kind !== undefined && kind !== 'unix') {
    return reader.bad(path, value, 'mode applies to unix sockets only; remove it from this entry');
  }
  const mode = parseMode(value);
  return typeof mode === 'string' ? reader.bad(path, value, mode) : mode;
}

function checkOverlaps(reader: Reader, groups: GroupConfig[]): void {
  const seen: Array<{ entry: ListenEntry; path: string }> = [];
  for (const group of groups) {
    for (const entry of group.listen) {
      const path = reader.listenPaths.get(entry) ?? `groups.${group.name}.listen`;
      const clash = seen.find((other) => addressesOverlap(other.entry.address, entry.address));
      if (clash) {
        reader.add(
          path,
          `got ${renderValue(entry.text)}; it overlaps ${renderValue(clash.entry.text)} at ${clash.path}` +
            `${overlapReason(clash.entry.address, entry.address)}, and one address cannot be held twice. ` +
            'Use a different address or port, or remove one of them',
        );
      }
      seen.push({ entry, path });
    }
  }
}

function overlapReason(a: ListenAddress, b: ListenAddress): string {
  if (a.kind !== 'tcp' || b.kind !== 'tcp' || a.host === b.host) return '';
  const hosts = [a.host, b.host];
  if (hosts.includes('::')) return ' ([::] takes the port on every IPv6 and, dual-stack, every IPv4 address)';
  if (hosts.includes('0.0.0.0')) return ' (0.0.0.0 takes the port on every IPv4 address)';
  return '';
}
