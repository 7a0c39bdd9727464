/**
 * The supervisor's state, the events it reacts to and the effects it asks for.
 * Everything here is plain data (structuredClone-able) so the machine stays pure
 * and tests can snapshot and compare it.
 */
import type { Config, GroupConfig } from '../config/types.js';
import type { ExitInfo, ReloadFailure, ReloadReport, GroupRollState, DaemonState, RollbackState } from './report.js';
import type { Counters, Verdict } from './verify.js';
import type { TimerTable } from './timers.js';

/** A group's config resolved when its generation was created (DESIGN §1). */
export interface GenerationSpec extends GroupConfig {
  /** realpath of `cwd` at the moment the generation was created. */
  cwdReal: string;
  /** command[0] after the PATH lookup. */
  executable: string;
  /** First line of a REVISION file in cwdReal (Capistrano writes one), else null. */
  revision?: string | null;
}

export type WorkerPhase = 'starting' | 'ready' | 'stopping';

export interface WorkerRecord {
  id: number;
  group: string;
  slot: number;
  generation: number;
  pid: number | null;
  phase: WorkerPhase;
  startedAt: number;
  readyAt: number | null;
  stoppingAt: number | null;
  statusText: string | null;
  /** Why smoothd asked it to stop (set when phase becomes stopping). */
  stopReason: string | null;
  /** SIGKILL was sent after stopTimeout. */
  killed: boolean;
  /** Set when this worker is retired by a reload, so the report waits for its exit. */
  retiredBy: number | null;
  /** Started by a reload as part of that reload's target generation. */
  startedBy: number | null;
  /** Stopped because it failed (missed readyTimeout); its slot's backoff started at the timeout. */
  failed: boolean;
  /** Cumulative counters the worker last reported (deploy verification), or null before any report. */
  counters: Counters | null;
  /** Its counters when it became ready: judgement uses what came after. */
  baseline: Counters | null;
  /**
   * Its leader exited while other members of its process group live on (DESIGN §13): the
   * worker stays `stopping` until `worker.gone`. `crash`: the exit was unasked and the
   * slot was already handled as a crash; only the rest of the group is left to stop.
   */
  leaderExit: { code: number | null; signal: string | null; crash: boolean } | null;
}

export interface SlotState {
  /** The generation this slot runs when not rolling: crash restarts use it. */
  generation: number;
  restarts: number;
  lastExit: ExitInfo | null;
  /** Next crash backoff delay. */
  backoffMs: number;
  /** Set while waiting for the backoff timer. */
  backoffUntil: number | null;
}

export interface GroupState {
  name: string;
  /** Group-level settings in force (count, rolling, reloadable, restart delays). */
  config: GroupConfig;
  /** The generation the group runs: the newest, or the one a failed reload rolled back to. */
  generation: number;
  /** Highest generation ever created for this group: the next reload takes this + 1 (numbers are never reused). */
  lastGeneration: number;
  specs: Record<string, GenerationSpec>;
  slots: SlotState[];
  /** The generation being rolled to while this group's turn in a reload is on. */
  rollTarget: number | null;
  /** Config on disk differs and waits for an explicit restart (non-reloadable groups). */
  pending: GenerationSpec | null;
  /** Removed from the config: drained, then dropped. */
  removing: boolean;
  /** Release history, newest first (src/supervisor/history.ts). */
  history: HistoryEntry[];
}

/** One generation a group ran, with what became of it. */
export interface HistoryEntry {
  generation: number;
  createdAt: number;
  spec: GenerationSpec;
  /** good: its start or roll (and watch) succeeded; bad: it failed; null: not known yet. */
  outcome: 'good' | 'bad' | null;
}

/** Deploy verification of one group during a reload (DESIGN §10). */
export interface VerificationRun {
  /** The first new worker to become ready: the canary. */
  canaryId: number | null;
  /** When the canary became ready (the window of the figures starts here). */
  startedAt: number | null;
  /** The bake is over (passed), or there is none. */
  baked: boolean;
  /** Canary's counters since ready, as of its last report (kept when it is gone). */
  canary: Counters;
  /** Old workers' counters when the window started, and as last reported. */
  oldBase: Record<string, Counters>;
  oldNow: Record<string, Counters>;
  /** Some new worker was judged with at least minRequests responses, within budget. */
  judged: boolean;
  /** Old workers asked to shed keep-alive clients during the bake. */
  shedding: number[];
  verdict: Verdict | null;
}

export interface ReloadGroupEntry {
  name: string;
  state: GroupRollState;
  /** The group's generation before this reload: where a rollback returns. */
  previousGeneration: number | null;
  verification: VerificationRun | null;
  /** Rollback of this group, once the reload failed. */
  rollback: { state: RollbackState; generation: number | null; reason: string | null } | null;
  done: number;
  total: number;
  generation: number | null;
  /** Spec the group will roll to when its turn comes. */
  spec: GenerationSpec | null;
  /** Settings before this reload, restored if the roll fails. */
  previous: GroupConfig | null;
  added: boolean;
  /** A rollback on purpose: the group returns to this existing generation (no new number). */
  fixed?: boolean;
}

export interface ReloadRun {
  id: number;
  trigger: string;
  /** null = every group. */
  groups: string[] | null;
  /** Groups rolled even when `reloadable: false` (smoothctl restart). */
  force: string[];
  phase: 'loading' | 'rolling' | 'draining' | 'watching' | 'rollingBack';
  /** Groups gone from the config: drained once this reload has succeeded (a failed one touches no old worker). */
  removed: string[];
  startedAt: number;
  readyAt: number | null;
  order: ReloadGroupEntry[];
  /** Set once the reload failed and its groups are rolled back (onFailure: rollback). */
  rollback: RollbackRun | null;
}

export interface RollbackRun {
  startedAt: number;
  /** Groups still to roll back, in order (the failing one first, then the others in reverse roll order). */
  queue: string[];
  /** The group rolling back now. */
  current: string | null;
  /** The failure that started it: the report keeps it. */
  error: string;
  failure: ReloadFailure | null;
  /** Set when a worker of the previous generation failed too. */
  failed: string | null;
}

/** `smoothctl rollback`: per group, the generation of its history to return to (resolved and checked by the runtime). */
export interface RollbackTarget {
  group: string;
  generation: number;
  spec: GenerationSpec;
}

export interface QueuedRollback {
  id: number;
  targets: RollbackTarget[];
}

export interface QueuedReload {
  id: number;
  trigger: string;
  groups: string[] | null;
  force: string[];
}

export interface MachineState {
  platform: string;
  daemon: DaemonState;
  startedAt: number;
  configPath: string;
  /** Exit code once everything has stopped (0, or 71 for a failed start). */
  exitCode: number;
  exited: boolean;
  nextWorkerId: number;
  nextReloadId: number;
  groups: GroupState[];
  workers: WorkerRecord[];
  /** Armed timers: key -> due time (timers.ts). A timer event whose key is absent is stale and ignored. */
  timers: TimerTable;
  reload: ReloadRun | null;
  queued: QueuedReload | null;
  /** Rollbacks asked for while a reload ran: each runs as its own item, before the queued reload. */
  queuedRollbacks: QueuedRollback[];
  lastReport: ReloadReport;
  startFailure: ReloadFailure | null;
}

// ---------------------------------------------------------------- events

export type MachineEvent =
  | { type: 'start' }
  | { type: 'worker.spawned'; workerId: number; pid: number }
  | { type: 'worker.spawnFailed'; workerId: number; error: string }
  | { type: 'worker.ready'; workerId: number }
  | { type: 'worker.status'; workerId: number; text: string }
  | { type: 'worker.stats'; workerId: number; requests: number | null; errors: number | null }
  /** The leader exited; `lingering`: other members of its process group still run (then `worker.gone` follows). */
  | { type: 'worker.exited'; workerId: number; code: number | null; signal: string | null; stderrTail: string[]; lingering?: boolean }
  /** /proc shows the process group of a worker whose leader had exited empty (zombies count as gone). */
  | { type: 'worker.gone'; workerId: number }
  /** `stderrTail`: the last stderr lines of the worker named by the timer's `stderrOf`, when it fired. */
  | { type: 'timer'; key: string; stderrTail?: string[] }
  | { type: 'reload.request'; requestId: number; groups: string[] | null; trigger: string }
  | { type: 'restart.request'; requestId: number; group: string }
  | { type: 'rollback.request'; requestId: number; targets: RollbackTarget[] }
  | { type: 'config.loaded'; reloadId: number; config: Config; specs: Record<string, GenerationSpec> }
  | { type: 'config.failed'; reloadId: number; message: string; issues: { path: string; message: string }[] }
  | { type: 'stop.request'; requestId: number | null; force: boolean };

// ---------------------------------------------------------------- effects

/** Symbolic error kinds; the control layer maps them to stable JSON-RPC codes. */
export type RefusalKind = 'windows' | 'stopping' | 'unknown-group';

export interface ProgressEvent {
  step:
    | 'loading'
    | 'group.started'
    | 'worker.started'
    | 'worker.ready'
    | 'worker.stopping'
    | 'worker.stopped'
    | 'worker.failed'
    | 'group.rolled'
    | 'group.skipped'
    | 'bake.started'
    | 'bake.passed'
    | 'verify.failed'
    | 'watch.started'
    | 'watch.passed'
    | 'rollback.started'
    | 'rollback.done';
  group: string | null;
  workerId: number | null;
  pid: number | null;
  slot: number | null;
  generation: number | null;
  done: number;
  total: number;
  message: string;
  /** `bake.started`: how long the canary bakes (for a countdown). */
  bakeMs?: number;
}

export type Effect =
  | { type: 'spawn'; workerId: number; group: string; slot: number; generation: number; spec: GenerationSpec }
  /**
   * Ask a worker to answer this share of its responses with `Connection: close`
   * (0 = stop): during a bake the old workers shed keep-alive clients, so the
   * canary gets its share of new connections. Over IPC; others ignore it.
   */
  | { type: 'worker.shed'; workerId: number; share: number }
  | { type: 'signal'; workerId: number; signal: NodeJS.Signals }
  /** `stderrOf`: when it fires, the runtime attaches that worker's stderr tail to the timer event. */
  | { type: 'timer.set'; key: string; ms: number; stderrOf?: number }
  | { type: 'timer.clear'; key: string }
  | { type: 'config.load'; reloadId: number }
  | { type: 'reply.accepted'; requestId: number; reloadId: number; state: 'running' | 'queued' }
  | { type: 'reply.refused'; requestId: number; kind: RefusalKind; message: string }
  | { type: 'reply.stopping'; requestId: number }
  | { type: 'reply.ok'; requestId: number }
  | { type: 'reload.progress'; reloadId: number; event: ProgressEvent }
  | { type: 'reload.finished'; reloadId: number; report: ReloadReport }
  | { type: 'daemon.state'; state: DaemonState; status: string }
  | { type: 'daemon.ready' }
  | { type: 'log'; level: 'info' | 'warn' | 'error' | 'debug'; msg: string; fields: Record<string, unknown> }
  | { type: 'exit'; code: number };

export interface StepResult {
  state: MachineState;
  effects: Effect[];
}
