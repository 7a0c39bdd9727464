/**
 * smoothctl — the control CLI (DESIGN §2).
 *
 * Startup cost matters: `smoothctl status --json` runs every few seconds from
 * monitoring. The common path imports only node:net/node:path and the
 * dependency-free control modules; the command line is parsed by a small
 * table-driven parser below. yargs (~90 ms) is imported lazily, only to print
 * --help. pino and json-rpc-2.0 are never loaded.
 *
 * Exit codes (stable, README lists them): 0 done, 1 reload/restart failed
 * (and `status --ready`: not ready),
 * 2 refused (Windows, daemon stopping), 64 usage error, 69 daemon not
 * reachable, 75 --timeout expired, 77 permission denied on the socket.
 */
import { readFileSync } from 'node:fs';
import {
  assertPrivateSocket,
  callRpc,
  ConnectionLostError,
  ControlClientError,
  DaemonUnreachableError,
  formatMs,
  openRpcCall,
  PermissionDeniedError,
  probeControlSocket,
  ProtocolError,
  RpcCallError,
  TimeoutError,
  waitForConnectionClose,
} from '../control/client.js';
import { ERROR_TABLE, EXIT, errorInfo, exitCodeForError } from '../control/errors.js';
import { GROUP_NAME_PATTERN } from '../control/group-name.js';
import type { ReloadReport, StatusDocument, WorkerStatus } from '../supervisor/report.js';
import { checkSocketPath, currentUid, resolveSocketPathWithSource, SocketPathError } from '../paths.js';
import type { ProgressSink } from './progress.js';
import { escapeControl, terminalSafeJson } from './escape.js';
import { MAX_DURATION_MS, parseDuration as parseConfigDuration } from '../config/duration.js';

// ---------------------------------------------------------------------------
// I/O seam (tests call main() with fakes; the bin uses the process)

export interface CliIO {
  /** `status --json` indents its JSON for a terminal (`isTTY`), else passes smoothd's text through. */
  stdout: { write(s: string): unknown; isTTY?: boolean };
  /** A live progress bar is drawn when `isTTY` is true (and TERM is not dumb). */
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  uid: number;
  cwd: string;
  now: () => number;
}

/**
 * The process's own streams and environment, with `overrides` in their place.
 * process.stderr is only touched when something is written to it: Node builds
 * the stream on first use, and `status --json` that succeeds never needs it.
 */
function makeIO(overrides: Partial<CliIO>): CliIO {
  const io = { env: process.env, uid: currentUid(), cwd: process.cwd(), now: () => Date.now(), ...overrides } as CliIO;
  if (overrides.stdout === undefined) {
    io.stdout = process.stdout;
    if (process.stdout.listenerCount('error') === 0) process.stdout.on('error', onStdoutError);
  }
  if (overrides.stderr === undefined) Object.defineProperty(io, 'stderr', { get: () => process.stderr, enumerable: true });
  return io;
}

/**
 * A reader that went away (`smoothctl status | head -2`) makes the next write
 * to stdout fail with EPIPE: the rest of the output has nowhere to go, so it
 * is dropped and the command ends as it would have, with its own exit code —
 * not with Node's stack trace for an unhandled 'error' event.
 */
function onStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') return;
  process.stderr.write(`smoothctl: cannot write to stdout: ${err.message}; check where stdout goes (a full disk, a closed terminal)\n`);
}

// ---------------------------------------------------------------------------
// Command line

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * A command name smoothctl does not know. main() adds the "did you mean"
 * guess (suggest.ts is loaded only then, not on the `status` fast path).
 */
export class UnknownCommandError extends UsageError {
  constructor(
    readonly word: string,
    readonly names: readonly string[],
  ) {
    super(`unknown command ${JSON.stringify(word)} (commands: ${names.join(', ')})`);
  }

  async withGuess(): Promise<string> {
    const { closestKey } = await import('../suggest.js');
    const guess = closestKey(this.word, this.names);
    return guess ? `unknown command ${JSON.stringify(this.word)} (did you mean "${guess}"?) (commands: ${this.names.join(', ')})` : this.message;
  }
}

type OptName = 'socket' | 'timeout' | 'group' | 'wait' | 'json' | 'ready' | 'dry-run' | 'lines' | 'follow' | 'to' | 'force';

interface OptSpec {
  name: OptName;
  short?: string;
  /** Takes a value (`--name VALUE` or `--name=VALUE`); else a boolean flag. */
  value?: string;
  /** Boolean flag whose `--no-NAME` form is the one users type. */
  negatable?: boolean;
  describe: string;
}

const OPTIONS: Record<OptName, OptSpec> = {
  socket: { name: 'socket', value: 'PATH', describe: 'control socket (default: $SMOOTHD_SOCKET, $RUNTIME_DIRECTORY, /run/smoothd, ...)' },
  timeout: { name: 'timeout', value: 'DURATION', describe: 'give up after this long (500ms, 10s, 2m, 1m30s; plain numbers are ms) and exit 75; smoothd carries on' },
  group: { name: 'group', short: 'g', value: 'NAME', describe: 'only roll this group (repeat, or comma-separate, for several)' },
  wait: { name: 'wait', negatable: true, describe: 'return as soon as smoothd accepted the request (prints the reload id)' },
  json: { name: 'json', describe: 'print JSON on stdout instead of text' },
  to: { name: 'to', value: 'GENERATION', describe: 'rollback: the generation to return to (with exactly one GROUP)' },
  force: { name: 'force', describe: 'rollback: go back even to the same release as the current one (an in-place deploy)' },
  'dry-run': { name: 'dry-run', describe: 'only read and check the config and print what a reload would change per group; starts nothing' },
  lines: { name: 'lines', short: 'n', value: 'N', describe: 'logs: how many of the last lines (default 20)' },
  follow: { name: 'follow', short: 'f', describe: 'logs: keep printing new lines until Ctrl-C or until smoothd stops' },
  ready: { name: 'ready', describe: 'readiness probe: exit 0 when every group has count ready workers and no reload is failing, else 1 with the reason on stderr' },
};

const GLOBAL_OPTS: readonly OptName[] = ['socket', 'timeout'];

interface CommandSpec {
  name: 'reload' | 'restart' | 'rollback' | 'status' | 'stop' | 'metrics' | 'events' | 'logs';
  usage: string;
  describe: string;
  positionals: readonly string[];
  /** Positionals that may be left out, after the required ones. */
  optional?: readonly string[];
  /** Takes any number of positionals (group names) instead of exactly `positionals`. */
  variadic?: boolean;
  options: readonly OptName[];
}

const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'reload',
    usage: 'reload [--group NAME]... [--no-wait] [--json] [--dry-run]',
    describe: 'roll every reloadable group (or the --group ones) onto the code and config on disk; waits until the roll ends',
    positionals: [],
    options: ['group', 'wait', 'json', 'dry-run'],
  },
  {
    name: 'restart',
    usage: 'restart GROUP [--no-wait] [--json]',
    describe: 'roll one group, even one marked reloadable: false',
    positionals: ['GROUP'],
    options: ['wait', 'json'],
  },
  {
    name: 'rollback',
    usage: 'rollback [GROUP]... [--to GENERATION] [--force] [--no-wait] [--json]',
    describe: 'roll groups back on purpose to their newest good older generation (or --to); waits until it ends',
    positionals: [],
    variadic: true,
    options: ['to', 'force', 'wait', 'json'],
  },
  {
    name: 'status',
    usage: 'status [--json] [--ready]',
    describe: 'show groups and workers (--json: the status document; --ready: a readiness probe)',
    positionals: [],
    options: ['json', 'ready'],
  },
  {
    name: 'stop',
    usage: 'stop [--no-wait]',
    describe: 'stop every group gracefully; waits until smoothd has exited',
    positionals: [],
    options: ['wait'],
  },
  {
    name: 'metrics',
    usage: 'metrics',
    describe: "print smoothd's metrics in the Prometheus text format (for node_exporter's textfile collector)",
    positionals: [],
    options: [],
  },
  {
    name: 'events',
    usage: 'events [--json]',
    describe: 'follow smoothd\'s events (workers started, ready, stopped, crashed; reloads; rollbacks) until Ctrl-C or until smoothd stops; --json: one JSON object per line',
    positionals: [],
    options: ['json'],
  },
  {
    name: 'logs',
    usage: 'logs [GROUP] [-n N] [-f] [--json]',
    describe: "print the workers' last output lines (all groups, or GROUP), tagged with worker id, pid, generation and stream; -f follows new ones",
    positionals: [],
    optional: ['GROUP'],
    options: ['lines', 'follow', 'json'],
  },
];

export type Command =
  | { name: 'reload'; groups: string[]; wait: boolean; json: boolean; dryRun?: boolean }
  | { name: 'restart'; group: string; wait: boolean; json: boolean }
  | { name: 'rollback'; groups: string[]; to: number | null; force: boolean; wait: boolean; json: boolean }
  | { name: 'status'; json: boolean; ready?: boolean }
  | { name: 'stop'; wait: boolean }
  | { name: 'metrics' }
  | { name: 'events'; json: boolean }
  | { name: 'logs'; group: string | null; lines: number; follow: boolean; json: boolean }
  | { name: 'help'; topic: string | null }
  | { name: 'version' };

export interface ParsedArgs {
  command: Command;
  socket?: string;
  timeoutMs?: number;
}

/**
 * `--timeout`: the config's duration syntax (`500ms`, `10s`, `2m`, `1h`,
 * compound `1m30s`; one parser for both, src/config/duration.ts, which has no
 * imports); a plain number is milliseconds, like a number in the config.
 */
export function parseDuration(text: string): number {
  const t = text.trim();
  const ms = parseConfigDuration(/^\d+$/.test(t) ? Number(t) : t);
  if (typeof ms === 'string') {
    if (/longest allowed/.test(ms)) throw new UsageError(`--timeout ${text} is too long (at most ${MAX_DURATION_MS}ms, about 24.8 days)`);
    throw new UsageError(`invalid duration ${JSON.stringify(text)} for --timeout (examples: 500ms, 10s, 2m, 1m30s; a plain number is ms)`);
  }
  if (ms <= 0) throw new UsageError(`--timeout must be more than 0, got ${JSON.stringify(text)}`);
  return ms;
}

function findLong(name: string): OptSpec | undefined {
  return (Object.values(OPTIONS) as OptSpec[]).find((o) => o.name === name);
}

function checkGroupName(name: string, what: string): string {
  if (!GROUP_NAME_PATTERN.test(name)) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(name)} (group names are 1-64 characters of A-Z a-z 0-9 _ . -)`);
  }
  return name;
}

/** The hand-written parser of the fast path. Throws UsageError. */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positionals: string[] = [];
  const seen = new Map<OptName, string>(); // option -> how the user spelled it (for messages)
  const values: { socket?: string; timeout?: string; groups: string[]; wait?: boolean; json?: boolean; ready?: boolean; dryRun?: boolean; lines?: string; follow?: boolean; to?: string; force?: boolean } = { groups: [] };
  let help = false;
  let version = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (arg === '--version' || arg === '-V') {
      version = true;
      continue;
    }
    let spec: OptSpec | undefined;
    let inline: string | undefined;
    let negated = false;
    let spelled = arg;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
      spelled = `--${name}`;
      spec = findLong(name);
      if (spec === undefined && name.startsWith('no-')) {
        const base = findLong(name.slice(3));
        if (base !== undefined && base.value === undefined) {
          spec = base;
          negated = true;
        }
      }
      if (spec === undefined) throw new UsageError(`unknown option ${spelled}`);
    } else if (arg.startsWith('-') && arg.length > 1) {
      const short = arg.slice(1, 2);
      spec = (Object.values(OPTIONS) as OptSpec[]).find((o) => o.short === short);
      if (spec === undefined) throw new UsageError(`unknown option -${short}`);
      spelled = `-${short}`;
      if (arg.length > 2) inline = arg.slice(2);
    } else {
      positionals.push(arg);
      continue;
    }
    let value: string | undefined;
    if (spec.value !== undefined) {
      if (inline !== undefined) value = inline;
      else {
        const next = argv[i + 1];
        if (next === undefined || (next.startsWith('-') && next !== '-')) {
          throw new UsageError(`option ${spelled} needs a value (${spelled} ${spec.value})`);
        }
        value = next;
        i++;
      }
      if (value === '') throw new UsageError(`option ${spelled} needs a non-empty value`);
    } else if (inline !== undefined) {
      if (negated || (inline !== 'true' && inline !== 'false')) throw new UsageError(`option ${spelled} takes no value`);
      negated = inline === 'false';
    }
    seen.set(spec.name, spelled);
    switch (spec.name) {
      case 'socket':
        values.socket = value!;
        break;
      case 'timeout':
        values.timeout = value!;
        break;
      case 'group':
        for (const g of value!.split(',')) {
          if (g !== '') values.groups.push(checkGroupName(g, 'group name'));
        }
        break;
      case 'wait':
        values.wait = !negated;
        break;
      case 'json':
        values.json = !negated;
        break;
      case 'ready':
        values.ready = !negated;
        break;
      case 'dry-run':
        values.dryRun = !negated;
        break;
      case 'lines':
        values.lines = value!;
        break;
      case 'follow':
        values.follow = !negated;
        break;
      case 'to':
        values.to = value!;
        break;
      case 'force':
        values.force = !negated;
        break;
      default: {
        const never: never = spec.name;
        throw new Error(`unhandled option ${String(never)}`);
      }
    }
  }

  const common: Omit<ParsedArgs, 'command'> = {};
  if (values.socket !== undefined) common.socket = values.socket;
  if (values.timeout !== undefined) common.timeoutMs = parseDuration(values.timeout);

  if (version) return { ...common, command: { name: 'version' } };
  const first = positionals[0];
  if (help || first === 'help') {
    const topic = first === 'help' ? (positionals[1] ?? null) : (first ?? null);
    return { ...common, command: { name: 'help', topic } };
  }
  if (first === undefined) throw new UsageError('no command given (reload, restart, rollback, status, stop, metrics, events, logs)');
  const cmd = COMMANDS.find((c) => c.name === first);
  if (cmd === undefined) {
    throw new UnknownCommandError(first, COMMANDS.map((c) => c.name));
  }
  for (const [name, spelled] of seen) {
    if (!GLOBAL_OPTS.includes(name) && !cmd.options.includes(name)) {
      throw new UsageError(`option ${spelled} does not apply to ${cmd.name} (usage: smoothctl ${cmd.usage})`);
    }
  }
  const rest = positionals.slice(1);
  if (rest.length < cmd.positionals.length) {
    throw new UsageError(`${cmd.name} needs ${cmd.positionals.join(' ')} (usage: smoothctl ${cmd.usage})`);
  }
  if (rest.length > cmd.positionals.length + (cmd.optional?.length ?? 0) && !cmd.variadic) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(rest[cmd.positionals.length])} for ${cmd.name} (usage: smoothctl ${cmd.usage})`,
    );
  }
  const wait = values.wait ?? true;
  const json = values.json ?? false;
  switch (cmd.name) {
    case 'reload':
      return { ...common, command: { name: 'reload', groups: [...new Set(values.groups)], wait, json, ...(values.dryRun ? { dryRun: true } : {}) } };
    case 'restart':
      return { ...common, command: { name: 'restart', group: checkGroupName(rest[0]!, 'group'), wait, json } };
    case 'rollback': {
      const groups = [...new Set(rest.map((g) => checkGroupName(g, 'group')))];
      let to: number | null = null;
      if (values.to !== undefined) {
        if (!/^[1-9]\d{0,9}$/.test(values.to)) throw new UsageError(`--to ${JSON.stringify(values.to)} is not a generation number (a whole number from 1, as status shows in the group's history)`);
        if (groups.length !== 1) throw new UsageError('--to needs exactly one GROUP: generation numbers are per group (smoothctl rollback web --to 3)');
        to = Number(values.to);
      }
      return { ...common, command: { name: 'rollback', groups, to, force: values.force ?? false, wait, json } };
    }
    case 'status':
      return { ...common, command: { name: 'status', json, ...(values.ready ? { ready: true } : {}) } };
    case 'stop':
      return { ...common, command: { name: 'stop', wait } };
    case 'metrics':
      return { ...common, command: { name: 'metrics' } };
    case 'events':
      return { ...common, command: { name: 'events', json } };
    case 'logs': {
      const lines = values.lines === undefined ? 20 : /^\d+$/.test(values.lines) ? Number(values.lines) : NaN;
      if (!Number.isSafeInteger(lines) || lines > 1_000_000) throw new UsageError(`-n needs a whole number from 0 to 1000000, got ${JSON.stringify(values.lines)}`);
      const group = rest[0] === undefined ? null : checkGroupName(rest[0], 'group');
      return { ...common, command: { name: 'logs', group, lines, follow: values.follow ?? false, json } };
    }
    default: {
      const never: never = cmd.name;
      throw new Error(`unhandled command ${String(never)}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Help (lazy yargs) and version

const EXIT_CODE_LINES = [
  'Exit codes:',
  '  0   done',
  '  1   reload/restart failed (the old workers keep serving, or the rollback brought them back); status --ready: not ready',
  '  2   refused (Windows, smoothd stopping, rollback refused)',
  '  3   reload failed and its rollback failed too: mixed generations serve',
  '  64  usage error',
  '  69  smoothd not reachable (no socket / connection refused)',
  '  75  --timeout expired (smoothd carries on)',
  '  77  permission denied on the socket',
];

function errorTableText(): string {
  const lines = ['Error codes of the control protocol (JSON-RPC error.code):'];
  for (const e of ERROR_TABLE) lines.push(`  ${String(e.code).padEnd(7)} ${e.name.padEnd(23)} exit ${String(e.exitCode).padEnd(3)} ${e.meaning}`);
  return lines.join('\n');
}

async function helpText(topic: string | null): Promise<string> {
  if (topic === 'errors') return errorTableText() + '\n';
  if (topic === 'protocol') {
    const { METHODS, formatMethodHelp } = await import('../control/methods.js');
    return (
      'JSON-RPC 2.0 over the control socket, one JSON value per line.\n\n' +
      METHODS.map((m) => formatMethodHelp(m)).join('\n\n') +
      '\n\n' +
      errorTableText() +
      '\n'
    );
  }
  const cmd = topic === null ? undefined : COMMANDS.find((c) => c.name === topic);
  if (topic !== null && cmd === undefined) {
    throw new UsageError(`no help topic ${JSON.stringify(topic)} (commands: ${COMMANDS.map((c) => c.name).join(', ')}, errors, protocol)`);
  }
  const { default: yargs } = await import('yargs');
  let y = yargs([])
    .scriptName('smoothctl')
    .usage('Usage: $0 [--socket PATH] [--timeout DURATION] <command>')
    .help('help')
    .alias('help', 'h')
    .version(false)
    .exitProcess(false)
    .wrap(null);
  const addOpt = <T>(yy: T, name: OptName): T => {
    const o = OPTIONS[name];
    const key = o.negatable ? `no-${o.name}` : o.name;
    const config: Record<string, unknown> = { describe: o.describe, type: o.value !== undefined ? 'string' : 'boolean' };
    if (o.short !== undefined) config.alias = o.short;
    if (o.value !== undefined) config.requiresArg = true;
    if (o.name === 'group') config.array = true;
    return (yy as unknown as { option(k: string, c: unknown): T }).option(key, config);
  };
  for (const c of COMMANDS) {
    y = y.command(
      c.name + c.positionals.map((p) => ` <${p.toLowerCase()}>`).join(''),
      c.describe,
      (b) => {
        let bb = b.usage(`Usage: smoothctl ${c.usage}\n\n${c.describe}`);
        for (const o of c.options) bb = addOpt(bb, o);
        return bb;
      },
    );
  }
  for (const o of GLOBAL_OPTS) y = addOpt(y, o);
  y = y.option('version', { alias: 'V', describe: 'print the version', type: 'boolean' });
  y = y.epilog(
    [
      ...EXIT_CODE_LINES,
      '',
      'More: smoothctl help errors (error codes), smoothctl help protocol (the JSON-RPC methods).',
      'Timeouts: none for reload/restart/stop, 10s for status, unless --timeout says otherwise.',
    ].join('\n'),
  );
  const args = cmd === undefined ? ['--help'] : [cmd.name, ...cmd.positionals.map(() => 'x'), '--help'];
  const output = await new Promise<string>((resolve) => {
    void y.parse(args, {}, (_err: unknown, _argv: unknown, out: string) => resolve(out));
  });
  return output.endsWith('\n') ? output : output + '\n';
}

function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    const v = (JSON.parse(text) as { version?: unknown }).version;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------
// Formatting

export function formatBytes(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 100 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatAge(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  const d = Math.floor(h / 24);
  return `${d}d ${h % 24}h`;
}

function ageSince(iso: string | null, now: number): number | null {
  if (iso === null) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : now - t;
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function workerStatusText(w: WorkerStatus): string {
  if (w.statusText) return escapeControl(w.statusText);
  if (w.state === 'backoff' && w.lastExit) return `last exit: ${escapeControl(String(w.lastExit.reason))}`;
  return '-';
}

export function formatStatus(doc: StatusDocument, now: number): string {
  const d = doc.daemon;
  const lines: string[] = [];
  lines.push(
    `smoothd ${d.version} (pid ${d.pid}) ${d.state}, up ${formatAge(d.uptimeMs)}` +
      (d.configPath ? `, config ${escapeControl(d.configPath)}` : ''),
  );
  const r = doc.reload;
  if (r && r.id > 0) {
    const when = r.state === 'running' ? `${r.done}/${r.total}` : `${formatAge(ageSince(r.finishedAt, now))} ago`;
    lines.push(
      `reload ${r.id} ${r.state} (${when})` +
        (r.error ? `: ${escapeControl(r.error)}` : '') +
        (r.queued !== null && r.queued !== undefined ? `; reload ${r.queued} queued` : ''),
    );
  }
  const rows: string[][] = [['GROUP', 'ID', 'PID', 'GEN', 'STATE', 'UPTIME', 'RESTARTS', 'MEM', 'STATUS']];
  const pending: string[] = [];
  for (const g of doc.groups) {
    const label = g.name + (g.pending ? '*' : '');
    if (g.pending) pending.push(g.name);
    if (g.workers.length === 0) {
      rows.push([label, '-', '-', String(g.generation), 'none', '-', '-', '-', `0/${g.desired} workers`]);
      continue;
    }
    for (const w of g.workers) {
      rows.push([
        label,
        w.id === null ? '-' : String(w.id),
        w.pid === null ? '-' : String(w.pid),
        String(w.generation),
        w.state,
        w.pid === null ? '-' : formatAge(ageSince(w.startedAt, now)),
        String(w.restarts),
        formatBytes(w.rssBytes),
        workerStatusText(w),
      ]);
    }
  }
  lines.push(table(rows));
  for (const g of doc.groups) {
    const history = Array.isArray(g.history) ? g.history : [];
    if (history.length <= 1 && !g.revision) continue;
    const each = history.map((h) => `${h.generation} ${h.state === 'bad' ? 'BAD' : h.state}${h.revision ? ` ${escapeControl(h.revision)}` : ''}`);
    lines.push(`releases ${g.name}: ${each.join(', ')}`);
  }
  if (pending.length > 0) {
    lines.push(`* config changed for a non-reloadable group: apply with ${pending.map((p) => `smoothctl restart ${p}`).join(', ')}`);
  }
  const recent = (doc as StatusDocument & { reloads?: ReloadReport[] }).reloads;
  if (Array.isArray(recent) && recent.length > 0) {
    lines.push('recent reloads:');
    for (const r of recent.slice(0, RECENT_RELOADS)) lines.push(`  ${formatReloadLine(r, now)}`);
  }
  return lines.join('\n') + '\n';
}

/** How many of `status.reloads` the table shows. */
export const RECENT_RELOADS = 3;

/** One line per past reload: `reload 4 failed, rolled back, 2.1 s, 5m ago: <error>`. */
export function formatReloadLine(r: ReloadReport, now: number): string {
  const parts = [`reload ${r.id} ${r.state}`];
  if (r.rollback) parts.push(r.rollback.state === 'succeeded' ? 'rolled back' : `rollback ${r.rollback.state}`);
  if (r.durationMs !== null && r.durationMs !== undefined) parts.push(formatSeconds(r.durationMs));
  if (r.finishedAt) parts.push(`${formatAge(ageSince(r.finishedAt, now))} ago`);
  const gens = (r.groups ?? []).filter((g) => g.generation !== null).map((g) => `${g.name} gen ${g.generation}`);
  if (gens.length > 0) parts.push(gens.join(' '));
  const error = r.error ? escapeControl(r.error.split('\n')[0]!) : '';
  return parts.join(', ') + (error ? `: ${error.length > 100 ? `${error.slice(0, 99)}…` : error}` : '');
}

function isReport(x: unknown): x is ReloadReport {
  return typeof x === 'object' && x !== null && typeof (x as ReloadReport).id === 'number' && typeof (x as ReloadReport).state === 'string';
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function formatReportSummary(verb: string, r: ReloadReport): string {
  const groups = (r.groups ?? [])
    .map((g) => (g.state === 'rolled' ? `${g.name} ${g.done}/${g.total}${verb === 'rollback' && g.generation !== null ? ` back on generation ${g.generation}` : ''}` : `${g.name} ${g.state}${g.total > 0 ? ` ${g.done}/${g.total}` : ''}`))
    .join(', ');
  if (r.state === 'succeeded') {
    return `${verb} ${r.id} succeeded${r.durationMs !== null && r.durationMs !== undefined ? ` in ${formatSeconds(r.durationMs)}` : ''}${groups ? `: ${groups}` : ''}`;
  }
  const reason = r.failure ? `${r.failure.group}: ${r.failure.reason}` : (r.error ?? 'no reason given');
  return `${verb} ${r.id} ${r.state}: ${escapeControl(reason)}${rollbackSummary(r)}`;
}

/** "; rolled back web, api to generation 1 in 1.2 s" — what the rollback of a failed reload did. */
function rollbackSummary(r: ReloadReport): string {
  const rb = r.rollback;
  if (!rb) return '';
  const took = rb.durationMs !== null && rb.durationMs !== undefined ? ` in ${formatSeconds(rb.durationMs)}` : '';
  const groups = (r.groups ?? []).filter((g) => g.rollback);
  const each = groups.map((g) => `${g.name}${g.rollback!.generation !== null ? ` to generation ${g.rollback!.generation}` : ''}${g.rollback!.state === 'succeeded' ? '' : ` (${g.rollback!.state})`}`);
  switch (rb.state) {
    case 'succeeded':
      return `; rolled back ${each.join(', ')}${took}`;
    case 'skipped':
      return `; rollback skipped: ${escapeControl(groups.find((g) => g.rollback?.reason)?.rollback?.reason ?? 'nothing to roll back')}`;
    case 'failed':
      return `; the rollback failed too (${each.join(', ')}): mixed generations serve`;
    default:
      return `; rollback ${rb.state}`;
  }
}

function stderrTail(r: ReloadReport): string {
  const f = r.failure;
  if (!f || !Array.isArray(f.stderrTail) || f.stderrTail.length === 0) return '';
  const who = `${f.group} worker ${f.workerId}${f.pid !== null ? ` (pid ${f.pid})` : ''}`;
  return [`last stderr lines of ${who}:`, ...f.stderrTail.map((l) => `  ${escapeControl(String(l))}`)].join('\n') + '\n';
}

// ---------------------------------------------------------------------------
// Commands

interface Ctx {
  io: CliIO;
  socket: string;
  timeoutMs: number | undefined;
  deadline: number | undefined;
}

function remaining(ctx: Ctx): number | undefined {
  return ctx.deadline === undefined ? undefined : Math.max(1, ctx.deadline - ctx.io.now());
}

function json(value: unknown): string {
  return terminalSafeJson(JSON.stringify(value, null, 2)) + '\n';
}

/** `reload --dry-run`: the preview, as a short diff per group (or JSON). */
async function runPreview(ctx: Ctx, cmd: Extract<Command, { name: 'reload' }>): Promise<number> {
  const { io } = ctx;
  const opts: { timeoutMs?: number } = {};
  const t = remaining(ctx);
  if (t !== undefined) opts.timeoutMs = t;
  let preview: unknown;
  try {
    preview = await callRpc(ctx.socket, 'reload', { ...(cmd.groups.length > 0 ? { groups: cmd.groups } : {}), dryRun: true }, opts);
  } catch (err) {
    if (!(err instanceof RpcCallError)) throw err;
    if (cmd.json) io.stdout.write(json({ error: { code: err.code, message: err.message, data: err.data } }));
    io.stderr.write(`smoothctl: reload --dry-run: ${escapeControl(err.message)}\n`);
    return exitCodeForError(err.code);
  }
  if (cmd.json) {
    io.stdout.write(json(preview));
    return EXIT.OK;
  }
  const { formatPreview } = await import('../supervisor/preview.js');
  io.stdout.write(formatPreview(preview as Parameters<typeof formatPreview>[0]).split('\n').map(escapeControl).join('\n'));
  return EXIT.OK;
}

async function runRoll(ctx: Ctx, cmd: Extract<Command, { name: 'reload' | 'restart' | 'rollback' }>): Promise<number> {
  const { io } = ctx;
  if (cmd.name === 'reload' && cmd.dryRun) return runPreview(ctx, cmd);
  const params: Record<string, unknown> =
    cmd.name === 'restart'
      ? { group: cmd.group }
      : cmd.name === 'rollback'
        ? { ...(cmd.groups.length > 0 ? { groups: cmd.groups } : {}), ...(cmd.to !== null ? { to: cmd.to } : {}), ...(cmd.force ? { force: true } : {}) }
        : cmd.groups.length > 0
          ? { groups: cmd.groups }
          : {};
  params.wait = cmd.wait;
  // Progress always goes to stderr (--json only changes stdout): a live bar
  // on a terminal, one line per step otherwise. Nothing to show without wait.
  // (Loaded here, not at the top: `smoothctl status` never pays for it.)
  let progress: ProgressSink | null = null;
  if (cmd.wait) {
    const { progressFor } = await import('./progress.js');
    progress = progressFor(io.stderr, { verb: cmd.name, env: io.env, now: io.now });
  }
  const { PROGRESS_NOTIFICATION } = await import('../control/methods.js');
  const onNotification = (method: string, p: unknown): void => {
    if (method === PROGRESS_NOTIFICATION) progress?.update(escapeTexts(p));
  };
  const opts: { timeoutMs?: number; onNotification: typeof onNotification } = { onNotification };
  const t = remaining(ctx);
  if (t !== undefined) opts.timeoutMs = t;
  let result: unknown;
  try {
    result = await callRpc(ctx.socket, cmd.name, params, opts);
  } catch (err) {
    progress?.finish();
    if (err instanceof RpcCallError) {
      const exit = exitCodeForError(err.code);
      if (isReport(err.data)) {
        if (cmd.json) {
          io.stdout.write(json(err.data));
          io.stderr.write(`smoothctl: ${formatReportSummary(cmd.name, err.data)}\n`);
        } else {
          io.stdout.write(formatReportSummary(cmd.name, err.data) + '\n');
          io.stderr.write(stderrTail(err.data));
        }
        return exit;
      }
      if (cmd.json) io.stdout.write(json({ error: { code: err.code, message: err.message, data: err.data } }));
      // smoothd's rollback refusals already say "rollback refused: ...": not twice.
      const lead = `${cmd.name} ${exit === EXIT.REFUSED ? 'refused' : 'failed'}: `;
      const message = err.message.startsWith(lead) ? err.message.slice(lead.length) : err.message;
      io.stderr.write(`smoothctl: ${lead}${escapeControl(message)}\n`);
      return exit;
    }
    throw err;
  }
  progress?.finish();
  if (cmd.json) {
    io.stdout.write(json(result));
    return EXIT.OK;
  }
  if (!cmd.wait) {
    const r = result as { id?: unknown; state?: unknown } | null;
    io.stdout.write(`${cmd.name} ${String(r?.id ?? '?')} ${String(r?.state ?? 'accepted')}\n`);
    return EXIT.OK;
  }
  if (isReport(result)) {
    io.stdout.write(formatReportSummary(cmd.name, result) + '\n');
    return result.state === 'succeeded' ? EXIT.OK : EXIT.FAILED;
  }
  io.stdout.write(`${cmd.name} done\n`);
  return EXIT.OK;
}

async function runStatus(ctx: Ctx, cmd: Extract<Command, { name: 'status' }>): Promise<number> {
  const opts: { timeoutMs?: number } = {};
  const t = remaining(ctx);
  if (t !== undefined) opts.timeoutMs = t;
  let text: string | null = null;
  const doc = await callRpc(ctx.socket, 'status', {}, { ...opts, onResultText: (t) => (text = t) });
  if (cmd.json && cmd.ready !== true) {
    // Off a terminal (monitoring runs this every few seconds) the document is
    // printed as smoothd sent it, on one line: parsed once, never serialized again.
    ctx.io.stdout.write(text !== null && ctx.io.stdout.isTTY !== true ? `${terminalSafeJson(text)}\n` : json(doc));
    return EXIT.OK;
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as StatusDocument).groups)) {
    throw new ProtocolError(ctx.socket, 'the status answer is not a status document');
  }
  if (cmd.ready === true) {
    // A probe: one line, 0 when ready, 1 with the reason on stderr (69 when smoothd is not reachable, as always).
    const { readiness } = await import('./readiness.js');
    const verdict = readiness(doc as StatusDocument);
    if (cmd.json) ctx.io.stdout.write(json(doc));
    if (verdict.ready) {
      if (!cmd.json) ctx.io.stdout.write(`${verdict.summary}\n`);
      return EXIT.OK;
    }
    ctx.io.stderr.write(`smoothctl: not ready: ${escapeControl(verdict.reason)}\n`);
    return EXIT.FAILED;
  }
  ctx.io.stdout.write(formatStatus(doc as StatusDocument, ctx.io.now()));
  return EXIT.OK;
}

/** `smoothctl metrics`: the exposition document on stdout, as `GET /metrics` serves it. */
async function runMetrics(ctx: Ctx): Promise<number> {
  const opts: { timeoutMs?: number } = {};
  const t = remaining(ctx);
  if (t !== undefined) opts.timeoutMs = t;
  const r = (await callRpc(ctx.socket, 'metrics', {}, opts)) as { text?: unknown } | null;
  if (typeof r?.text !== 'string') throw new ProtocolError(ctx.socket, 'the metrics answer has no text');
  ctx.io.stdout.write(r.text);
  return EXIT.OK;
}

/** A log record as text: `web 7 err | the line` (a JSON line stays JSON, unescaped). */
export function formatLogLine(r: { group?: unknown; workerId?: unknown; stream?: unknown; line?: unknown }): string {
  const text = typeof r.line === 'string' ? escapeControl(r.line) : JSON.stringify(r.line);
  return `${escapeControl(String(r.group))} ${String(r.workerId)} ${r.stream === 'stderr' ? 'err' : 'out'} | ${text}`;
}

/** `smoothctl logs`: the last lines, and with -f the new ones until Ctrl-C or until smoothd stops (exit 0 either way). */
async function runLogs(ctx: Ctx, cmd: Extract<Command, { name: 'logs' }>): Promise<number> {
  const { io } = ctx;
  const print = (r: unknown): void => {
    if (typeof r !== 'object' || r === null) return;
    io.stdout.write(cmd.json ? `${JSON.stringify(r)}\n` : `${formatLogLine(r as Record<string, unknown>)}\n`);
  };
  const params = { ...(cmd.group !== null ? { group: cmd.group } : {}), lines: cmd.lines, follow: cmd.follow };
  if (!cmd.follow) {
    const opts: { timeoutMs?: number } = {};
    const t = remaining(ctx);
    if (t !== undefined) opts.timeoutMs = t;
    const r = (await callRpc(ctx.socket, 'logs', params, opts)) as { lines?: unknown } | null;
    if (!Array.isArray(r?.lines)) throw new ProtocolError(ctx.socket, 'the logs answer has no lines');
    for (const l of r.lines) print(l);
    return EXIT.OK;
  }
  const call = openRpcCall(ctx.socket, 'logs', params, { onNotification: (method, p) => method === 'log' && print(p) });
  return followUntilStopped(ctx, call);
}

/**
 * Follows a streaming call (`logs -f`, `events`) until Ctrl-C or SIGTERM
 * (exit 0) or until smoothd closes the connection (it stopped: exit 0 with a
 * line on stderr).
 */
async function followUntilStopped(ctx: Ctx, call: ReturnType<typeof openRpcCall>): Promise<number> {
  const { io } = ctx;
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    call.close();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await beforeDeadline(ctx, call.result, () => call.close());
  } catch (err) {
    if (interrupted) return EXIT.OK;
    if (err instanceof ConnectionLostError) {
      io.stderr.write('smoothctl: smoothd closed the connection (it stopped)\n');
      return EXIT.OK;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    call.close();
  }
  return EXIT.OK;
}

/** One line per event, like `docker events`: time, name, group, message. */
export function formatEventLine(e: { event?: unknown; at?: unknown; group?: unknown; message?: unknown }): string {
  const group = typeof e.group === 'string' ? e.group : '-';
  return escapeControl(`${String(e.at)} ${String(e.event)} ${group}: ${String(e.message ?? '')}`);
}

/**
 * `smoothctl events`: follows `event` notifications until Ctrl-C (exit 0) or
 * until smoothd closes the connection (it stopped: exit 0 with a line on stderr).
 */
async function runEvents(ctx: Ctx, cmd: Extract<Command, { name: 'events' }>): Promise<number> {
  const { io } = ctx;
  const call = openRpcCall(ctx.socket, 'subscribe', {}, {
    onNotification: (method, params) => {
      if (method !== 'event' || typeof params !== 'object' || params === null) return;
      io.stdout.write(cmd.json ? `${JSON.stringify(params)}\n` : `${formatEventLine(params as Record<string, unknown>)}\n`);
    },
  });
  return followUntilStopped(ctx, call);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolve `p`, or throw TimeoutError at the deadline. */
async function beforeDeadline<T>(ctx: Ctx, p: Promise<T>, onTimeout?: () => void): Promise<T> {
  const t = remaining(ctx);
  if (t === undefined) return p;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          onTimeout?.();
          reject(new TimeoutError(ctx.socket, ctx.timeoutMs ?? t));
        }, t);
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

function pidGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as { code?: string }).code === 'ESRCH';
  }
  // A zombie (exited, not yet reaped by its parent) counts as gone.
  try {
    return /\)\s+Z\s/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function runStop(ctx: Ctx, cmd: Extract<Command, { name: 'stop' }>): Promise<number> {
  const { io } = ctx;
  const opts: { timeoutMs?: number } = {};
  const t = remaining(ctx);
  if (t !== undefined) opts.timeoutMs = t;
  const call = openRpcCall(ctx.socket, 'stop', { wait: true }, opts);
  let pid: number | null = null;
  try {
    const result = (await call.result) as { pid?: unknown } | null;
    if (typeof result?.pid === 'number') pid = result.pid;
  } catch (err) {
    // The daemon may exit before its answer gets out: that is a stop, too.
    if (!(err instanceof ConnectionLostError)) {
      call.close();
      throw err;
    }
  }
  if (!cmd.wait) {
    call.close();
    io.stdout.write(`smoothd is stopping${pid !== null ? ` (pid ${pid})` : ''}\n`);
    return EXIT.OK;
  }
  // smoothd closes every control connection when it exits. Our connection may
  // also be closed earlier (idle timeout, connection limit): then check whether
  // the socket still answers and, if so, wait on a fresh connection.
  let closed = call.closed;
  let cancel = call.close;
  for (;;) {
    await beforeDeadline(ctx, closed, cancel);
    const state = await probeControlSocket(ctx.socket);
    if (state !== 'answering') break;
    await beforeDeadline(ctx, sleep(50));
    const w = waitForConnectionClose(ctx.socket);
    closed = w.closed;
    cancel = w.cancel;
  }
  // The socket is gone; give the process a moment to finish exiting (bounded:
  // the pid may belong to another pid namespace).
  if (pid !== null && pid !== process.pid) {
    const until = io.now() + 5000;
    while (!pidGone(pid) && io.now() < until) await beforeDeadline(ctx, sleep(20));
  }
  io.stdout.write('smoothd stopped\n');
  return EXIT.OK;
}

/** A progress notification with its worker-controlled strings escaped. */
function escapeTexts(p: unknown): unknown {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return p;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) out[k] = typeof v === 'string' ? escapeControl(v) : v;
  return out;
}

function reportError(io: CliIO, err: unknown, ctx: Ctx | null, what: string): number {
  if (err instanceof TimeoutError) {
    io.stderr.write(
      `smoothctl: ${what} timed out after ${formatMs(ctx?.timeoutMs ?? err.timeoutMs)} (--timeout); smoothd carries on\n`,
    );
    return EXIT.TIMEOUT;
  }
  if (err instanceof PermissionDeniedError) {
    io.stderr.write(`smoothctl: ${escapeControl(err.message)}\n`);
    return EXIT.PERMISSION;
  }
  if (err instanceof DaemonUnreachableError || err instanceof ConnectionLostError || err instanceof ProtocolError) {
    io.stderr.write(`smoothctl: ${escapeControl(err.message)}\n`);
    return EXIT.UNREACHABLE;
  }
  if (err instanceof RpcCallError) {
    const name = errorInfo(err.code)?.name;
    io.stderr.write(`smoothctl: ${what} failed: ${escapeControl(err.message)}${name ? ` (${name})` : ''}\n`);
    return exitCodeForError(err.code);
  }
  if (err instanceof ControlClientError) {
    io.stderr.write(`smoothctl: ${escapeControl(err.message)}\n`);
    return EXIT.UNREACHABLE;
  }
  io.stderr.write(`smoothctl: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.FAILED;
}

/** Run smoothctl with these arguments; resolves with the exit code. Never throws. */
export async function main(argv: string[], ioOverrides: Partial<CliIO> = {}): Promise<number> {
  const io = makeIO(ioOverrides);
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      const message = err instanceof UnknownCommandError ? await err.withGuess() : err.message;
      io.stderr.write(`smoothctl: ${escapeControl(message)}; see smoothctl --help\n`);
      return EXIT.USAGE;
    }
    return reportError(io, err, null, 'smoothctl');
  }
  const { command } = parsed;
  if (command.name === 'help') {
    try {
      io.stdout.write(await helpText(command.topic));
      return EXIT.OK;
    } catch (err) {
      if (err instanceof UsageError) {
        io.stderr.write(`smoothctl: ${escapeControl(err.message)}; see smoothctl --help\n`);
        return EXIT.USAGE;
      }
      return reportError(io, err, null, 'help');
    }
  }
  if (command.name === 'version') {
    io.stdout.write(`smoothctl ${packageVersion()}\n`);
    return EXIT.OK;
  }
  let socket: string;
  let privateFolder: boolean;
  try {
    const resolved = resolveSocketPathWithSource({ flag: parsed.socket, env: io.env, uid: io.uid, cwd: io.cwd });
    socket = checkSocketPath(resolved.path);
    privateFolder = resolved.source === 'tmp';
  } catch (err) {
    if (err instanceof SocketPathError) {
      io.stderr.write(`smoothctl: ${escapeControl(err.message)}\n`);
      return EXIT.USAGE;
    }
    return reportError(io, err, null, command.name);
  }
  const timeoutMs = parsed.timeoutMs ?? (command.name === 'status' || command.name === 'metrics' ? 10_000 : undefined);
  const ctx: Ctx = { io, socket, timeoutMs, deadline: timeoutMs === undefined ? undefined : io.now() + timeoutMs };
  try {
    // The /tmp/smoothd-$UID fallback can be planted by another user: talk only to our own socket there.
    if (privateFolder) assertPrivateSocket(socket, io.uid);
    switch (command.name) {
      case 'reload':
      case 'restart':
      case 'rollback':
        return await runRoll(ctx, command);
      case 'status':
        return await runStatus(ctx, command);
      case 'stop':
        return await runStop(ctx, command);
      case 'metrics':
        return await runMetrics(ctx);
      case 'events':
        return await runEvents(ctx, command);
      case 'logs':
        return await runLogs(ctx, command);
      default: {
        const never: never = command;
        throw new Error(`unhandled command ${JSON.stringify(never)}`);
      }
    }
  } catch (err) {
    const code = reportError(io, err, ctx, command.name);
    if ('json' in command && command.json) io.stdout.write(json(jsonError(err, code, ctx)));
    return code;
  }
}

/**
 * With --json, a failure that left nothing on stdout still prints one JSON
 * object there, in the shape `reload --json` uses for an error reply:
 * `{error: {code, message, data}}`. `code` is the JSON-RPC code when smoothd
 * answered, null when smoothctl never got an answer; `data.exitCode` is
 * smoothctl's exit code and `data.reason` says why (unreachable, timeout,
 * permission, protocol).
 */
function jsonError(err: unknown, exitCode: number, ctx: Ctx): { error: { code: number | null; message: string; data: unknown } } {
  if (err instanceof RpcCallError) return { error: { code: err.code, message: err.message, data: err.data ?? null } };
  const reason =
    err instanceof TimeoutError
      ? 'timeout'
      : err instanceof PermissionDeniedError
        ? 'permission'
        : err instanceof ProtocolError
          ? 'protocol'
          : err instanceof DaemonUnreachableError || err instanceof ConnectionLostError || err instanceof ControlClientError
            ? 'unreachable'
            : 'internal';
  const message =
    err instanceof TimeoutError ? `timed out after ${formatMs(ctx.timeoutMs ?? err.timeoutMs)} (--timeout); smoothd carries on` : err instanceof Error ? err.message : String(err);
  return { error: { code: null, message, data: { exitCode, reason, socket: ctx.socket } } };
}
