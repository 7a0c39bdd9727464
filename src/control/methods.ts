/**
 * The one registry of control methods (DESIGN §5): names, params schema, help
 * text, result and the errors each can answer with. The server validates
 * params from it; smoothctl and README print help from it.
 *
 * Imports only errors.ts (no dependencies), so smoothctl can load it cheaply.
 */
import { ERROR_CODES, PROTOCOL_ERRORS, RpcError, errorInfo } from './errors.js';
import { GROUP_NAME_PATTERN } from './group-name.js';

export type ParamType = 'string' | 'boolean' | 'integer' | 'number' | 'string[]';

export interface ParamSpec {
  name: string;
  type: ParamType;
  required: boolean;
  description: string;
  /** For strings (and each item of string[]): the value must match. */
  pattern?: RegExp;
  /** Said in the error when `pattern` does not match. */
  patternHint?: string;
  /** For string[]: at least one item. */
  nonEmpty?: boolean;
}

export interface MethodSpec {
  name: string;
  /** One line. */
  summary: string;
  /** A paragraph: semantics, what waiting means. */
  help: string;
  /**
   * Named params, in positional order (a params array maps onto them in this
   * order). 'any' = passed to the handler unvalidated (test-only methods).
   */
  params: readonly ParamSpec[] | 'any';
  /** What a success result holds. */
  result: string;
  /** Application error codes it can answer with (besides the protocol ones). */
  errors: readonly number[];
  /** Notifications it may send on the caller's connection. */
  notifications: readonly string[];
}

/** Group names as the config allows them (DESIGN §3). */
export { GROUP_NAME_PATTERN };
const GROUP_HINT = 'group names are 1-64 characters of A-Z a-z 0-9 _ . -';

export const PROGRESS_NOTIFICATION = 'reload.progress';
/** params: {event, at, group, workerId, pid, generation, message, data} (DESIGN §11). */
export const EVENT_NOTIFICATION = 'event';

/** params of a `reload.progress` notification. */
export interface ReloadProgress {
  /** The reload (or restart) id this step belongs to. */
  id: number;
  /** The group it concerns, or null for reload-wide steps ("started", "queued behind 3"). */
  group: string | null;
  /**
   * Machine-readable step: loading | group.skipped | group.started |
   * worker.started | worker.ready | worker.stopping | worker.stopped |
   * worker.failed | group.rolled, and `queued` when the call joined the
   * follow-up reload. New steps may be added.
   */
  event: string;
  /** Human text without the group prefix, e.g. "worker 7 (pid 1234) ready". */
  message: string;
  /** New workers ready / to start in `group` (0/0 for reload-wide steps). */
  done: number;
  total: number;
  workerId?: number | null;
  pid?: number | null;
  slot?: number | null;
  generation?: number | null;
}

/** Answer of reload/restart without `wait`. */
export interface ReloadAccepted {
  id: number;
  state: 'running' | 'queued';
}

/** Answer of `stop`: sent when stopping begins. */
export interface StopAccepted {
  /** The daemon's pid, so smoothctl can wait for it to exit. */
  pid: number;
  state: 'stopping';
}

export interface ReloadParams {
  groups?: string[];
  wait?: boolean;
}
export interface RestartParams {
  group: string;
  wait?: boolean;
}
export interface RollbackParams {
  groups?: string[];
  to?: number;
  force?: boolean;
  wait?: boolean;
}
export type StatusParams = Record<string, never>;
export interface StopParams {
  wait?: boolean;
}

const WAIT_HELP =
  'Without wait the answer is {id, state} ("running" or "queued") at once. With wait:true the ' +
  'connection gets `reload.progress` notifications and the answer is the final reload report; ' +
  'a failed roll is an error response whose data is that report. Closing the connection never cancels the roll.';

/** What reload and restart can answer with: they run the same roll. */
const ROLL_ERRORS = [
  ERROR_CODES.RELOAD_FAILED,
  ERROR_CODES.RELOAD_ABORTED,
  ERROR_CODES.RELOAD_REFUSED_WINDOWS,
  ERROR_CODES.DAEMON_STOPPING,
  ERROR_CODES.CONFIG_INVALID,
  ERROR_CODES.NEEDS_RESTART,
  ERROR_CODES.UNKNOWN_GROUP,
] as const;

/** The optional `groups` list of reload and rollback: names in the group-name pattern, never empty. */
function groupsParam(description: string) {
  return {
    name: 'groups',
    type: 'string[]',
    required: false,
    nonEmpty: true,
    pattern: GROUP_NAME_PATTERN,
    patternHint: GROUP_HINT,
    description,
  } as const;
}

export const METHODS = [
  {
    name: 'reload',
    summary: 'Roll every reloadable group (or the listed ones) onto the code and config on disk.',
    help:
      'Re-reads the config, then starts a new worker, waits until it is ready and stops an old one, until no old ' +
      'worker is left. A reload requested while one runs joins the single queued follow-up. ' +
      WAIT_HELP,
    params: [
      groupsParam('Only roll these groups (default: every reloadable group).'),
      { name: 'wait', type: 'boolean', required: false, description: 'Answer when the reload ends (default false).' },
      {
        name: 'dryRun',
        type: 'boolean',
        required: false,
        description: 'Only read and check the config and answer what a reload would change per group; start nothing.',
      },
    ],
    result: '{id, state} without wait; the reload report with wait; {dryRun: true, groups: [{name, reloadable, action, changes}]} with dryRun',
    errors: ROLL_ERRORS,
    notifications: [PROGRESS_NOTIFICATION],
  },
  {
    name: 'restart',
    summary: 'Roll one group, even one marked reloadable: false.',
    help: 'The same roll as reload, limited to one group, and applied to non-reloadable groups too. ' + WAIT_HELP,
    params: [
      {
        name: 'group',
        type: 'string',
        required: true,
        pattern: GROUP_NAME_PATTERN,
        patternHint: GROUP_HINT,
        description: 'The group to roll.',
      },
      { name: 'wait', type: 'boolean', required: false, description: 'Answer when the roll ends (default false).' },
    ],
    result: '{id, state} without wait; the reload report with wait',
    errors: ROLL_ERRORS,
    notifications: [PROGRESS_NOTIFICATION],
  },
  {
    name: 'rollback',
    summary: 'Roll groups back on purpose to an older good generation of their release history.',
    help:
      'Without groups: every reloadable group. The target is the newest good generation older than the current one, ' +
      'or `to` (with exactly one group). Refused (ROLLBACK_REFUSED) when there is none, when its folder or program is gone, ' +
      'or when it is the same release as the current one (an in-place deploy) unless force. The roll applies verify and ' +
      'onFailure like a reload; asked for during a reload it waits as its own item. ' +
      WAIT_HELP,
    params: [
      groupsParam('Only roll back these groups (default: every reloadable group).'),
      { name: 'to', type: 'integer', required: false, description: 'The generation to return to (needs exactly one group).' },
      { name: 'force', type: 'boolean', required: false, description: 'Roll back even to the same release as the current one.' },
      { name: 'wait', type: 'boolean', required: false, description: 'Answer when the rollback ends (default false).' },
    ],
    result: '{id, state} without wait; the reload report (trigger "rollback") with wait',
    errors: [...ROLL_ERRORS, ERROR_CODES.ROLLBACK_REFUSED],
    notifications: [PROGRESS_NOTIFICATION],
  },
  {
    name: 'status',
    summary: 'The status document (version 1): daemon, last reload, groups and workers.',
    help: 'Read-only; cheap enough to poll every few seconds.',
    params: [],
    result: 'the status document (DESIGN §6)',
    errors: [],
    notifications: [],
  },
  {
    name: 'stop',
    summary: 'Stop every group gracefully, then exit.',
    help:
      'Answers {pid, state: "stopping"} when stopping begins; the daemon closes the connection when it exits. ' +
      'wait is accepted for symmetry; the answer never waits for the exit.',
    params: [{ name: 'wait', type: 'boolean', required: false, description: 'Accepted, no effect on the answer.' }],
    result: '{pid, state: "stopping"}',
    errors: [],
    notifications: [],
  },
  {
    name: 'metrics',
    summary: "smoothd's metrics in the Prometheus text format 0.0.4.",
    help:
      'The same document `GET /metrics` serves when the config has metrics: {listen}: worker states, exits, ' +
      'reload results and durations, the workers\' request and error counters. Read-only and cheap; for ' +
      "node_exporter's textfile collector: smoothctl metrics > FILE.prom.$$ && mv FILE.prom.$$ FILE.prom.",
    params: [],
    result: '{contentType, text}: text is the exposition document',
    errors: [],
    notifications: [],
  },
  {
    name: 'subscribe',
    summary: 'Stream `event` notifications for every change until the connection closes.',
    help:
      'Sends `subscribed` {events} once, then one `event` notification {event, at, group, workerId, pid, generation, ' +
      'message, data} per change: worker.started, worker.ready, worker.stopping, worker.stopped, worker.failed, ' +
      'worker.crashed, worker.killed, bake.*, verify.failed, watch.*, rollback.started, rollback.done, reload.started, ' +
      'reload.done (data.result), config.refused, daemon.stopping. It never answers while the connection is open ' +
      '(the idle timeout leaves it alone); a subscriber that does not read is disconnected.',
    params: [
      {
        name: 'events',
        type: 'string[]',
        required: false,
        description: 'Only these event names (default: all).',
      },
    ],
    result: 'null, when the connection closes',
    errors: [],
    notifications: [EVENT_NOTIFICATION, 'subscribed'],
  },
  {
    name: 'logs',
    summary: "The workers' last output lines (all groups or one), and with follow the new ones.",
    help:
      'Each line is {at, group, workerId, pid, generation, stream, line}; line is the text, or the object when the ' +
      'worker wrote a JSON object (pino, bunyan). Without follow the answer is {lines}. With follow:true the last ' +
      'lines and then every new one come as `log` notifications until the connection closes (the answer, null, ' +
      'comes then); a follower that does not read is disconnected.',
    params: [
      { name: 'group', type: 'string', required: false, pattern: GROUP_NAME_PATTERN, patternHint: GROUP_HINT, description: 'Only this group (default: all).' },
      { name: 'lines', type: 'integer', required: false, description: 'How many of the last lines (default 20).' },
      { name: 'follow', type: 'boolean', required: false, description: 'Keep sending new lines (default false).' },
    ],
    result: '{lines: [...]} without follow; null when a follow ends',
    errors: [ERROR_CODES.UNKNOWN_GROUP],
    notifications: ['log'],
  },
] as const satisfies readonly MethodSpec[];

export type ControlMethodName = (typeof METHODS)[number]['name'];

export function findMethod(name: string, extra: readonly MethodSpec[] = []): MethodSpec | undefined {
  return (METHODS as readonly MethodSpec[]).find((m) => m.name === name) ?? extra.find((m) => m.name === name);
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

const TYPE_WORDS: Record<ParamType, string> = {
  string: 'a string',
  boolean: 'true or false',
  integer: 'an integer',
  number: 'a number',
  'string[]': 'an array of strings',
};

function bad(method: string, field: string, message: string): RpcError {
  return new RpcError(PROTOCOL_ERRORS.INVALID_PARAMS, `invalid params for ${method}: ${message}`, { field });
}

function checkValue(method: string, p: ParamSpec, value: unknown): void {
  const typeError = (): RpcError =>
    bad(method, p.name, `"${p.name}" must be ${TYPE_WORDS[p.type]}, got ${describeValue(value)}`);
  const checkPattern = (s: string, field: string): void => {
    if (p.pattern !== undefined && !p.pattern.test(s)) {
      throw bad(method, field, `"${field}" has invalid value ${JSON.stringify(s)}${p.patternHint ? ` (${p.patternHint})` : ''}`);
    }
  };
  switch (p.type) {
    case 'string':
      if (typeof value !== 'string') throw typeError();
      checkPattern(value, p.name);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') throw typeError();
      return;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw typeError();
      return;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw typeError();
      return;
    case 'string[]':
      if (!Array.isArray(value)) throw typeError();
      if (p.nonEmpty && value.length === 0) {
        throw bad(method, p.name, `"${p.name}" must not be empty (leave it out to mean all)`);
      }
      value.forEach((item: unknown, i: number) => {
        if (typeof item !== 'string') {
          throw bad(method, `${p.name}[${i}]`, `"${p.name}[${i}]" must be a string, got ${describeValue(item)}`);
        }
        checkPattern(item, `${p.name}[${i}]`);
      });
      return;
    default: {
      const never: never = p.type;
      throw new Error(`unknown param type ${String(never)}`);
    }
  }
}

/**
 * Validate request params against a method's schema. `raw` is what the
 * request carried: undefined (absent), an object, or an array (positional,
 * mapped onto the schema's order). Returns the named params; throws an
 * RpcError -32602 naming the field otherwise. Unknown fields are refused
 * (a typo like "grups" must not silently roll every group).
 */
export function validateParams(spec: MethodSpec, raw: unknown): Record<string, unknown> {
  if (raw !== undefined && (raw === null || typeof raw !== 'object')) {
    throw bad(spec.name, 'params', `params must be an object or an array, got ${describeValue(raw)}`);
  }
  if (spec.params === 'any') return (raw ?? {}) as Record<string, unknown>;
  const schema = spec.params;
  let named: Record<string, unknown>;
  if (raw === undefined) {
    named = {};
  } else if (Array.isArray(raw)) {
    if (raw.length > schema.length) {
      throw bad(
        spec.name,
        'params',
        `${spec.name} takes at most ${schema.length} positional param${schema.length === 1 ? '' : 's'}` +
          `${schema.length > 0 ? ` (${schema.map((p) => p.name).join(', ')})` : ''}, got ${raw.length}`,
      );
    }
    named = {};
    raw.forEach((v: unknown, i: number) => {
      named[schema[i]!.name] = v;
    });
  } else {
    named = raw as Record<string, unknown>;
    for (const key of Object.keys(named)) {
      if (!schema.some((p) => p.name === key)) {
        const allowed = schema.length > 0 ? `allowed: ${schema.map((p) => p.name).join(', ')}` : 'it takes none';
        throw bad(spec.name, key, `unknown param "${key}" (${allowed})`);
      }
    }
  }
  const out: Record<string, unknown> = {};
  for (const p of schema) {
    const value = named[p.name];
    if (value === undefined) {
      if (p.required) throw bad(spec.name, p.name, `"${p.name}" is required (${p.description})`);
      continue;
    }
    checkValue(spec.name, p, value);
    out[p.name] = value;
  }
  return out;
}

/** Plain-text help for one method (smoothctl, README). */
export function formatMethodHelp(spec: MethodSpec): string {
  const lines = [`${spec.name} — ${spec.summary}`, `  ${spec.help}`];
  if (spec.params !== 'any' && spec.params.length > 0) {
    lines.push('  params:');
    for (const p of spec.params) {
      lines.push(`    ${p.name}${p.required ? '' : '?'}: ${p.type} — ${p.description}`);
    }
  }
  lines.push(`  result: ${spec.result}`);
  if (spec.notifications.length > 0) lines.push(`  notifications: ${spec.notifications.join(', ')}`);
  if (spec.errors.length > 0) {
    lines.push(`  errors: ${spec.errors.map((c) => `${c} ${errorInfo(c)?.name ?? ''}`.trim()).join(', ')}`);
  }
  return lines.join('\n');
}
