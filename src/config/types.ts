/**
 * The validated configuration, as the rest of smoothd sees it.
 * Produced by `loadConfig` / `validateConfig` (src/config/load.ts, schema.ts);
 * every duration is in milliseconds, every default filled in.
 */

export type ReadyMode =
  | { kind: 'ipc' }
  | { kind: 'notify' }
  | { kind: 'delay'; ms: number };

/** One listen address, normalised. `key` identifies the socket across reloads. */
export type ListenAddress =
  | { kind: 'tcp'; host: string; port: number; family: 4 | 6; key: string }
  | { kind: 'unix'; path: string; key: string }
  | { kind: 'systemd'; fdName: string; key: string };

export interface ListenEntry {
  address: ListenAddress;
  /** LISTEN_FDNAMES entry; default `listen<i>`. */
  name: string;
  /** listen() backlog the worker should use; informational for the kernel queue. */
  backlog: number;
  /** File mode for unix sockets (e.g. 0o660), or null for the default. */
  mode: number | null;
  /** The text the operator wrote, for messages. */
  text: string;
}

export interface RollingPolicy {
  surge: number;
  unavailable: number;
}

/** Deploy verification (DESIGN §10); durations in ms, 0 = off. */
export interface VerifyPolicy {
  /** The canary must stay ready this long before a further old worker is stopped. */
  bakeMs: number;
  /** A new worker whose 5xx share exceeds this fails the reload; null = not judged. */
  maxErrorRate: number | null;
  /** Responses a new worker needs before its error rate is judged. */
  minRequests: number;
  /** After the roll, a crash of a new-generation worker within this window fails the deploy. */
  watchMs: number;
}

export type OnFailure = 'rollback' | 'keep';

export interface GroupConfig {
  name: string;
  /** argv as written; command[0] is looked up in PATH at spawn/check time. */
  command: string[];
  /** As written (absolute, resolved against the config folder). Realpath happens per generation. */
  cwd: string;
  /** Only the keys from the config; merged over smoothd's environment at spawn. */
  env: Record<string, string>;
  user: string | null;
  group: string | null;
  /**
   * The ids a worker with `user`/`group` runs as, resolved through NSS when the
   * config is checked (loadCheckedConfig); absent or null when neither is set.
   */
  account?: WorkerAccount | null;
  count: number;
  listen: ListenEntry[];
  reloadable: boolean;
  ready: ReadyMode;
  readyTimeoutMs: number;
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
  rolling: RollingPolicy;
  restartDelayMs: number;
  maxRestartDelayMs: number;
  verify: VerifyPolicy;
  /** What a failed reload does with this group's ready new workers. */
  onFailure: OnFailure;
  /** Generations kept in the history (1..100). */
  history: number;
  /**
   * Give workers NODE_COMPILE_CACHE (a per-group folder smoothd owns; Node 22.1+
   * uses it, older Nodes ignore it). Absent means true; `compileCache: false` turns it off.
   */
  compileCache?: boolean;
  /**
   * Nice levels added to every thread of a new worker until it is ready, then
   * taken back (src/runtime/boot-nice.ts). Absent or 0: off.
   */
  bootNice?: number;
  /** The ring of the workers' last output lines (`smoothctl logs`); absent = the defaults. */
  logs?: LogLimits;
}

/** Who a worker runs as: numeric ids, so spawning never looks an account up again. */
export interface WorkerAccount {
  /** null: only `group:` is set, the worker keeps smoothd's uid. */
  uid: number | null;
  gid: number;
  /** The user's supplementary groups (setpriv --init-groups); false means none (--clear-groups). */
  initGroups: boolean;
}

export interface Config {
  /** Absolute path of the file it came from. */
  path: string;
  socketMode: number;
  socketGroup: string | null;
  /** In config order (= roll order). */
  groups: GroupConfig[];
  /** `metrics: {listen}`: serve GET /metrics over HTTP (DESIGN §11); null/absent = off. */
  metrics?: MetricsConfig | null;
}

export interface LogLimits {
  /** Lines kept (default 1000). */
  lines: number;
  /** Bytes of text kept (default 1 MiB). */
  bytes: number;
}

export interface MetricsConfig {
  /** TCP only. */
  address: Extract<ListenAddress, { kind: 'tcp' }>;
  /** The text the operator wrote. */
  listen: string;
}

/** One validation problem: where, what was there, what is allowed. */
export interface ConfigIssue {
  /** Key path such as `groups.web.count` (or `` for the whole document). */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  readonly file: string;
  constructor(file: string, issues: ConfigIssue[]) {
    super(
      `${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n` +
        issues.map((i) => `  ${i.path || '(document)'}: ${i.message}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.issues = issues;
    this.file = file;
  }
}
