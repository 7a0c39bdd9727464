/**
 * The supervisor's state, the events it reacts to and the effects it asks for.
 * Everything here is plain data (structuredClone-able) so the machine stays pure
 * and tests can snapshot and compare it.
 */
import type { Config, GroupConfig } from '../config/types.js';
import type { ExitInfo, ReloadFailure, ReloadReport, GroupRollState, DaemonState } from './report.js';

/** A group's config resolved when its generation was created (DESIGN §1). */
export interface GenerationSpec extends GroupConfig {
  /** realpath of `cwd` at the moment the generation was created. */
  cwdReal: string;
  /** command[0] after the PATH lookup. */
  executable: string;
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
  /** Newest generation created for this group. */
  generation: number;
  specs: Record<string, GenerationSpec>;
  slots: SlotState[];
  /** The generation being rolled to while this group's turn in a reload is on. */
  rollTarget: number | null;
  /** Config on disk differs and waits for an explicit restart (non-reloadable groups). */
  pending: GenerationSpec | null;
  /** Removed from the config: drained, then dropped. */
  removing: boolean;
}

export interface ReloadGroupEntry {
  name: string;
  state: GroupRollState;
  done: number;
  total: number;
  generation: number | null;
  /** Spec the group will roll to when its turn comes. */
  spec: GenerationSpec | null;
  /** Settings before this reload, restored if the roll fails. */
  previous: GroupConfig | null;
  added: boolean;
}

export interface ReloadRun {
  id: number;
  trigger: string;
  /** null = every group. */
  groups: string[] | null;
  /** Groups rolled even when `reloadable: false` (smoothctl restart). */
  force: string[];
  phase: 'loading' | 'rolling' | 'draining';
  /** Groups gone from the config: drained once this reload has succeeded (a failed one touches no old worker). */
  removed: string[];
  startedAt: number;
  readyAt: number | null;
  order: ReloadGroupEntry[];
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
  /** Armed timers: key -> due time. A timer event whose key is absent is stale and ignored. */
  timers: Record<string, number>;
  reload: ReloadRun | null;
  queued: QueuedReload | null;
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
  /** The leader exited; `lingering`: other members of its process group still run (then `worker.gone` follows). */
  | { type: 'worker.exited'; workerId: number; code: number | null; signal: string | null; stderrTail: string[]; lingering?: boolean }
  /** /proc shows the process group of a worker whose leader had exited empty (zombies count as gone). */
  | { type: 'worker.gone'; workerId: number }
  /** `stderrTail`: the last stderr lines of the worker named by the timer's `stderrOf`, when it fired. */
  | { type: 'timer'; key: string; stderrTail?: string[] }
  | { type: 'reload.request'; requestId: number; groups: string[] | null; trigger: string }
  | { type: 'restart.request'; requestId: number; group: string }
  | { type: 'config.loaded'; reloadId: number; config: Config; specs: Record<string, GenerationSpec> }
  | { type: 'config.failed'; reloadId: number; message: string; issues: { path: string; message: string }[] }
  | { type: 'stop.request'; requestId: number | null; force: boolean };

// ---------------------------------------------------------------- effects

/** Symbolic error kinds; the control layer maps them to stable JSON-RPC codes. */
export type RefusalKind = 'windows' | 'stopping' | 'unknown-group';

export interface ProgressEvent {
  step: 'loading' | 'group.started' | 'worker.started' | 'worker.ready' | 'worker.stopping' | 'worker.stopped' | 'worker.failed' | 'group.rolled' | 'group.skipped';
  group: string | null;
  workerId: number | null;
  pid: number | null;
  slot: number | null;
  generation: number | null;
  done: number;
  total: number;
  message: string;
}

export type Effect =
  | { type: 'spawn'; workerId: number; group: string; slot: number; generation: number; spec: GenerationSpec }
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
