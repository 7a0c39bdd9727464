/**
 * smoothd's metrics (DESIGN §11). The collector observes the runtime — every
 * event the machine handled with the state before and after, and the effects
 * it asked for — and keeps the counters and histograms that a state snapshot
 * cannot give (exits, reload results, durations). Gauges are read from the
 * state at scrape time. Counters never reset while smoothd runs.
 */
import fs from 'node:fs';
import type { ReloadReport } from '../supervisor/report.js';
import type { Effect, MachineEvent, MachineState, WorkerRecord } from '../supervisor/types.js';
import { Exposition, Histogram } from './text.js';
import { findWorker } from '../supervisor/worker-lookup.js';

export const WORKER_STATES = ['starting', 'ready', 'stopping', 'backoff'] as const;
export const EXIT_REASONS = ['crashed', 'failed_ready', 'spawn_failed', 'stopped', 'killed'] as const;
export const RELOAD_RESULTS = ['succeeded', 'failed', 'rolled_back', 'aborted'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];
export type ReloadResult = (typeof RELOAD_RESULTS)[number];

/** Seconds: 0.1 s .. 5 min. */
export const RELOAD_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;
export const READY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;
export const DRAIN_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] as const;

/** The one result a finished reload counts as (a refused config is a failed reload). */
export function reloadResult(report: ReloadReport): ReloadResult {
  if (report.state === 'succeeded') return 'succeeded';
  if (report.state === 'aborted') return 'aborted';
  return report.rollback?.state === 'succeeded' ? 'rolled_back' : 'failed';
}

/** Why a worker's process ended, from its record just before the exit. */
export function exitReason(w: WorkerRecord): ExitReason {
  if (w.failed) return 'failed_ready';
  if (w.killed) return 'killed';
  if (w.phase === 'stopping') return w.leaderExit?.crash ? 'crashed' : 'stopped';
  if (w.phase === 'starting') return 'failed_ready';
  return 'crashed';
}

interface GroupCounters {
  restarts: number;
  exits: Record<ExitReason, number>;
  drainKills: number;
  ready: Histogram;
  drain: Histogram;
}

interface Live {
  group: string;
  generation: number;
  requests: number;
  errors: number;
}

export interface DaemonFacts {
  version: string;
  node: string;
}

export class MetricsCollector {
  private readonly groups = new Map<string, GroupCounters>();
  private readonly reloads: Record<ReloadResult, number> = { succeeded: 0, failed: 0, rolled_back: 0, aborted: 0 };
  private readonly reloadDuration = new Histogram(RELOAD_BUCKETS);
  private lastSuccessful = 1;
  private lastSuccessAt: number | null = null;
  /** Last reported counters of each live worker. */
  private readonly live = new Map<number, Live>();
  /** Counters of workers that exited, per `group\0generation`. */
  private readonly gone = new Map<string, { requests: number; errors: number }>();

  constructor(private readonly facts: DaemonFacts) {}

  private group(name: string): GroupCounters {
    let g = this.groups.get(name);
    if (!g) {
      g = {
        restarts: 0,
        exits: { crashed: 0, failed_ready: 0, spawn_failed: 0, stopped: 0, killed: 0 },
        drainKills: 0,
        ready: new Histogram(READY_BUCKETS),
        drain: new Histogram(DRAIN_BUCKETS),
      };
      this.groups.set(name, g);
    }
    return g;
  }

  /** One handled event: the state before and after, and the effects it produced. */
  observe(prev: MachineState, event: MachineEvent, next: MachineState, effects: readonly Effect[], now: number): void {
    this.countRestarts(prev, next);
    switch (event.type) {
      case 'worker.ready': {
        const w = findWorker(next.workers, event.workerId);
        const before = findWorker(prev.workers, event.workerId);
        if (w && w.readyAt !== null && before?.readyAt === null) this.group(w.group).ready.observe((w.readyAt - w.startedAt) / 1000);
        break;
      }
      case 'timer': {
        // A duration `ready` makes a worker ready when its timer fires.
        if (!event.key.startsWith('ready:')) break;
        const id = Number(event.key.slice('ready:'.length));
        const w = findWorker(next.workers, id);
        const before = findWorker(prev.workers, id);
        if (w && w.readyAt !== null && before?.readyAt === null) this.group(w.group).ready.observe((w.readyAt - w.startedAt) / 1000);
        break;
      }
      case 'worker.stats': {
        const w = findWorker(next.workers, event.workerId);
        if (w?.counters) this.live.set(w.id, { group: w.group, generation: w.generation, requests: w.counters.requests, errors: w.counters.errors });
        break;
      }
      case 'worker.spawnFailed': {
        const w = findWorker(prev.workers, event.workerId);
        if (w) this.group(w.group).exits.spawn_failed += 1;
        break;
      }
      case 'worker.exited': {
        const w = findWorker(prev.workers, event.workerId);
        if (!w || w.leaderExit !== null) break; // a lingering group's leader was counted when it exited
        const g = this.group(w.group);
        const reason = exitReason(w);
        g.exits[reason] += 1;
        if (w.killed) g.drainKills += 1;
        if (w.phase === 'stopping' && w.stoppingAt !== null && !w.failed) g.drain.observe((now - w.stoppingAt) / 1000);
        this.retire(w.id);
        break;
      }
      case 'worker.gone':
        this.retire(event.workerId);
        break;
      default:
        break;
    }
    for (const e of effects) if (e.type === 'reload.finished') this.reloadFinished(e.report, now);
  }

  private countRestarts(prev: MachineState, next: MachineState): void {
    for (const g of next.groups) {
      const before = prev.groups.find((x) => x.name === g.name);
      // A step copies a group's slot list only when it changes a slot: the same list, the same counts.
      if (!before || before.slots === g.slots) continue;
      g.slots.forEach((slot, i) => {
        const was = before.slots[i]?.restarts ?? 0;
        if (slot.restarts > was) this.group(g.name).restarts += slot.restarts - was;
      });
    }
  }

  /** A worker is gone: its last counters stay in its generation's running total. */
  private retire(workerId: number): void {
    const l = this.live.get(workerId);
    if (!l) return;
    this.live.delete(workerId);
    const key = `${l.group}\0${l.generation}`;
    const t = this.gone.get(key) ?? { requests: 0, errors: 0 };
    t.requests += l.requests;
    t.errors += l.errors;
    this.gone.set(key, t);
  }

  private reloadFinished(report: ReloadReport, now: number): void {
    const result = reloadResult(report);
    this.reloads[result] += 1;
    if (report.durationMs !== null) this.reloadDuration.observe(report.durationMs / 1000);
    this.lastSuccessful = result === 'succeeded' ? 1 : 0;
    if (result === 'succeeded') this.lastSuccessAt = now;
  }

  /** The exposition document for this state. Cheap and synchronous: nothing here waits. */
  render(s: MachineState): string {
    const x = new Exposition();
    const groupNames = s.groups.map((g) => g.name);
    for (const name of this.groups.keys()) if (!groupNames.includes(name)) groupNames.push(name);
    const counters = (name: string): GroupCounters => this.groups.get(name) ?? this.group(name);

    x.family('smoothd_build_info', 'gauge', 'smoothd version and the Node.js it runs on; always 1.')
      .sample('smoothd_build_info', { version: this.facts.version, node: this.facts.node }, 1);
    x.family('smoothd_start_time_seconds', 'gauge', 'When smoothd started, in seconds since the epoch.')
      .sample('smoothd_start_time_seconds', {}, s.startedAt / 1000);

    x.family('smoothd_workers', 'gauge', 'Workers per group and state (backoff: slots waiting to restart).');
    for (const g of s.groups) {
      const n: Record<string, number> = { starting: 0, ready: 0, stopping: 0, backoff: 0 };
      for (const w of s.workers) if (w.group === g.name) n[w.phase]! += 1;
      for (const slot of g.slots) if (slot.backoffUntil !== null) n.backoff! += 1;
      for (const st of WORKER_STATES) x.sample('smoothd_workers', { group: g.name, state: st }, n[st]!);
    }

    x.family('smoothd_worker_restarts_total', 'counter', 'Workers restarted after a crash.');
    for (const name of groupNames) x.sample('smoothd_worker_restarts_total', { group: name }, counters(name).restarts);
    x.family('smoothd_worker_exits_total', 'counter', 'Worker processes that ended, by reason.');
    for (const name of groupNames) for (const r of EXIT_REASONS) x.sample('smoothd_worker_exits_total', { group: name, reason: r }, counters(name).exits[r]);

    x.family('smoothd_reloads_total', 'counter', 'Finished reloads by result (one per reload).');
    for (const r of RELOAD_RESULTS) x.sample('smoothd_reloads_total', { result: r }, this.reloads[r]);
    x.family('smoothd_reload_duration_seconds', 'histogram', 'Duration of finished reloads.')
      .histogram('smoothd_reload_duration_seconds', {}, this.reloadDuration);
    x.family('smoothd_worker_ready_seconds', 'histogram', 'Time from spawn to ready of each worker.');
    for (const name of groupNames) x.histogram('smoothd_worker_ready_seconds', { group: name }, counters(name).ready);
    x.family('smoothd_drain_seconds', 'histogram', 'Time from the stop signal to the exit of each stopped worker.');
    for (const name of groupNames) x.histogram('smoothd_drain_seconds', { group: name }, counters(name).drain);
    x.family('smoothd_drain_kills_total', 'counter', 'Workers killed (SIGKILL) because they did not exit within stopTimeout.');
    for (const name of groupNames) x.sample('smoothd_drain_kills_total', { group: name }, counters(name).drainKills);

    x.family('smoothd_reload_in_progress', 'gauge', '1 while a reload runs.').sample('smoothd_reload_in_progress', {}, s.reload ? 1 : 0);
    x.family('smoothd_last_reload_successful', 'gauge', '1 when the last reload succeeded (1 at start).')
      .sample('smoothd_last_reload_successful', {}, this.lastSuccessful);
    x.family('smoothd_last_reload_success_timestamp_seconds', 'gauge', 'When the last successful reload (or the start) ended.')
      .sample('smoothd_last_reload_success_timestamp_seconds', {}, (this.lastSuccessAt ?? s.startedAt) / 1000);

    x.family('smoothd_generation', 'gauge', 'The generation each group runs.');
    for (const g of s.groups) x.sample('smoothd_generation', { group: g.name }, g.generation);
    x.family('smoothd_release_info', 'gauge', "The release each group runs (REVISION file, or \"\"); always 1.");
    for (const g of s.groups) {
      const revision = g.specs[String(g.generation)]?.revision ?? '';
      x.sample('smoothd_release_info', { group: g.name, generation: String(g.generation), revision }, 1);
    }

    const perGen = this.perGeneration(s);
    x.family('smoothd_worker_requests_total', 'counter', "Responses the workers reported, per generation (the workers' own counters).");
    for (const [k, v] of perGen) x.sample('smoothd_worker_requests_total', { group: k.group, generation: String(k.generation) }, v.requests);
    x.family('smoothd_worker_errors_total', 'counter', 'Responses with status >= 500 the workers reported, per generation.');
    for (const [k, v] of perGen) x.sample('smoothd_worker_errors_total', { group: k.group, generation: String(k.generation) }, v.errors);

    const cpu = process.cpuUsage();
    x.family('process_resident_memory_bytes', 'gauge', "smoothd's resident memory in bytes.").sample('process_resident_memory_bytes', {}, process.memoryUsage.rss());
    x.family('process_cpu_seconds_total', 'counter', 'CPU time smoothd used (user and system), in seconds.')
      .sample('process_cpu_seconds_total', {}, (cpu.user + cpu.system) / 1e6);
    const fds = openFds();
    if (fds !== null) x.family('process_open_fds', 'gauge', 'File descriptors smoothd holds open.').sample('process_open_fds', {}, fds);
    return x.toString();
  }

  /**
   * Requests and errors per {group, generation}, for exactly the generations in
   * the group's release history (`status` groups[].history, trimmed to the
   * `history` key): a series appears with its generation and goes when the
   * generation leaves the history.
   */
  private perGeneration(s: MachineState): Array<[{ group: string; generation: number }, { requests: number; errors: number }]> {
    const totals = new Map<string, { requests: number; errors: number }>();
    for (const [k, v] of this.gone) totals.set(k, { ...v });
    for (const l of this.live.values()) {
      const key = `${l.group}\0${l.generation}`;
      const t = totals.get(key) ?? { requests: 0, errors: 0 };
      t.requests += l.requests;
      t.errors += l.errors;
      totals.set(key, t);
    }
    const out: Array<[{ group: string; generation: number }, { requests: number; errors: number }]> = [];
    const shown = new Set<string>();
    for (const g of s.groups) {
      for (const gen of g.history.map((h) => h.generation).sort((a, b) => a - b)) {
        const key = `${g.name}\0${gen}`;
        shown.add(key);
        out.push([{ group: g.name, generation: gen }, totals.get(key) ?? { requests: 0, errors: 0 }]);
      }
    }
    // A generation that left the history never comes back (rollback targets come from it):
    // forget the totals of exited workers that are not shown, so memory stays bounded.
    for (const key of this.gone.keys()) if (!shown.has(key)) this.gone.delete(key);
    return out;
  }
}

function openFds(): number | null {
  try {
    return fs.readdirSync('/proc/self/fd').length - 1; // minus the one readdir itself opened
  } catch {
    return null;
  }
}
