/**
 * The runtime: the one owner of the supervisor state. It feeds events to the
 * pure machine one at a time and performs the effects the machine asks for —
 * spawning, signalling, timers, config loading, replies. The control socket,
 * signals and systemd only send it requests.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { ConfigError } from '../config/types.js';
import { initialState, step } from '../supervisor/machine.js';
import type { ReloadReport, StatusDocument } from '../supervisor/report.js';
import { buildStatus } from '../supervisor/status.js';
import { planRollback, type RollbackAsk } from '../supervisor/history.js';
import type { Effect, GenerationSpec, MachineEvent, MachineState, ProgressEvent, RefusalKind } from '../supervisor/types.js';
import { SocketTable } from './sockets.js';
import { CompileCacheFolders, compileCacheRoot } from './compile-cache.js';
import { startWorker, type RunningWorker } from './spawn.js';
import { LingeringGroups } from './procgroup.js';
import { WorkerNotifySockets, workerOwner } from './notify-socket.js';
import { StatusCoalescer } from './status-coalescer.js';
import { BootPriority } from './boot-nice.js';
import { IsoCache } from './iso-cache.js';
import { RssSampler, type RssSamplerOptions } from './rss-sampler.js';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Reads, validates and resolves the config for a reload; binds new listen addresses. */
export type ConfigLoader = (sockets: SocketTable) => Promise<{ config: Config; specs: Record<string, GenerationSpec> }>;

export interface RuntimeOptions {
  config: Config;
  specs: Record<string, GenerationSpec>;
  sockets: SocketTable;
  loadConfig: ConfigLoader;
  logger: Logger;
  platform?: string;
  clock?: Clock;
  version: string;
  setpriv: string | null;
  env?: NodeJS.ProcessEnv;
  /** Folder for the private runtime folder of `ready: notify` sockets (default: the temp folder). */
  notifyDir?: string;
  /** Called when the daemon's state changes, e.g. for systemd notifications. */
  onState?(state: MachineState, effect: Effect): void;
  /** Called after each batch of events has been handled, with the state it left. */
  onSettled?(state: MachineState): void;
  /** Called after each worker process exited (init mode scans for orphaned zombies then). */
  onWorkerExit?(): void;
  /**
   * Observers of every handled event: the state before and after, and the effects it produced
   * (metrics, reload history). They only read; an observer that throws is logged and ignored.
   */
  observers?: readonly StepObserver[];
  /** Each output line of a worker, with who wrote it (the log ring of `smoothctl logs`). */
  onWorkerLine?(l: WorkerLine): void;
  /** The state machine's step (tests inject a failing one; default: the real machine). */
  step?: typeof step;
  /** Reads a worker's resident memory (default: /proc/PID/statm); the RSS sampler calls it, never a status request. */
  readRss?: (pid: number) => number | null;
  /** How often the RSS sampler re-reads each worker (default: every 2 s, 32 workers per tick at most). */
  rssSampling?: RssSamplerOptions;
}

export interface WorkerLine {
  group: string;
  workerId: number;
  pid: number;
  generation: number;
  stream: 'stdout' | 'stderr';
  text: string;
  spec: GenerationSpec;
}

export type StepObserver = (prev: MachineState, event: MachineEvent, next: MachineState, effects: readonly Effect[], now: number) => void;

/** How many reload reports `status.reloads` keeps (DESIGN §11). */
export const RELOAD_HISTORY = 10;

/** The status document with what the runtime adds: the last reload reports, newest first. */
export type RuntimeStatus = StatusDocument & { reloads: ReloadReport[] };

/** Why a request was refused; the control layer turns it into a JSON-RPC error. */
export class RequestRefused extends Error {
  constructor(
    readonly kind: RefusalKind | 'stopping' | 'rollback-refused',
    message: string,
  ) {
    super(message);
    this.name = 'RequestRefused';
  }
}

/**
 * The state machine threw on the event a request made. The state is left as
 * it was before that event (the machine is pure) and the caller gets this
 * instead of waiting forever; the control server answers INTERNAL (-32099).
 */
export class InternalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InternalError';
  }
}

export class ReloadFailed extends Error {
  constructor(readonly report: ReloadReport) {
    super(report.error ?? `reload ${report.state}`);
    this.name = 'ReloadFailed';
  }
}

export interface Accepted {
  id: number;
  state: 'running' | 'queued';
}

interface PendingRequest {
  resolve(value: Accepted | null): void;
  reject(err: Error): void;
}

interface ReloadWaiter {
  onProgress(e: ProgressEvent & { reloadId: number }): void;
  resolve(r: ReloadReport): void;
}

export class Runtime {
  private state: MachineState;
  private readonly queue: MachineEvent[] = [];
  private busy = false;
  private readonly timers = new Map<string, unknown>();
  private readonly procs = new Map<number, RunningWorker>();
  private readonly requests = new Map<number, PendingRequest>();
  private readonly waiters = new Map<number, Set<ReloadWaiter>>();
  private readonly finished = new Map<number, ReloadReport>();
  /** The last reload reports, newest first (`status.reloads`). */
  private readonly history: ReloadReport[] = [];
  private nextRequestId = 1;
  private readonly clock: Clock;
  private readonly log: Logger;
  private exitResolve!: (code: number) => void;
  /** Resolves with smoothd's exit code once every worker has exited. */
  readonly exited: Promise<number>;
  readonly ready: Promise<void>;
  private readyResolve!: () => void;
  private readonly notifySockets: WorkerNotifySockets;
  /** Process groups whose leader exited while other members live on (DESIGN §13). */
  private readonly lingering = new LingeringGroups({ onGone: (workerId) => this.dispatch({ type: 'worker.gone', workerId }) });
  /** Workers started at boot priority (`bootNice`) until they are ready. */
  private readonly bootPriority: BootPriority;
  private processed = 0;
  private readonly step: typeof step;
  private readonly statuses: StatusCoalescer;
  /** Workers' resident memory, sampled in the background; status reads only this. */
  private readonly rss: RssSampler;
  private readonly isoTimes = new IsoCache();

  /**
   * smoothd's environment as workers inherit it and the compile cache folder, read once: smoothd never
   * changes its environment, and each read of process.env goes through Node's C++ layer (a copy of it
   * per spawn cost more than the rest of the worker's environment).
   */
  private readonly workerBaseEnv: NodeJS.ProcessEnv;
  private readonly compileCache: CompileCacheFolders | null;

  constructor(private readonly opts: RuntimeOptions) {
    this.workerBaseEnv = { ...(opts.env ?? process.env) };
    const cacheRoot = compileCacheRoot(opts.env ?? process.env, opts.notifyDir);
    this.compileCache = cacheRoot === null ? null : new CompileCacheFolders(cacheRoot);
    this.clock = opts.clock ?? realClock;
    this.step = opts.step ?? step;
    this.statuses = new StatusCoalescer((workerId, text) => this.dispatch({ type: 'worker.status', workerId, text }), this.clock);
    this.log = opts.logger;
    this.rss = new RssSampler(opts.readRss ?? readRss, this.clock, opts.rssSampling);
    this.bootPriority = new BootPriority(this.log, { timers: this.clock });
    this.state = initialState(opts.config, opts.specs, { platform: opts.platform ?? process.platform, now: this.clock.now() });
    this.exited = new Promise((r) => (this.exitResolve = r));
    this.ready = new Promise((r) => (this.readyResolve = r));
    this.notifySockets = new WorkerNotifySockets(opts.notifyDir ?? os.tmpdir(), this.log);
  }

  /**
   * Pushes a no-op event (a stale timer, which the machine ignores) through the
   * event loop and the machine; null when it was handled, else why not. The
   * systemd watchdog pings only while this is null.
   */
  probe(): string | null {
    const before = this.processed;
    this.dispatch({ type: 'timer', key: 'probe:watchdog' });
    if (this.processed > before) return null;
    return this.busy ? 'the event loop is stuck inside a dispatch' : 'the state machine fails on its current state';
  }

  start(): void {
    this.dispatch({ type: 'start' });
  }

  get snapshot(): MachineState {
    return this.state;
  }

  // ------------------------------------------------------------ requests

  /** Asks for a reload. Resolves once accepted (running or queued) with its id. */
  requestReload(groups: string[] | null, trigger: string, waiter?: ReloadWaiter): Promise<Accepted> {
    return this.request((requestId) => ({ type: 'reload.request', requestId, groups, trigger }), waiter);
  }

  /**
   * `smoothctl rollback`: picks each group's target from its history, refuses
   * (ROLLBACK_REFUSED) when there is none, when it is the same release as today
   * without `force`, or when its folder or program is gone; binds the listen
   * addresses only the target uses; then asks the machine to roll.
   */
  async requestRollback(ask: RollbackAsk, waiter?: ReloadWaiter): Promise<Accepted> {
    const plan = planRollback(this.state.groups, ask);
    if (typeof plan === 'string') throw new RequestRefused('rollback-refused', `rollback refused: ${plan}`);
    for (const t of plan) {
      const gone = releaseGone(t.spec);
      if (gone) throw new RequestRefused('rollback-refused', `rollback refused: ${t.group}: generation ${t.generation}'s ${gone}; nothing was changed`);
    }
    try {
      await this.opts.sockets.bindAll(plan.flatMap((t) => t.spec.listen).filter((l) => !this.opts.sockets.get(l.address.key)));
    } catch (err) {
      throw new RequestRefused('rollback-refused', `rollback refused: cannot bind the target's listen address: ${(err as Error).message}`);
    }
    return this.request((requestId) => ({ type: 'rollback.request', requestId, targets: plan }), waiter);
  }

  requestRestart(group: string, waiter?: ReloadWaiter): Promise<Accepted> {
    return this.request((requestId) => ({ type: 'restart.request', requestId, group }), waiter);
  }

  /** Resolves with the final report of a reload (also for one that already ended recently). */
  waitForReload(id: number, onProgress: ReloadWaiter['onProgress'], signal?: AbortSignal): Promise<ReloadReport> {
    const done = this.finished.get(id);
    if (done) return Promise.resolve(done);
    return new Promise((resolve) => {
      const w: ReloadWaiter = { onProgress, resolve };
      this.addWaiter(id, w);
      signal?.addEventListener('abort', () => this.waiters.get(id)?.delete(w), { once: true });
    });
  }

  stop(force = false): Promise<void> {
    return this.request((requestId) => ({ type: 'stop.request', requestId, force })).then(() => undefined);
  }

  /** Stop without a reply channel (signals). */
  signalStop(force: boolean): void {
    this.dispatch({ type: 'stop.request', requestId: null, force });
  }

  status(): RuntimeStatus {
    const doc = buildStatus(this.state, {
      pid: process.pid,
      version: this.opts.version,
      now: this.clock.now(),
      rss: (pid) => this.rss.get(pid),
      iso: (t) => this.isoTimes.format(t),
      bound: (key) => this.opts.sockets.boundAddress(key),
    });
    return { ...doc, reloads: [...this.history] };
  }

  private request(make: (requestId: number) => MachineEvent, waiter?: ReloadWaiter): Promise<Accepted> {
    const requestId = this.nextRequestId++;
    return new Promise<Accepted>((resolve, reject) => {
      this.requests.set(requestId, {
        resolve: (value) => {
          if (value && waiter) this.addWaiter(value.id, waiter);
          resolve(value ?? { id: 0, state: 'running' });
        },
        reject,
      });
      this.dispatch(make(requestId));
    });
  }

  private addWaiter(id: number, w: ReloadWaiter): void {
    let set = this.waiters.get(id);
    if (!set) this.waiters.set(id, (set = new Set()));
    set.add(w);
  }

  // ------------------------------------------------------------ the loop

  dispatch(event: MachineEvent): void {
    this.queue.push(event);
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0) {
        const ev = this.queue.shift()!;
        let result;
        const now = this.clock.now();
        const prev = this.state;
        try {
          result = this.step(prev, ev, now);
        } catch (err) {
          // A bug in the machine must not take the workers down with it: log and
          // drop the event (the state stays as it was), and answer the request
          // that sent it, so its caller does not wait forever.
          this.log.error({ err, event: ev.type }, 'internal error while handling an event; the event was dropped');
          this.failRequest(ev, err);
          continue;
        }
        this.state = result.state;
        this.processed += 1;
        this.restoreBootPriority();
        for (const observe of this.opts.observers ?? []) {
          try {
            observe(prev, ev, result.state, result.effects, now);
          } catch (err) {
            this.log.error({ err, event: ev.type }, 'internal error in an observer (metrics); smoothd keeps running');
          }
        }
        for (const e of result.effects) {
          try {
            this.perform(e);
          } catch (err) {
            this.log.error({ err, effect: e.type }, 'internal error while performing an effect');
          }
        }
      }
      this.releaseUnusedSockets();
      this.opts.onSettled?.(this.state);
    } finally {
      this.busy = false;
    }
  }

  /** A worker at boot priority that is no longer starting (ready, or stopped before) gets its normal priority back. */
  private restoreBootPriority(): void {
    const pending = this.bootPriority.pending;
    if (pending.length === 0) return;
    for (const id of pending) {
      const w = this.state.workers.find((x) => x.id === id);
      if (!w) this.bootPriority.forget(id);
      else if (w.phase !== 'starting') this.bootPriority.restore(id);
    }
  }

  private failRequest(ev: MachineEvent, err: unknown): void {
    const requestId = (ev as { requestId?: unknown }).requestId;
    if (typeof requestId !== 'number') return;
    const pending = this.requests.get(requestId);
    if (!pending) return;
    this.requests.delete(requestId);
    pending.reject(new InternalError(`smoothd could not handle the ${ev.type} event (${err instanceof Error ? err.message : String(err)}); nothing changed`));
  }

  private perform(e: Effect): void {
    switch (e.type) {
      case 'spawn':
        return this.spawn(e);
      case 'signal': {
        const p = this.procs.get(e.workerId);
        if (p) p.signal(e.signal);
        else this.lingering.signal(e.workerId, e.signal);
        return;
      }
      case 'worker.shed': {
        const child = this.procs.get(e.workerId)?.child;
        if (child?.connected) child.send({ type: 'smoothd.shed', share: e.share }, (err) => err && this.log.debug({ workerId: e.workerId, err: err.message }, 'shed message not delivered'));
        return;
      }
      case 'timer.set': {
        const old = this.timers.get(e.key);
        if (old !== undefined) this.clock.clearTimeout(old);
        this.timers.set(
          e.key,
          this.clock.setTimeout(() => {
            this.timers.delete(e.key);
            const of = e.stderrOf;
            this.dispatch(of === undefined ? { type: 'timer', key: e.key } : { type: 'timer', key: e.key, stderrTail: this.procs.get(of)?.stderrTail() ?? [] });
          }, e.ms),
        );
        return;
      }
      case 'timer.clear': {
        const h = this.timers.get(e.key);
        if (h !== undefined) this.clock.clearTimeout(h);
        this.timers.delete(e.key);
        return;
      }
      case 'config.load':
        return this.loadConfig(e.reloadId);
      case 'reply.accepted':
        this.requests.get(e.requestId)?.resolve({ id: e.reloadId, state: e.state });
        this.requests.delete(e.requestId);
        return;
      case 'reply.ok':
        this.requests.get(e.requestId)?.resolve(null);
        this.requests.delete(e.requestId);
        return;
      case 'reply.refused':
        this.requests.get(e.requestId)?.reject(new RequestRefused(e.kind, e.message));
        this.requests.delete(e.requestId);
        return;
      case 'reply.stopping':
        this.requests.get(e.requestId)?.reject(new RequestRefused('stopping', 'smoothd is stopping; reload refused (start smoothd again, then reload)'));
        this.requests.delete(e.requestId);
        return;
      case 'reload.progress': {
        for (const w of this.waiters.get(e.reloadId) ?? []) w.onProgress({ ...e.event, reloadId: e.reloadId });
        return;
      }
      case 'reload.finished': {
        this.history.unshift(e.report);
        if (this.history.length > RELOAD_HISTORY) this.history.length = RELOAD_HISTORY;
        this.finished.set(e.reloadId, e.report);
        if (this.finished.size > 32) this.finished.delete(this.finished.keys().next().value!);
        const set = this.waiters.get(e.reloadId);
        this.waiters.delete(e.reloadId);
        for (const w of set ?? []) w.resolve(e.report);
        return;
      }
      case 'daemon.state':
        this.log.info({ state: e.state, status: e.status }, `smoothd is ${e.state}`);
        this.opts.onState?.(this.state, e);
        return;
      case 'daemon.ready':
        this.readyResolve();
        this.opts.onState?.(this.state, e);
        return;
      case 'log':
        this.log[e.level](e.fields, e.msg);
        return;
      case 'exit':
        for (const h of this.timers.values()) this.clock.clearTimeout(h);
        this.timers.clear();
        for (const [id, r] of this.requests) {
          r.reject(new RequestRefused('stopping', 'smoothd stopped before answering'));
          this.requests.delete(id);
        }
        this.notifySockets.closeAll();
        this.statuses.closeAll();
        this.rss.stop();
        this.lingering.close();
        this.opts.onState?.(this.state, e);
        this.exitResolve(e.code);
        return;
      default: {
        const never: never = e;
        throw new Error(`unknown effect ${JSON.stringify(never)}`);
      }
    }
  }

  private spawn(e: Extract<Effect, { type: 'spawn' }>): void {
    const fds: number[] = [];
    for (const l of e.spec.listen) {
      const held = this.opts.sockets.get(l.address.key);
      if (!held) {
        queueMicrotask(() => this.dispatch({ type: 'worker.spawnFailed', workerId: e.workerId, error: `listen socket ${l.text} is not held` }));
        return;
      }
      fds.push(held.fd);
    }
    const id = e.workerId;
    // Readiness and STATUS come over IPC or the worker's own NOTIFY_SOCKET; both end here.
    const onReady = (): void => {
      this.statuses.flush(id);
      const p = this.procs.get(id);
      if (p) this.rss.refresh(p.pid);
      this.dispatch({ type: 'worker.ready', workerId: id });
    };
    const onStatus = (text: string): void => this.statuses.push(id, text);
    const onStats = (requests: number | null, errors: number | null): void => this.dispatch({ type: 'worker.stats', workerId: id, requests, errors });
    let notify: { path: string; close(): void } | undefined;
    if (e.spec.ready.kind === 'notify') {
      const n = this.notifySockets.openFor(id, workerOwner(e.spec), {
        onReady,
        onStatus,
        onStats,
        onStopping: () => this.log.info({ group: e.group, workerId: id }, 'worker says it is stopping (STOPPING=1)'),
      });
      if (n instanceof Error) {
        queueMicrotask(() => this.dispatch({ type: 'worker.spawnFailed', workerId: id, error: n.message }));
        return;
      }
      notify = n;
    }
    const running = startWorker(
      {
        workerId: id,
        group: e.group,
        slot: e.slot,
        generation: e.generation,
        spec: e.spec,
        fds,
        setpriv: this.opts.setpriv,
        baseEnv: this.workerBaseEnv,
        notifySocket: notify?.path,
        compileCache: this.compileCache,
      },
      this.log,
      {
        onReady,
        onStatus,
        onStats,
        onLine: (stream, text) => {
          if (!(running instanceof Error)) this.opts.onWorkerLine?.({ group: e.group, workerId: id, pid: running.pid, generation: e.generation, stream, text, spec: e.spec });
        },
        onExit: (code, signal, stderrTail) => {
          this.procs.delete(id);
          this.bootPriority.forget(id);
          if (!(running instanceof Error)) this.rss.forget(running.pid);
          notify?.close();
          // The leader's pid is its process group's id; other members may live on.
          const lingering = running instanceof Error ? false : this.lingering.leaderExited(id, running.pid);
          this.dispatch({ type: 'worker.exited', workerId: id, code, signal, stderrTail, ...(lingering ? { lingering } : {}) });
          this.opts.onWorkerExit?.();
        },
      },
    );
    if (running instanceof Error) {
      notify?.close();
      this.queue.push({ type: 'worker.spawnFailed', workerId: id, error: running.message });
      return;
    }
    this.procs.set(id, running);
    this.rss.track(running.pid);
    this.bootPriority.lower(id, running.pid, e.group, e.spec.bootNice ?? 0, e.spec.readyTimeoutMs);
    this.queue.push({ type: 'worker.spawned', workerId: id, pid: running.pid });
  }

  private loadConfig(reloadId: number): void {
    this.opts.loadConfig(this.opts.sockets).then(
      ({ config, specs }) => this.dispatch({ type: 'config.loaded', reloadId, config, specs }),
      (err: unknown) => {
        if (err instanceof ConfigError) {
          this.dispatch({ type: 'config.failed', reloadId, message: `${err.file}: invalid config`, issues: err.issues });
        } else {
          this.dispatch({ type: 'config.failed', reloadId, message: (err as Error).message ?? String(err), issues: [] });
        }
      },
    );
  }

  /** Closes listen sockets that no generation, pending change or running reload refers to any more. */
  private releaseUnusedSockets(): void {
    const keep = new Set<string>();
    const add = (spec: GenerationSpec | null | undefined): void => {
      for (const l of spec?.listen ?? []) keep.add(l.address.key);
    };
    for (const g of this.state.groups) {
      for (const spec of Object.values(g.specs)) add(spec);
      add(g.pending);
    }
    for (const e of this.state.reload?.order ?? []) add(e.spec);
    // A rollback queued behind a reload rolls to a spec no group may use yet: its sockets were bound for it.
    for (const q of this.state.queuedRollbacks) for (const t of q.targets) add(t.spec);
    if (this.state.reload?.phase === 'loading') return; // the loader may be binding new ones right now
    if (this.state.exited) keep.clear();
    const closed = this.opts.sockets.release(keep);
    if (closed.length > 0) this.log.info({ closed }, 'closed listen sockets no worker uses any more');
  }
}

/** Why a rollback target cannot run any more (its folder or program is gone), or null. */
export function releaseGone(spec: GenerationSpec): string | null {
  try {
    if (!fs.statSync(spec.cwdReal).isDirectory()) return `folder ${spec.cwdReal} is not a folder any more`;
  } catch {
    return `folder ${spec.cwdReal} no longer exists (deleted release?)`;
  }
  try {
    fs.accessSync(spec.executable, fs.constants.X_OK);
  } catch {
    return `program ${spec.executable} no longer exists or is not executable`;
  }
  return null;
}

/** Resident set size of a process from /proc, or null. */
export function readRss(pid: number): number | null {
  try {
    const statm = fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    return Number(statm[1]) * 4096;
  } catch {
    return null;
  }
}
