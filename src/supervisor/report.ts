/**
 * The documents smoothd hands out: the status document (DESIGN §6, versioned,
 * fields may be added but never renamed or removed) and the reload report.
 */

export type DaemonState = 'starting' | 'running' | 'reloading' | 'stopping';
export type ReloadState = 'idle' | 'running' | 'succeeded' | 'failed' | 'aborted';
export type GroupRollState = 'rolled' | 'skipped' | 'failed' | 'pending' | 'rolling' | 'verifying' | 'watching';
export type RollbackState = 'running' | 'succeeded' | 'failed' | 'skipped';
export type WorkerStateName = 'starting' | 'ready' | 'stopping' | 'backoff';

export type HistoryState = 'current' | 'good' | 'bad';

/** One generation of a group's release history as the status document shows it (history.ts builds it). */
export interface HistoryStatus {
  generation: number;
  createdAt: string;
  cwd: string;
  command: string[];
  revision: string | null;
  state: HistoryState;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  at: string;
  /** Why it ended: "crashed", "stopped", "killed after stopTimeout", "not ready within 30s", ... */
  reason: string;
}

export interface ReloadFailure {
  group: string;
  workerId: number;
  slot: number;
  pid: number | null;
  reason: string;
  /** Last lines the failing worker wrote to stderr. */
  stderrTail: string[];
}

/** What deploy verification saw of a group (DESIGN §10). */
export interface VerificationReport {
  bakeMs: number;
  canary: { workerId: number | null; requests: number; errors: number };
  /** The old workers' figures over the same window. */
  old: { requests: number; errors: number };
  verdict: 'passed' | 'failed' | 'insufficient-data' | 'off';
}

export interface ReloadGroupReport {
  name: string;
  state: GroupRollState;
  done: number;
  total: number;
  generation: number | null;
  /** REVISION of the generation rolled to, or null. */
  revision: string | null;
  verification: VerificationReport;
  /** Set when the reload failed and rolled this group back. */
  rollback: { state: RollbackState; generation: number | null; reason?: string } | null;
}

export interface ReloadReport {
  id: number;
  state: ReloadState;
  /** What asked for it: "rpc", "signal", "restart". */
  trigger: string;
  startedAt: string | null;
  /** When every new worker was ready. */
  readyAt: string | null;
  /** When every old worker had exited (or the reload ended otherwise). */
  finishedAt: string | null;
  durationMs: number | null;
  readyMs: number | null;
  done: number;
  total: number;
  /** Human-readable reason when failed/aborted, else null. */
  error: string | null;
  /** Stable code of the error (see README "Error codes"), else null. */
  errorCode: number | null;
  failure: ReloadFailure | null;
  /** Id of the follow-up reload already queued behind this one, or null. */
  queued: number | null;
  groups: ReloadGroupReport[];
  /** Set when the reload failed and its groups were rolled back (onFailure: rollback). */
  rollback: { state: RollbackState; durationMs: number | null } | null;
}

export interface WorkerStatus {
  id: number | null;
  slot: number;
  pid: number | null;
  generation: number;
  state: WorkerStateName;
  startedAt: string | null;
  readyAt: string | null;
  restarts: number;
  rssBytes: number | null;
  statusText: string | null;
  lastExit: ExitInfo | null;
}

export interface GroupStatus {
  name: string;
  reloadable: boolean;
  generation: number;
  desired: number;
  /** True when the config on disk changed a non-reloadable group: `smoothctl restart GROUP` applies it. */
  pending: boolean;
  listen: { name: string; address: string; bound: string | null }[];
  workers: WorkerStatus[];
  /** REVISION of the current generation, or null. */
  revision: string | null;
  /** Release history, newest first: `current`, then older `good` / `bad` generations (DESIGN §10). */
  history: HistoryStatus[];
}

export interface StatusDocument {
  version: 1;
  daemon: {
    pid: number;
    version: string;
    state: DaemonState;
    startedAt: string;
    uptimeMs: number;
    platform: string;
    configPath: string;
  };
  reload: ReloadReport;
  groups: GroupStatus[];
}
