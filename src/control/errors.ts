/**
 * Error codes of the control protocol (DESIGN §5) and the error a method
 * handler throws to answer with one of them.
 *
 * The application codes are stable: scripts match on them and README lists
 * them (generate the README table from ERROR_TABLE). Never renumber a code or
 * reuse a retired one; add new ones in -32000..-32098.
 *
 * No imports: smoothctl loads this on its fast path.
 */

/** Standard JSON-RPC 2.0 codes. */
export const PROTOCOL_ERRORS = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
} as const;

/** smoothd's application codes, in the -32000..-32099 range reserved for servers. */
export const ERROR_CODES = {
  RELOAD_FAILED: -32001,
  RELOAD_REFUSED_WINDOWS: -32002,
  DAEMON_STOPPING: -32003,
  CONFIG_INVALID: -32004,
  UNKNOWN_GROUP: -32005,
  RELOAD_ABORTED: -32006,
  NEEDS_RESTART: -32007,
  TOO_MANY_CONNECTIONS: -32008,
  ROLLBACK_FAILED: -32009,
  ROLLBACK_REFUSED: -32010,
  INTERNAL: -32099,
} as const;

export type ErrorCodeName = keyof typeof ERROR_CODES | keyof typeof PROTOCOL_ERRORS;

/** smoothctl exit codes (DESIGN §2). */
export const EXIT = {
  OK: 0,
  FAILED: 1,
  REFUSED: 2,
  /** The reload failed and so did its rollback: mixed generations serve. */
  ROLLBACK_FAILED: 3,
  USAGE: 64,
  UNREACHABLE: 69,
  TIMEOUT: 75,
  PERMISSION: 77,
} as const;

export interface ErrorCodeInfo {
  code: number;
  name: ErrorCodeName;
  /** One line, for README and `smoothctl --help`. */
  meaning: string;
  /** What `error.data` holds, when anything. */
  data: string | null;
  /** The exit code smoothctl returns when the daemon answers with this error. */
  exitCode: number;
}

/** Every code the daemon can answer with, protocol codes first. */
export const ERROR_TABLE: readonly ErrorCodeInfo[] = [
  { code: -32700, name: 'PARSE_ERROR', meaning: 'the line is not valid JSON', data: null, exitCode: EXIT.USAGE },
  {
    code: -32600,
    name: 'INVALID_REQUEST',
    meaning: 'not a JSON-RPC 2.0 request object (also: line over the size limit, nesting too deep, empty batch)',
    data: null,
    exitCode: EXIT.USAGE,
  },
  { code: -32601, name: 'METHOD_NOT_FOUND', meaning: 'no such method', data: null, exitCode: EXIT.USAGE },
  {
    code: -32602,
    name: 'INVALID_PARAMS',
    meaning: 'params are not an object/array, or a field is missing, unknown or of the wrong type (the message names it)',
    data: '{ field }',
    exitCode: EXIT.USAGE,
  },
  {
    code: ERROR_CODES.RELOAD_FAILED,
    name: 'RELOAD_FAILED',
    meaning:
      'a new worker exited, missed readyTimeout, crashed during the bake or watch, or answered too many errors; the roll stopped, no further old worker was touched, and the groups it rolled were rolled back (onFailure: rollback)',
    data: 'the reload report (with failure.stderrTail)',
    exitCode: EXIT.FAILED,
  },
  {
    code: ERROR_CODES.RELOAD_REFUSED_WINDOWS,
    name: 'RELOAD_REFUSED_WINDOWS',
    meaning: 'reload is not supported on Windows (no inherited listen sockets); restart smoothd instead',
    data: null,
    exitCode: EXIT.REFUSED,
  },
  {
    code: ERROR_CODES.DAEMON_STOPPING,
    name: 'DAEMON_STOPPING',
    meaning: 'smoothd is stopping and refuses new reloads and restarts',
    data: null,
    exitCode: EXIT.REFUSED,
  },
  {
    code: ERROR_CODES.CONFIG_INVALID,
    name: 'CONFIG_INVALID',
    meaning: 'the config file no longer loads or validates; nothing changed',
    data: 'the reload report, when a reload had been assigned an id',
    exitCode: EXIT.FAILED,
  },
  {
    code: ERROR_CODES.UNKNOWN_GROUP,
    name: 'UNKNOWN_GROUP',
    meaning: 'a group named in the request is not in the config',
    data: '{ group, known: [names] }',
    exitCode: EXIT.USAGE,
  },
  {
    code: ERROR_CODES.RELOAD_ABORTED,
    name: 'RELOAD_ABORTED',
    meaning: 'the reload was cut short (smoothd began stopping while it ran)',
    data: 'the reload report',
    exitCode: EXIT.FAILED,
  },
  {
    code: ERROR_CODES.NEEDS_RESTART,
    name: 'NEEDS_RESTART',
    meaning: 'the config changes something that cannot be applied live (e.g. an overlapping address); restart smoothd',
    data: 'the reload report, when a reload had been assigned an id',
    exitCode: EXIT.FAILED,
  },
  {
    code: ERROR_CODES.TOO_MANY_CONNECTIONS,
    name: 'TOO_MANY_CONNECTIONS',
    meaning: 'every control connection is busy; try again',
    data: null,
    exitCode: EXIT.UNREACHABLE,
  },
  {
    code: ERROR_CODES.ROLLBACK_FAILED,
    name: 'ROLLBACK_FAILED',
    meaning: 'the reload failed and so did its rollback (a worker of the previous generation failed too): mixed generations serve',
    data: 'the reload report (with rollback)',
    exitCode: EXIT.ROLLBACK_FAILED,
  },
  {
    code: ERROR_CODES.ROLLBACK_REFUSED,
    name: 'ROLLBACK_REFUSED',
    meaning: 'a rollback cannot run: no good generation to return to, its folder or program is gone, or it is the same release as the current one (in place; --force)',
    data: null,
    exitCode: EXIT.REFUSED,
  },
  {
    code: ERROR_CODES.INTERNAL,
    name: 'INTERNAL',
    meaning: 'a bug in smoothd (the daemon logged it); the request that hit it changed nothing and the daemon keeps running',
    data: null,
    exitCode: EXIT.FAILED,
  },
];

const byCode = new Map<number, ErrorCodeInfo>(ERROR_TABLE.map((e) => [e.code, e]));

export function errorInfo(code: number): ErrorCodeInfo | undefined {
  return byCode.get(code);
}

/** The smoothctl exit code for an error response: 1 for codes it does not know. */
export function exitCodeForError(code: number): number {
  return byCode.get(code)?.exitCode ?? EXIT.FAILED;
}

/**
 * Throw this from a method handler to answer with `code`, `message` and `data`.
 * Any other thrown value becomes INTERNAL (-32099) and is logged.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }

  toJSON(): { code: number; message: string; data?: unknown } {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }
}

/** Convenience constructors for the common refusals. */
export const rpcErrors = {
  reloadRefusedWindows: (): RpcError =>
    new RpcError(
      ERROR_CODES.RELOAD_REFUSED_WINDOWS,
      'reload is not supported on Windows: workers cannot inherit listen sockets there; restart smoothd instead',
    ),
  daemonStopping: (): RpcError => new RpcError(ERROR_CODES.DAEMON_STOPPING, 'smoothd is stopping; request refused'),
  unknownGroup: (group: string, known: string[]): RpcError =>
    new RpcError(
      ERROR_CODES.UNKNOWN_GROUP,
      `unknown group ${JSON.stringify(group)} (groups: ${known.length > 0 ? known.join(', ') : 'none'})`,
      { group, known },
    ),
  invalidParams: (field: string, message: string): RpcError =>
    new RpcError(PROTOCOL_ERRORS.INVALID_PARAMS, message, { field }),
};
