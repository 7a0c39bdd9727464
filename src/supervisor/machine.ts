/**
 * The supervisor as a pure state machine: `step(state, event, now)` returns the
 * next state and the effects the runtime must perform (spawn, signal, timers,
 * replies). It never touches a process, a clock or a socket, so the whole
 * lifecycle — start, crash backoff, rolling reload, failure, stop — is driven
 * in tests by hand with a fake clock and fake processes.
 *
 * After every event `reconcile` compares what runs with what should run and
 * emits the next starts and stops (the einhorn/Kubernetes way), instead of
 * scripting a roll step by step.
 */
import type { Config, GroupConfig } from '../config/types.js';
import type { ExitInfo, ReloadFailure, ReloadReport } from './report.js';
import { groupWorkers, isLive, nextRollAction, rolledCount, readyCount } from './policy.js';
import { workerAt } from './worker-lookup.js';
import { buildReport, describeExit, errorKindCode, formatMs, idleReport, type FailureCause } from './reports.js';
import { ZERO } from './verify.js';
import { canaryReady, onBakeEnd, onStats, onWatchEnd, stopShedding } from './verification-steps.js';

export { SHED_SHARE } from './verification-steps.js';
import { markOutcome, recordGeneration, sameRelease, trimHistory } from './history.js';
import { hasTimer, NO_TIMERS, timerKeys, withoutTimer, withTimer } from './timers.js';
import type {
  Effect,
  GenerationSpec,
  GroupState,
  MachineEvent,
  MachineState,
  ProgressEvent,
  QueuedReload,
  QueuedRollback,
  ReloadGroupEntry,
  RollbackTarget,
  ReloadRun,
  SlotState,
  StepResult,
  VerificationRun,
  WorkerRecord,
} from './types.js';

import { statusLine } from './reports.js';

export { currentReport, describeExit, formatMs, idleReport, statusLine } from './reports.js';

/** A worker ready this long has its crash backoff reset (DESIGN §3). */
export const BACKOFF_RESET_MS = 60_000;
/** Lines of stderr kept for failure reports. */
export const STDERR_TAIL_LINES = 20;
/** Status text of a worker whose leader exited while its process group lives on. */
export const LINGERING_TEXT = 'leader exited; waiting for the rest of its process group';

export interface InitOptions {
  platform: string;
  now: number;
}

export function initialState(config: Config, specs: Record<string, GenerationSpec>, opts: InitOptions): MachineState {
  return {
    platform: opts.platform,
    daemon: 'starting',
    startedAt: opts.now,
    configPath: config.path,
    exitCode: 0,
    exited: false,
    nextWorkerId: 1,
    nextReloadId: 1,
    groups: config.groups.map((g) => newGroup(g, specOf(specs, g.name), opts.now)),
    workers: [],
    timers: NO_TIMERS,
    reload: null,
    queued: null,
    queuedRollbacks: [],
    lastReport: idleReport(),
    startFailure: null,
  };
}

function specOf(specs: Record<string, GenerationSpec>, name: string): GenerationSpec {
  const spec = specs[name];
  if (!spec) throw new Error(`internal: no resolved spec for group ${name}`);
  return spec;
}

function newGroup(config: GroupConfig, spec: GenerationSpec, now: number): GroupState {
  return {
    history: [{ generation: 1, createdAt: now, spec, outcome: null }],
    name: config.name,
    config,
    generation: 1,
    lastGeneration: 1,
    specs: { '1': spec },
    slots: [...Array(config.count)].map(() => newSlot(1, config)),
    rollTarget: null,
    pending: null,
    removing: false,
  };
}

function newSlot(generation: number, config: GroupConfig): SlotState {
  return { generation, restarts: 0, lastExit: null, backoffMs: config.restartDelayMs, backoffUntil: null };
}

// ====================================================================== step

export function step(prev: MachineState, event: MachineEvent, now: number): StepResult {
  const m = new Stepper(stepCopy(prev), now);
  m.handle(event);
  if (!m.s.exited) m.reconcile();
  return { state: m.s, effects: m.fx };
}

/**
 * The state a step may change, without copying what grows with the number of
 * workers: the worker list is a new array of the same records (a record is
 * copied when the step changes it, Stepper.own), a group's slots are copied
 * when the step changes one (Stepper.slot), the timers when it sets or
 * clears one (a persistent table: src/supervisor/timers.ts), the rest is small or copied shallowly. `prev` itself is never changed (the property tests freeze it).
 */
function stepCopy(prev: MachineState): MachineState {
  return {
    ...prev,
    groups: prev.groups.map((g) => ({
      ...g,
      specs: { ...g.specs },
      history: g.history.map((h) => ({ ...h })),
    })),
    workers: prev.workers.slice(),
    reload: prev.reload && reloadCopy(prev.reload),
    queued: prev.queued && structuredClone(prev.queued),
    queuedRollbacks: structuredClone(prev.queuedRollbacks),
  };
}

/**
 * A running reload, for a step to change: its entries and their verification
 * are copied shallowly. What grows with the number of old workers (the
 * verification's oldBase, oldNow and shedding) is shared: the step replaces
 * those instead of changing them (verification-steps.ts).
 */
function reloadCopy(r: ReloadRun): ReloadRun {
  return {
    ...r,
    removed: [...r.removed],
    order: r.order.map((e) => ({ ...e, verification: e.verification && { ...e.verification } })),
    rollback: r.rollback && { ...r.rollback, queue: [...r.rollback.queue] },
  };
}

class Stepper {
  readonly fx: Effect[] = [];
  /** Worker records, slots and slot lists this step created or copied: its own to change. */
  private readonly owned = new WeakSet<object>();
  /** Records this step may still change in place (the rolling policy's index checks those again). */
  private readonly changing = (w: WorkerRecord): boolean => this.owned.has(w);
  constructor(
    readonly s: MachineState,
    readonly now: number,
  ) {}

  // ------------------------------------------------------------ helpers

  emit(e: Effect): void {
    this.fx.push(e);
  }

  log(level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields: Record<string, unknown> = {}): void {
    this.emit({ type: 'log', level, msg, fields });
  }

  group(name: string): GroupState | undefined {
    return this.s.groups.find((g) => g.name === name);
  }

  /** The worker with this id, as a record this step may change. */
  worker(id: number): WorkerRecord | undefined {
    const i = workerAt(this.s.workers, id);
    return i < 0 ? undefined : this.ownAt(i);
  }

  /** `w` (or the record that replaced it in this step), as a record this step may change. */
  private own(w: WorkerRecord): WorkerRecord {
    if (this.owned.has(w)) return w;
    const i = workerAt(this.s.workers, w.id);
    return i >= 0 && this.s.workers[i] === w ? this.ownAt(i) : (this.worker(w.id) ?? w);
  }

  private ownAt(i: number): WorkerRecord {
    const w = this.s.workers[i]!;
    if (this.owned.has(w)) return w;
    const copy = { ...w };
    this.owned.add(copy);
    this.s.workers[i] = copy;
    return copy;
  }


  /** Slot i of the group, as an object this step may change. */
  private slot(g: GroupState, i: number): SlotState | undefined {
    const list = this.slotList(g);
    const slot = list[i];
    if (!slot || this.owned.has(slot)) return slot;
    const copy = { ...slot };
    this.owned.add(copy);
    list[i] = copy;
    return copy;
  }

  /** The group's slot list, as an array this step may change (its slots still shared: use slot()). */
  private slotList(g: GroupState): SlotState[] {
    if (!this.owned.has(g.slots)) {
      g.slots = g.slots.slice();
      this.owned.add(g.slots);
    }
    return g.slots;
  }

  private addWorker(w: WorkerRecord): void {
    this.owned.add(w);
    this.s.workers.push(w);
  }

  setTimer(key: string, ms: number, stderrOf?: number): void {
    this.s.timers = withTimer(this.s.timers, key, this.now + ms);
    this.emit(stderrOf === undefined ? { type: 'timer.set', key, ms } : { type: 'timer.set', key, ms, stderrOf });
  }

  private clearTimer(key: string): void {
    if (hasTimer(this.s.timers, key)) {
      this.s.timers = withoutTimer(this.s.timers, key);
      this.emit({ type: 'timer.clear', key });
    }
  }

  private specFor(g: GroupState, generation: number): GenerationSpec {
    const spec = g.specs[String(generation)];
    if (!spec) throw new Error(`internal: group ${g.name} has no spec for generation ${generation}`);
    return spec;
  }

  private setDaemon(state: MachineState['daemon']): void {
    if (this.s.daemon === state) return;
    this.s.daemon = state;
    this.emit({ type: 'daemon.state', state, status: statusLine(this.s, this.now) });
  }

  progress(step: ProgressEvent['step'], w: WorkerRecord | null, group: string | null, message: string, extra: { bakeMs?: number } = {}): void {
    const r = this.s.reload;
    if (!r) return;
    const entry = group ? r.order.find((e) => e.name === group) : undefined;
    this.emit({
      type: 'reload.progress',
      reloadId: r.id,
      event: {
        step,
        group,
        workerId: w?.id ?? null,
        pid: w?.pid ?? null,
        slot: w?.slot ?? null,
        generation: w?.generation ?? entry?.generation ?? null,
        done: entry?.done ?? 0,
        total: entry?.total ?? 0,
        message,
        ...extra,
      },
    });
  }

  // ------------------------------------------------------------ events

  handle(e: MachineEvent): void {
    switch (e.type) {
      case 'start':
        this.log('info', 'starting workers', { groups: this.s.groups.map((g) => g.name) });
        return;
      case 'worker.spawned':
        return this.onSpawned(e.workerId, e.pid);
      case 'worker.spawnFailed':
        return this.onExited(e.workerId, null, null, [e.error], `could not be started: ${e.error}`);
      case 'worker.ready':
        return this.onReady(e.workerId);
      case 'worker.status': {
        const w = this.worker(e.workerId);
        if (w) w.statusText = e.text;
        return;
      }
      case 'worker.stats':
        return onStats(this, e.workerId, e.requests, e.errors);
      case 'worker.exited':
        return this.onExited(e.workerId, e.code, e.signal, e.stderrTail, null, e.lingering ?? false);
      case 'worker.gone':
        return this.onGone(e.workerId);
      case 'timer':
        return this.onTimer(e.key, e.stderrTail ?? []);
      case 'reload.request':
        return this.onReloadRequest(e.requestId, e.groups, [], e.trigger);
      case 'restart.request':
        return this.onReloadRequest(e.requestId, [e.group], [e.group], 'restart');
      case 'rollback.request':
        return this.onRollbackRequest(e.requestId, e.targets);
      case 'config.loaded':
        return this.onConfigLoaded(e.reloadId, e.config, e.specs);
      case 'config.failed':
        return this.onConfigFailed(e.reloadId, e.message, e.issues);
      case 'stop.request':
        return this.onStop(e.requestId, e.force);
      default: {
        const never: never = e;
        throw new Error(`internal: unknown event ${JSON.stringify(never)}`);
      }
    }
  }

  private onSpawned(id: number, pid: number): void {
    const w = this.worker(id);
    if (!w) return;
    w.pid = pid;
    this.log('info', 'worker started', { group: w.group, workerId: w.id, pid, slot: w.slot, generation: w.generation });
    if (w.startedBy !== null) this.progress('worker.started', w, w.group, `worker ${w.id} (pid ${pid}) started`);
  }

  private onReady(id: number): void {
    const w = this.worker(id);
    if (!w || w.phase !== 'starting') return;
    const g = this.group(w.group);
    w.phase = 'ready';
    w.readyAt = this.now;
    this.clearTimer(`ready:${id}`);
    this.clearTimer(`readyTimeout:${id}`);
    // The slot now runs this generation: its crash restarts use it. During a roll the target
    // decides (a rollback goes to an older number); otherwise the newer of the two.
    const slot = g ? this.slot(g, w.slot) : undefined;
    if (g && slot) slot.generation = g.rollTarget === w.generation ? w.generation : Math.max(slot.generation, w.generation);
    this.log('info', 'worker ready', { group: w.group, workerId: w.id, pid: w.pid, startupMs: this.now - w.startedAt });
    w.baseline = w.counters ?? { ...ZERO };
    if (w.startedBy !== null && this.s.reload?.id === w.startedBy) {
      const entry = this.s.reload.order.find((o) => o.name === w.group);
      if (entry && g && !this.s.reload.rollback) entry.done = rolledCount(g, this.s.workers, w.generation, this.changing);
      this.progress('worker.ready', w, w.group, `worker ${w.id} (pid ${w.pid}) ready`);
      if (entry && g && this.s.reload.rollback === null && g.rollTarget === w.generation) canaryReady(this, g, entry, w);
    }
  }

  private onTimer(key: string, stderrTail: string[]): void {
    if (!hasTimer(this.s.timers, key)) return; // stale: cleared after it fired
    this.s.timers = withoutTimer(this.s.timers, key);
    const [kind, a, b] = key.split(':');
    switch (kind) {
      case 'ready':
        return this.onReady(Number(a));
      case 'readyTimeout': {
        const w = this.worker(Number(a));
        if (!w || w.phase !== 'starting') return;
        const g = this.group(w.group)!;
        const spec = this.specFor(g, w.generation);
        const reason = `not ready within ${formatMs(spec.readyTimeoutMs)} (readyTimeout)`;
        this.stopWorker(w, reason);
        w.failed = true;
        // The worker is still alive: its stderr so far comes with the timer (the exit comes later).
        this.workerFailed(w, reason, stderrTail);
        // Like a crash before readiness: the slot restarts after its backoff, counted from
        // now (not from the exit, else reconcile would refill the slot at once).
        const slot = this.slot(g, w.slot);
        if (slot && this.s.daemon !== 'stopping' && g.rollTarget === null && !g.removing) {
          slot.restarts += 1;
          this.backoff(g, w.slot);
        }
        return;
      }
      case 'kill': {
        const w = this.worker(Number(a));
        if (!w || w.phase !== 'stopping') return;
        w.killed = true;
        this.log('warn', 'worker did not stop in time; killing it', { group: w.group, workerId: w.id, pid: w.pid });
        this.emit({ type: 'signal', workerId: w.id, signal: 'SIGKILL' });
        return;
      }
      case 'backoff': {
        const g = this.group(a ?? '');
        const slot = g ? this.slot(g, Number(b)) : undefined;
        if (slot) slot.backoffUntil = null;
        return;
      }
      case 'bake':
        return onBakeEnd(this, Number(a), b ?? '');
      case 'watch':
        return onWatchEnd(this, Number(a), b ?? '');
      default:
        return;
    }
  }

  /**
   * A worker failed before it was ready (exit or readyTimeout), or a new worker
   * crashed while its group is still rolling. Decides what that failure means.
   */
  private workerFailed(w: WorkerRecord, reason: string, stderrTail: string[]): void {
    const failure: ReloadFailure = {
      group: w.group,
      workerId: w.id,
      slot: w.slot,
      pid: w.pid,
      reason,
      stderrTail: stderrTail.slice(-STDERR_TAIL_LINES),
    };
    if (this.s.daemon === 'starting' && w.readyAt === null) {
      this.failStart(failure);
      return;
    }
    const r = this.s.reload;
    const g = this.group(w.group);
    if (r && g && g.rollTarget !== null && w.generation === g.rollTarget && w.startedBy === r.id) {
      this.failReload(g, failure);
    }
  }

  private onExited(id: number, code: number | null, signal: string | null, stderrTail: string[], spawnError: string | null, lingering = false): void {
    const w = this.worker(id);
    if (!w || w.leaderExit) return;
    const planned = w.phase === 'stopping';
    if (lingering && planned) {
      // Still stopping: the kill timer stays armed, and a reload that retired it waits.
      w.leaderExit = { code, signal, crash: false };
      w.statusText = LINGERING_TEXT;
      this.log('warn', "worker's leader exited but its process group lives on; waiting for it", { group: w.group, workerId: id, pid: w.pid, code, signal });
      return;
    }
    this.s.workers = this.s.workers.filter((x) => x.id !== id);
    for (const k of ['ready', 'readyTimeout', 'kill']) this.clearTimer(`${k}:${id}`);
    // A crash whose process group lives on: the slot is handled as a crash below, and the
    // rest of the group is stopped (stop signal, SIGKILL at stopTimeout) as a stopping worker.
    if (lingering) this.stopLeftover(w, code, signal);
    const g = this.group(w.group);
    const how = spawnError ?? describeExit(code, signal);
    const reason = planned ? (w.killed ? 'killed after stopTimeout' : `stopped (${w.stopReason ?? 'requested'})`) : how;
    const exit: ExitInfo = { code, signal, at: new Date(this.now).toISOString(), reason };
    const slot = g ? this.slot(g, w.slot) : undefined;
    if (slot) slot.lastExit = exit;
    // The last worker of an old generation is gone: forget its spec (its listen sockets can close).
    if (g && g.rollTarget === null) this.pruneSpecs(g);

    if (planned) {
      this.log('info', 'worker exited', { group: w.group, workerId: id, pid: w.pid, code, signal, reason });
      if (w.retiredBy !== null && w.retiredBy === this.s.reload?.id) {
        this.progress('worker.stopped', w, w.group, `old worker ${id} (pid ${w.pid}) exited`);
      }
      return;
    }

    // Unplanned exit: a crash, or a spawn that failed (its error says why, with path and errno).
    if (spawnError !== null) this.log('warn', 'worker could not be started', { group: w.group, workerId: id, slot: w.slot, generation: w.generation, error: spawnError });
    else this.log('warn', 'worker crashed', { group: w.group, workerId: id, pid: w.pid, code, signal, stderrTail: stderrTail.slice(-5) });
    if (slot && g) {
      slot.restarts += 1;
      const wasStable = w.readyAt !== null && this.now - w.readyAt >= BACKOFF_RESET_MS;
      if (wasStable) slot.backoffMs = g.config.restartDelayMs;
    }
    const beforeReady = w.readyAt === null;
    const failedRoll = g && g.rollTarget !== null && w.generation === g.rollTarget && w.startedBy !== null;
    const r = this.s.reload;
    const watched = r?.order.find((e) => e.name === w.group && e.state === 'watching' && e.generation === w.generation);
    if (beforeReady || failedRoll) {
      const reason = spawnError !== null ? how : beforeReady ? `${how} before it was ready` : `${how} while the reload was still rolling`;
      this.workerFailed(w, reason, stderrTail);
    } else if (watched && g && r && !r.rollback) {
      if (watched.verification) watched.verification.verdict = 'failed';
      const watchMs = watched.spec?.verify.watchMs ?? 0;
      const reason = `${how} ${formatMs(this.now - (w.readyAt ?? this.now))} after it was ready, during the ${formatMs(watchMs)} watch`;
      this.failReload(g, { group: g.name, workerId: w.id, slot: w.slot, pid: w.pid, reason, stderrTail: stderrTail.slice(-STDERR_TAIL_LINES) });
    }
    if (this.s.daemon === 'stopping' || !g || !slot) return;
    if (g.rollTarget !== null) return; // the roll refills the slot with the new generation
    if (this.s.reload?.rollback?.queue.includes(g.name)) return; // its rollback refills it
    this.backoff(g, w.slot);
  }

  private stopLeftover(w: WorkerRecord, code: number | null, signal: string | null): void {
    const rest: WorkerRecord = { ...w, leaderExit: { code, signal, crash: true }, statusText: LINGERING_TEXT };
    this.addWorker(rest);
    this.stopWorker(rest, 'its leader exited; stopping the rest of its process group');
  }

  /** The process group of a worker whose leader had exited is empty now. */
  private onGone(id: number): void {
    const w = this.worker(id);
    if (!w || !w.leaderExit) return;
    const { code, signal, crash } = w.leaderExit;
    w.leaderExit = null;
    if (!crash) return this.onExited(id, code, signal, [], null);
    // The crash was handled when the leader exited; the slot's lastExit keeps it.
    this.s.workers = this.s.workers.filter((x) => x.id !== id);
    this.clearTimer(`kill:${id}`);
    this.log('info', 'the rest of a crashed worker\'s process group has exited', { group: w.group, workerId: id, pid: w.pid, killed: w.killed });
    const g = this.group(w.group);
    if (g && g.rollTarget === null) this.pruneSpecs(g);
  }

  /** Steady state: the slot restarts from its own generation after a capped, doubling delay. */
  private backoff(g: GroupState, slotIndex: number): void {
    // Another live worker still serves the slot (mixed generations after a failed
    // reload): nothing to restart.
    if (this.s.workers.some((x) => x.group === g.name && x.slot === slotIndex && isLive(x))) return;
    // A slot beyond the count (surplus worker left by a failed roll) is not refilled.
    if (slotIndex >= g.config.count) return;
    const slot = this.slot(g, slotIndex)!;
    const delay = slot.backoffMs;
    slot.backoffMs = Math.min(delay * 2, g.config.maxRestartDelayMs);
    slot.backoffUntil = this.now + delay;
    this.setTimer(`backoff:${g.name}:${slotIndex}`, delay);
  }

  // ------------------------------------------------------------ reload

  private onReloadRequest(requestId: number, groups: string[] | null, force: string[], trigger: string): void {
    if (this.s.daemon === 'stopping') {
      this.emit({ type: 'reply.stopping', requestId });
      return;
    }
    if (this.s.platform === 'win32') {
      this.emit({
        type: 'reply.refused',
        requestId,
        kind: 'windows',
        message: 'reload is not supported on Windows: smoothd cannot hand listening sockets to new workers there; stop and start the service instead',
      });
      return;
    }
    const unknown = (groups ?? []).filter((n) => !this.group(n));
    if (unknown.length > 0) {
      this.emit({
        type: 'reply.refused',
        requestId,
        kind: 'unknown-group',
        message: `unknown group ${unknown.map((n) => JSON.stringify(n)).join(', ')}; groups are: ${this.s.groups.map((g) => g.name).join(', ')}`,
      });
      return;
    }
    if (this.s.reload || this.s.daemon === 'starting') {
      const q: QueuedReload = this.s.queued ?? { id: this.s.nextReloadId++, trigger, groups: groups ? [] : null, force: [] };
      q.groups = q.groups === null || groups === null ? null : union(q.groups, groups);
      q.force = union(q.force, force);
      this.s.queued = q;
      this.log('info', 'reload queued behind the running one', { reloadId: q.id, groups: q.groups });
      this.emit({ type: 'reply.accepted', requestId, reloadId: q.id, state: 'queued' });
      return;
    }
    const id = this.s.nextReloadId++;
    // Answer first, so a caller that waits sees every progress step of its reload.
    this.emit({ type: 'reply.accepted', requestId, reloadId: id, state: 'running' });
    this.beginReload({ id, trigger, groups, force });
  }

  /**
   * `smoothctl rollback`: a roll of each group back to a generation of its
   * history, under the same policy, verification and onFailure as a reload.
   * Asked for during a reload, it waits as its own item (never merged into the
   * follow-up reload).
   */
  private onRollbackRequest(requestId: number, targets: RollbackTarget[]): void {
    if (this.s.daemon === 'stopping') {
      this.emit({ type: 'reply.stopping', requestId });
      return;
    }
    if (this.s.platform === 'win32') {
      this.emit({ type: 'reply.refused', requestId, kind: 'windows', message: 'rollback is not supported on Windows: smoothd cannot hand listening sockets to new workers there' });
      return;
    }
    const id = this.s.nextReloadId++;
    if (this.s.reload || this.s.daemon === 'starting') {
      this.s.queuedRollbacks.push({ id, targets });
      this.log('info', 'rollback queued behind the running reload', { reloadId: id, groups: targets.map((t) => t.group) });
      this.emit({ type: 'reply.accepted', requestId, reloadId: id, state: 'queued' });
      return;
    }
    this.emit({ type: 'reply.accepted', requestId, reloadId: id, state: 'running' });
    this.beginRollback({ id, targets });
  }

  private beginRollback(q: QueuedRollback): void {
    const targets = q.targets.filter((t) => this.group(t.group));
    const names = targets.map((t) => t.group);
    this.s.reload = {
      id: q.id,
      trigger: 'rollback',
      groups: names,
      force: names,
      phase: 'rolling',
      removed: [],
      startedAt: this.now,
      readyAt: null,
      // A rollback that waited behind a reload can find its group there already (that
      // reload failed and was rolled back to it): nothing to roll for that group.
      order: targets.map((t) =>
        this.group(t.group)!.generation === t.generation
          ? entry(t.group, 'skipped', t.generation, null)
          : { ...entry(t.group, 'pending', t.generation, t.spec), total: t.spec.count, fixed: true },
      ),
      rollback: null,
    };
    this.setDaemon('reloading');
    this.log('info', 'rollback started', { reloadId: q.id, targets: targets.map((t) => `${t.group}@${t.generation}`) });
    for (const e of this.s.reload.order) {
      if (e.state === 'skipped') this.progress('group.skipped', null, e.name, `${e.name}: already on generation ${e.generation}, nothing to roll back`);
    }
  }

  private beginReload(q: QueuedReload): void {
    this.s.reload = {
      id: q.id,
      trigger: q.trigger,
      groups: q.groups,
      force: q.force,
      phase: 'loading',
      removed: [],
      startedAt: this.now,
      readyAt: null,
      order: [],
      rollback: null,
    };
    this.setDaemon('reloading');
    this.log('info', 'reload started: reading the config', { reloadId: q.id, groups: q.groups ?? 'all' });
    this.emit({ type: 'config.load', reloadId: q.id });
    this.progress('loading', null, null, 'reading the config file');
  }

  private onConfigFailed(reloadId: number, message: string, issues: { path: string; message: string }[]): void {
    const r = this.s.reload;
    if (!r || r.id !== reloadId || r.phase !== 'loading') return;
    const detail = issues.map((i) => `${i.path || '(document)'}: ${i.message}`);
    this.finishReload('failed', `config refused, nothing changed: ${message}`, null, 'config', detail);
  }

  private onConfigLoaded(reloadId: number, config: Config, specs: Record<string, GenerationSpec>): void {
    const r = this.s.reload;
    if (!r || r.id !== reloadId || r.phase !== 'loading') return;
    const selected = (name: string): boolean => r.groups === null || r.groups.includes(name);
    const order: ReloadGroupEntry[] = [];
    const kept: GroupState[] = [];
    for (const gc of config.groups) {
      const spec = specOf(specs, gc.name);
      const g = this.group(gc.name);
      if (!g) {
        if (r.groups !== null) continue; // a partial reload does not add groups
        const added = newGroup(gc, spec, this.now);
        added.history = [];
        added.generation = 0;
        added.lastGeneration = 0;
        added.specs = {};
        added.slots = [];
        kept.push(added);
        order.push({ ...entry(gc.name, 'pending', 1, spec), total: gc.count, added: true });
        continue;
      }
      kept.push(g);
      const forced = r.force.includes(gc.name);
      // Back in the config while its removal still drains: it is rolled again, not removed.
      const revived = g.removing;
      const reloadable = g.config.reloadable && gc.reloadable;
      if (!selected(gc.name)) {
        if (!sameSpec(this.specFor(g, g.generation), spec)) g.pending = spec;
        continue;
      }
      if (!reloadable && !forced) {
        g.pending = sameSpec(this.specFor(g, g.generation), spec) ? null : spec;
        order.push(entry(gc.name, 'skipped', null, null));
        continue;
      }
      if (revived) g.removing = false;
      order.push({ ...entry(gc.name, 'pending', g.lastGeneration + 1, spec), total: gc.count });
    }
    // Groups no longer in the config are drained and dropped once a full reload has succeeded.
    for (const g of this.s.groups) {
      if (kept.includes(g)) continue;
      kept.push(g);
      if (r.groups !== null || g.removing) continue;
      r.removed.push(g.name);
      this.log('info', 'group removed from the config: it is drained once the reload succeeds', { group: g.name });
    }
    this.s.groups = kept;
    r.order = order;
    r.phase = 'rolling';
    for (const e of order) if (e.state === 'skipped') this.progress('group.skipped', null, e.name, `${e.name}: not reloadable, skipped`);
  }

  /** Move the reload forward: start the next group's roll or finish. */
  private advanceReload(): void {
    const r = this.s.reload;
    if (!r || r.phase === 'loading') return;
    if (r.phase === 'rollingBack') return this.advanceRollback(r);
    if (r.phase === 'rolling') {
      for (const e of r.order) {
        if (e.state === 'skipped' || e.state === 'rolled' || e.state === 'watching') continue;
        const g = this.group(e.name);
        if (!g) continue;
        if (e.state === 'pending') {
          e.state = 'rolling';
          e.previous = g.config;
          e.previousGeneration = e.added ? null : g.generation;
          e.verification = newVerification();
          // A rollback on purpose returns to an existing generation; a reload makes a new one.
          const gen = e.fixed ? e.generation! : g.lastGeneration + 1;
          e.generation = gen;
          g.generation = gen;
          if (!e.fixed) {
            g.lastGeneration = gen;
            g.history = recordGeneration(g.history, gen, e.spec!, this.now);
          }
          g.specs[String(gen)] = e.spec!;
          g.config = stripSpec(e.spec!);
          g.pending = null;
          e.total = g.config.count;
          while (g.slots.length < g.config.count) this.slotList(g).push(newSlot(gen, g.config));
          g.rollTarget = gen;
          // Slots waiting in backoff are refilled by the roll at once, with the new generation.
          g.slots.forEach((slot, i) => {
            if (slot.backoffUntil !== null) {
              this.slot(g, i)!.backoffUntil = null;
              this.clearTimer(`backoff:${g.name}:${i}`);
            }
          });
          this.log('info', 'rolling group', { reloadId: r.id, group: g.name, generation: gen, count: g.config.count });
          this.progress('group.started', null, g.name, `${g.name}: rolling to generation ${gen}`);
        }
        if (!this.rollGroup(g, e)) return; // this group's turn is not over
      }
      r.phase = 'draining';
      r.readyAt = this.now;
    }
    // Every new worker is ready; the reload ends when the old ones it retired have exited
    // and, for groups with verify.watch, when the watch is over.
    const draining = this.s.workers.some((w) => w.retiredBy === r.id);
    if (draining) return;
    if (r.phase === 'draining') {
      r.phase = 'watching';
      for (const e of r.order) {
        const watchMs = e.spec?.verify.watchMs ?? 0;
        if (e.state !== 'rolled' || watchMs <= 0) continue;
        e.state = 'watching';
        this.setTimer(`watch:${r.id}:${e.name}`, watchMs);
        this.progress('watch.started', null, e.name, `${e.name}: watching the new workers for ${formatMs(watchMs)}`);
      }
    }
    if (r.order.some((e) => e.state === 'watching')) return;
    this.finishReload('succeeded', null, null, null, []);
  }

  /** Rolls back one group after another (the failing one first); ends the reload when all are back. */
  private advanceRollback(r: ReloadRun): void {
    const rb = r.rollback!;
    for (;;) {
      if (rb.current === null) {
        const name = rb.queue[0];
        if (name === undefined) break;
        const g = this.group(name);
        const e = r.order.find((o) => o.name === name);
        if (!g || !e || !this.beginGroupRollback(g, e)) {
          rb.queue.shift();
          continue;
        }
        rb.current = name;
      }
      const g = this.group(rb.current)!;
      const e = r.order.find((o) => o.name === rb.current)!;
      if (g.rollTarget !== null && !this.rollGroup(g, e)) return;
      rb.queue.shift();
      rb.current = null;
    }
    if (this.s.workers.some((w) => w.retiredBy === r.id)) return;
    const failed = rb.failed !== null;
    const error = failed ? `${rb.error}; the rollback failed too (${rb.failed}): mixed generations serve` : rb.error;
    this.finishReload('failed', error, rb.failure, failed ? 'rollback' : 'worker', []);
  }

  /**
   * Starts the roll of one group back to the generation it ran before this
   * reload, with that generation's settings. False when there is nothing to
   * roll: the group was added by this reload (it is removed), or the deploy was
   * in place (respawning would run the same broken files).
   */
  private beginGroupRollback(g: GroupState, e: ReloadGroupEntry): boolean {
    const r = this.s.reload!;
    const failedGen = e.generation;
    if (e.added) {
      g.removing = true;
      e.rollback = { state: 'succeeded', generation: null, reason: 'the group was added by this reload: removed again' };
      return false;
    }
    const prev = e.previousGeneration;
    const prevSpec = prev === null ? undefined : g.specs[String(prev)];
    const failedSpec = failedGen === null ? undefined : g.specs[String(failedGen)];
    if (prev === null || !prevSpec) {
      e.rollback = { state: 'failed', generation: prev, reason: 'the previous generation is no longer known' };
      r.rollback!.failed ??= `${g.name}: the previous generation is no longer known`;
      return false;
    }
    g.config = stripSpec(prevSpec);
    g.generation = prev;
    g.slots = g.slots.map((slot, i) => {
      this.clearTimer(`backoff:${g.name}:${i}`);
      return { ...slot, generation: prev, backoffUntil: null };
    });
    while (g.slots.length < g.config.count) g.slots.push(newSlot(prev, g.config));
    if (failedSpec && sameRelease(prevSpec, failedSpec)) {
      // In place: keep failed new workers wherever the old ones no longer cover count.
      const live = groupWorkers(this.s.workers, g.name).filter(isLive);
      let surplus = live.length - g.config.count;
      for (const w of live) {
        if (surplus <= 0) break;
        if (w.generation !== failedGen) continue;
        this.stopWorker(w, 'rollback: surplus worker of the failed generation').retiredBy = r.id;
        surplus -= 1;
      }
      const reason =
        `in-place deploy: generation ${prev} runs the same folder, command and environment as generation ${failedGen}, so respawning it ` +
        'would run the broken files again; deploy each release into its own folder (releases/N behind a current symlink) to make rollback possible';
      e.rollback = { state: 'skipped', generation: prev, reason };
      this.log('warn', 'rollback skipped', { group: g.name, reason });
      return false;
    }
    g.rollTarget = prev;
    e.rollback = { state: 'running', generation: prev, reason: null };
    this.log('info', 'rolling back group', { reloadId: r.id, group: g.name, from: failedGen, to: prev });
    this.progress('rollback.started', null, g.name, `${g.name}: rolling back to generation ${prev}`);
    return true;
  }

  /**
   * Runs the rolling policy for one group; true once its roll is complete.
   * While a bake is due, the canary is the only new worker: the roll holds
   * once it exists (old workers may only be stopped to make room for it).
   */
  private rollGroup(g: GroupState, e: ReloadGroupEntry): boolean {
    const target = g.rollTarget!;
    const r = this.s.reload!;
    const rollingBack = r.rollback !== null;
    const baking = !rollingBack && (e.spec?.verify.bakeMs ?? 0) > 0 && e.verification !== null && !e.verification.baked;
    for (let guard = 0; guard < 10_000; guard++) {
      if (baking && this.s.workers.some((w) => w.group === g.name && w.generation === target && w.startedBy === r.id && isLive(w))) return false;
      const action = nextRollAction(g, this.s.workers, target, this.changing);
      switch (action.kind) {
        case 'stop': {
          const w = this.worker(action.workerId)!;
          w.retiredBy = this.s.reload!.id;
          this.stopWorker(w, action.reason);
          this.progress('worker.stopping', w, g.name, `old worker ${w.id} (pid ${w.pid}) draining`);
          break;
        }
        case 'start': {
          this.slot(g, action.slot)!.backoffUntil = null;
          this.spawn(g, action.slot, target, this.s.reload!.id);
          break;
        }
        case 'wait':
          return false;
        case 'done': {
          g.rollTarget = null;
          g.slots = g.slots.slice(0, g.config.count);
          this.pruneSpecs(g);
          if (rollingBack) {
            e.rollback = { state: 'succeeded', generation: target, reason: null };
            this.log('info', 'group rolled back', { reloadId: r.id, group: g.name, generation: target });
            this.progress('rollback.done', null, g.name, `${g.name}: back on generation ${target}`);
            return true;
          }
          e.state = 'rolled';
          e.done = g.config.count;
          this.log('info', 'group rolled', { reloadId: r.id, group: g.name, generation: target });
          this.progress('group.rolled', null, g.name, `${g.name}: ${e.done}/${e.total} workers replaced`);
          return true;
        }
      }
    }
    throw new Error('internal: rolling policy did not settle');
  }

  /**
   * A worker of this reload failed (exit, readyTimeout, judgement, crash in
   * the watch). The roll stops; no further old worker is touched. With
   * `onFailure: rollback` every group this reload rolled goes back to the
   * generation it ran before (advanceRollback); with `keep` ready new workers
   * stay and the reload ends now. A failure while rolling back marks the
   * rollback failed.
   */
  failReload(g: GroupState, failure: ReloadFailure): void {
    const r = this.s.reload!;
    const entry = r.order.find((o) => o.name === g.name);
    if (r.rollback) {
      // A worker of the previous generation failed too: what serves now is mixed.
      for (const w of groupWorkers(this.s.workers, g.name)) {
        if (w.generation === g.rollTarget && w.phase === 'starting' && w.startedBy === r.id) this.stopWorker(w, 'rollback failed');
      }
      g.rollTarget = null;
      if (entry) entry.rollback = { state: 'failed', generation: entry.rollback?.generation ?? null, reason: `worker ${failure.workerId} ${failure.reason}` };
      r.rollback.failed ??= `${g.name}: worker ${failure.workerId} ${failure.reason}`;
      if (r.rollback.current === g.name) {
        r.rollback.current = null;
        r.rollback.queue.shift();
      }
      this.log('error', 'rollback failed: mixed generations serve', { reloadId: r.id, ...failure });
      return;
    }
    const target = entry?.generation ?? g.rollTarget;
    // Remove the new workers that are not ready yet.
    for (const w of groupWorkers(this.s.workers, g.name)) {
      if (w.generation === target && w.phase === 'starting') this.stopWorker(w, 'reload failed');
    }
    g.rollTarget = null;
    for (const key of timerKeys(this.s.timers)) if (key.startsWith(`bake:${r.id}:`) || key.startsWith(`watch:${r.id}:`)) this.clearTimer(key);
    if (entry) {
      entry.state = 'failed';
      if (target !== null) entry.done = rolledCount(g, this.s.workers, target, this.changing);
      if (entry.verification && entry.verification.canaryId !== null && !entry.verification.baked) entry.verification.verdict = 'failed';
    }
    for (const e of r.order) if (e.state === 'watching') e.state = 'rolled';
    this.progress('worker.failed', null, g.name, `worker ${failure.workerId} ${failure.reason}`);
    const error = `${g.name}: worker ${failure.workerId} ${failure.reason}`;
    const onFailure = entry?.spec?.onFailure ?? g.config.onFailure;
    if (onFailure === 'keep') {
      // The settings of the failed config do not take effect (a failed reload changes
      // nothing): with the new count kept, reconcile would start workers of the failed
      // generation in the slots it added, right after removing the failed ones. Ready
      // new workers stay, even in slots beyond the restored count.
      if (entry?.previous) g.config = entry.previous;
      if (entry?.added && entry.done === 0) g.removing = true;
      // Nothing of the failed generation serves or restarts (no ready new worker, no slot of the
      // restored count on it): the group stays on the generation it ran (its status, the next
      // reload's rollback target) and the slots the roll added go back to it; the failed spec
      // and its listen sockets go with its last worker's exit (every exit prunes the specs).
      const prev = entry?.previousGeneration ?? null;
      const inUse =
        groupWorkers(this.s.workers, g.name).some((w) => w.generation === target && w.phase === 'ready') ||
        g.slots.some((slot, i) => i < g.config.count && slot.generation === target);
      const restore = prev !== null && !inUse;
      if (restore) {
        g.generation = prev;
        g.slots.forEach((slot, i) => {
          if (slot.generation === target) this.slot(g, i)!.generation = prev;
        });
      }
      this.log('error', 'reload failed: old workers keep serving, ready new ones stay (onFailure: keep)', { reloadId: r.id, ...failure });
      this.finishReload('failed', error, failure, 'worker', []);
      return;
    }
    // Roll back the failing group first, then every group this reload rolled (or was
    // rolling: a group judged after its roll can fail while a later one rolls), newest first.
    const others = r.order.filter((e) => e !== entry && (e.state === 'rolled' || e.state === 'rolling' || e.state === 'verifying')).reverse();
    for (const e of others) {
      const og = this.group(e.name);
      if (!og || og.rollTarget === null) continue;
      for (const w of groupWorkers(this.s.workers, og.name)) {
        if (w.generation === og.rollTarget && w.phase === 'starting') this.stopWorker(w, 'reload failed');
      }
      og.rollTarget = null;
      e.state = 'pending'; // its roll was cut short; its rollback says what happened
    }
    const queue = [g.name, ...others.map((e) => e.name)];
    r.phase = 'rollingBack';
    r.rollback = { startedAt: this.now, queue, current: null, error, failure, failed: null };
    this.log('error', 'reload failed: rolling back', { reloadId: r.id, groups: [...queue], ...failure });
    this.progress('rollback.started', null, null, `reload failed (${error.split('\n')[0]}); rolling back ${queue.join(', ')}`);
  }

  private finishReload(
    state: 'succeeded' | 'failed' | 'aborted',
    error: string | null,
    failure: ReloadFailure | null,
    cause: FailureCause | null,
    detail: string[],
  ): void {
    const r = this.s.reload;
    if (!r) return;
    for (const e of r.order) if (e.verification) stopShedding(this, e.verification);
    const report = buildReport(r, state, this.now, error, failure, cause, detail);
    report.queued = this.s.queued?.id ?? null;
    this.s.lastReport = report;
    if (r.rollback) this.progress('rollback.done', null, null, `rollback ${report.rollback?.state ?? 'ended'}`);
    this.s.reload = null;
    for (const key of timerKeys(this.s.timers)) if (key.startsWith(`bake:${r.id}:`) || key.startsWith(`watch:${r.id}:`)) this.clearTimer(key);
    for (const g of this.s.groups) {
      if (g.rollTarget !== null) g.rollTarget = null;
      this.pruneSpecs(g);
    }
    this.recordOutcomes(r, state);
    for (const w of this.s.workers) if (w.retiredBy === r.id) this.own(w).retiredBy = null;
    if (state === 'succeeded') {
      for (const name of r.removed) {
        const g = this.group(name);
        if (!g) continue;
        g.removing = true;
        this.log('info', 'group removed from the config: draining it', { group: name });
      }
    }
    // A group this reload added but never started (an earlier group failed) has no
    // generation, spec or worker: drop it, the next reload adds it again.
    for (const e of r.order) {
      if (e.added && e.state === 'pending') this.s.groups = this.s.groups.filter((g) => g.name !== e.name || g.generation !== 0);
    }
    this.log(state === 'succeeded' ? 'info' : 'error', `reload ${state}`, {
      reloadId: r.id,
      durationMs: report.durationMs,
      error,
      ...(report.rollback ? { rollback: report.rollback.state } : {}),
    });

    this.emit({ type: 'reload.finished', reloadId: r.id, report });
    if (this.s.daemon === 'reloading') this.setDaemon('running');
    this.startQueued();
  }

  /** The release history learns what became of the generations this reload created. */
  private recordOutcomes(r: ReloadRun, state: 'succeeded' | 'failed' | 'aborted'): void {
    for (const e of r.order) {
      const g = this.group(e.name);
      if (!g || e.generation === null || e.state === 'skipped') continue;
      if (state === 'succeeded' && (e.state === 'rolled' || e.state === 'watching')) markOutcome(g.history, e.generation, 'good');
      if (e.state === 'failed') markOutcome(g.history, e.generation, 'bad'); // also when a stop aborted its rollback
      g.history = trimHistory(g.history, g.config.history, g.generation);
    }
  }

  private startQueued(): void {
    if (this.s.reload || this.s.daemon !== 'running') return;
    const rb = this.s.queuedRollbacks.shift();
    if (rb) {
      this.beginRollback(rb);
      // No config to load: nothing else would move it on.
      this.advanceReload();
      return;
    }
    if (!this.s.queued) return;
    const q = this.s.queued;
    this.s.queued = null;
    this.beginReload(q);
  }

  // ------------------------------------------------------------ start / stop

  private failStart(failure: ReloadFailure): void {
    if (this.s.startFailure) return;
    this.s.startFailure = failure;
    this.log('error', 'start failed: stopping every worker', { ...failure });
    this.beginStop(71);
  }

  private onStop(requestId: number | null, force: boolean): void {
    if (this.s.daemon === 'stopping') {
      if (force) this.killAll();
      if (requestId !== null) this.emit({ type: 'reply.ok', requestId });
      return;
    }
    this.beginStop(0);
    if (requestId !== null) this.emit({ type: 'reply.ok', requestId });
    if (force) this.killAll();
  }

  private beginStop(code: number): void {
    this.s.exitCode = code;
    this.setDaemon('stopping');
    if (this.s.reload) this.finishReload('aborted', 'smoothd is stopping', null, 'stop', []);
    for (const q of this.s.queuedRollbacks.splice(0)) {
      this.emit({ type: 'reload.finished', reloadId: q.id, report: { ...idleReport(), id: q.id, trigger: 'rollback', state: 'aborted', finishedAt: new Date(this.now).toISOString(), error: 'smoothd is stopping', errorCode: errorKindCode('stop') } });
    }
    if (this.s.queued) {
      const q = this.s.queued;
      this.s.queued = null;
      const report: ReloadReport = {
        ...idleReport(),
        id: q.id,
        trigger: q.trigger,
        state: 'aborted',
        finishedAt: new Date(this.now).toISOString(),
        error: 'smoothd is stopping',
        errorCode: errorKindCode('stop'),
      };
      this.emit({ type: 'reload.finished', reloadId: q.id, report });
    }
    for (const g of this.s.groups) {
      g.rollTarget = null;
      g.slots.forEach((slot, i) => {
        if (slot.backoffUntil !== null) this.slot(g, i)!.backoffUntil = null;
        this.clearTimer(`backoff:${g.name}:${i}`);
      });
    }
    for (const w of this.s.workers) if (isLive(w)) this.stopWorker(w, code === 0 ? 'smoothd is stopping' : 'start failed');
  }

  private killAll(): void {
    for (const record of this.s.workers) {
      const w = this.own(record);
      if (isLive(w)) this.stopWorker(w, 'smoothd is stopping');
      w.killed = true;
      this.clearTimer(`kill:${w.id}`);
      this.emit({ type: 'signal', workerId: w.id, signal: 'SIGKILL' });
    }
  }

  // ------------------------------------------------------------ workers

  private spawn(g: GroupState, slot: number, generation: number, startedBy: number | null): void {
    const spec = this.specFor(g, generation);
    const w: WorkerRecord = {
      id: this.s.nextWorkerId++,
      group: g.name,
      slot,
      generation,
      pid: null,
      phase: 'starting',
      startedAt: this.now,
      readyAt: null,
      stoppingAt: null,
      statusText: null,
      stopReason: null,
      killed: false,
      retiredBy: null,
      startedBy,
      failed: false,
      counters: null,
      baseline: null,
      leaderExit: null,
    };
    this.addWorker(w);
    this.emit({ type: 'spawn', workerId: w.id, group: g.name, slot, generation, spec });
    if (spec.ready.kind === 'delay') this.setTimer(`ready:${w.id}`, spec.ready.ms);
    this.setTimer(`readyTimeout:${w.id}`, spec.readyTimeoutMs, w.id);
  }

  /** Returns the stopping worker's record (a copy of `w` if this step had not changed it yet). */
  private stopWorker(record: WorkerRecord, reason: string): WorkerRecord {
    const w = this.own(record);
    if (w.phase === 'stopping') return w;
    const g = this.group(w.group);
    const spec = g ? this.specFor(g, w.generation) : null;
    w.phase = 'stopping';
    w.stoppingAt = this.now;
    w.stopReason = reason;
    this.clearTimer(`ready:${w.id}`);
    this.clearTimer(`readyTimeout:${w.id}`);
    this.log('info', 'stopping worker', { group: w.group, workerId: w.id, pid: w.pid, reason });
    this.emit({ type: 'signal', workerId: w.id, signal: spec?.stopSignal ?? 'SIGTERM' });
    this.setTimer(`kill:${w.id}`, spec?.stopTimeoutMs ?? 30_000);
    return w;
  }

  private pruneSpecs(g: GroupState): void {
    const used = new Set<string>([String(g.generation)]);
    const e = this.s.reload?.order.find((o) => o.name === g.name);
    if (e?.previousGeneration != null) used.add(String(e.previousGeneration));
    if (e?.generation != null && e.state !== 'pending' && e.state !== 'skipped') used.add(String(e.generation));
    for (const s of g.slots) used.add(String(s.generation));
    for (const w of groupWorkers(this.s.workers, g.name)) used.add(String(w.generation));
    for (const k of Object.keys(g.specs)) if (!used.has(k)) delete g.specs[k];
  }

  // ------------------------------------------------------------ reconcile

  reconcile(): void {
    if (this.s.daemon === 'stopping') {
      if (this.s.workers.length === 0) {
        for (const key of timerKeys(this.s.timers)) this.clearTimer(key);
        this.s.exited = true;
        this.log('info', 'every worker has exited', { exitCode: this.s.exitCode });
        this.emit({ type: 'exit', code: this.s.exitCode });
      }
      return;
    }
    this.advanceReload();
    for (const g of [...this.s.groups]) {
      if (g.removing) {
        for (const w of groupWorkers(this.s.workers, g.name)) if (isLive(w)) this.stopWorker(w, 'group removed');
        g.slots.forEach((_, i) => this.clearTimer(`backoff:${g.name}:${i}`));
        if (groupWorkers(this.s.workers, g.name).length === 0) this.s.groups = this.s.groups.filter((x) => x !== g);
        continue;
      }
      if (g.rollTarget !== null) continue; // the roll decides
      const served = new Set<number>();
      for (const w of this.s.workers) if (w.group === g.name && isLive(w)) served.add(w.slot);
      for (let i = 0; i < g.config.count; i++) {
        const slot = g.slots[i];
        if (!slot || slot.backoffUntil !== null) continue;
        if (served.has(i)) continue;
        this.spawn(g, i, slot.generation, null);
      }
    }
    if (this.s.daemon === 'starting' && this.allReady()) {
      for (const g of this.s.groups) markOutcome(g.history, g.generation, 'good');
      this.setDaemon('running');
      this.log('info', 'every worker is ready', { workers: this.s.workers.length, startupMs: this.now - this.s.startedAt });
      this.emit({ type: 'daemon.ready' });
      this.startQueued();
      if (this.s.reload) this.advanceReload();
    }
  }

  private allReady(): boolean {
    return this.s.groups.every((g) => {
      const mine = groupWorkers(this.s.workers, g.name);
      return readyCount(mine.filter(isLive)) >= g.config.count;
    });
  }
}

// ====================================================================== pure helpers

function entry(name: string, state: ReloadGroupEntry['state'], generation: number | null, spec: GenerationSpec | null): ReloadGroupEntry {
  return { name, state, done: 0, total: 0, generation, spec, previous: null, added: false, previousGeneration: null, verification: null, rollback: null };
}

function newVerification(): VerificationRun {
  return { canaryId: null, startedAt: null, baked: false, canary: { ...ZERO }, oldBase: {}, oldNow: {}, judged: false, verdict: null, shedding: [] };
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}

function stripSpec(spec: GenerationSpec): GroupConfig {
  const { cwdReal: _c, executable: _e, ...config } = spec;
  return config;
}

function sameSpec(a: GenerationSpec, b: GenerationSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
