/**
 * A fake world around the pure supervisor machine: a fake clock, the timers the
 * machine armed, fake processes, a config loader, and everything the machine
 * said (replies, progress, reports, exit). Events caused by effects (a spawn's
 * `worker.spawned`, an exit after a stop signal, a `config.loaded`) are fed
 * back in FIFO order, the way an event loop would deliver them.
 */
import type { Config, GroupConfig, ListenEntry } from '../../src/config/types.js';
import { initialState, step } from '../../src/supervisor/machine.js';
import type { ReloadReport } from '../../src/supervisor/report.js';
import type {
  Effect,
  GenerationSpec,
  MachineEvent,
  MachineState,
  ProgressEvent,
  StepResult,
  WorkerRecord,
} from '../../src/supervisor/types.js';

// ------------------------------------------------------------------ config builders

export function groupConfig(overrides: Partial<GroupConfig> = {}): GroupConfig {
  return {
    name: 'web',
    command: ['node', 'server.js'],
    cwd: '/srv/app/current',
    env: {},
    user: null,
    group: null,
    count: 1,
    listen: [],
    reloadable: true,
    ready: { kind: 'ipc' },
    readyTimeoutMs: 30_000,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 30_000,
    rolling: { surge: 1, unavailable: 0 },
    restartDelayMs: 100,
    maxRestartDelayMs: 30_000,
    verify: { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 0 },
    onFailure: 'rollback',
    history: 5,
    ...overrides,
  };
}

export function specFor(g: GroupConfig, cwdReal = g.cwd.replace(/current$/, 'releases/1')): GenerationSpec {
  return { ...structuredClone(g), cwdReal, executable: `/usr/bin/${g.command[0] ?? 'node'}` };
}

export interface LoadedConfig {
  config: Config;
  specs: Record<string, GenerationSpec>;
}

/** A TCP listen entry on 127.0.0.1 from its text ("127.0.0.1:8080"), named listen0. */
export const tcpListen = (text: string): ListenEntry => ({
  address: { kind: 'tcp', host: '127.0.0.1', port: Number(text.split(':')[1]), family: 4, key: `tcp:${text}` },
  name: 'listen0',
  backlog: 511,
  mode: null,
  text,
});

export const CONFIG_PATH = '/etc/smoothd/smoothd.yaml';

/** A Config and its resolved specs; `release` changes cwdReal (new code on disk). */
export function makeConfig(groups: GroupConfig[], release = 1): LoadedConfig {
  const specs: Record<string, GenerationSpec> = {};
  for (const g of groups) specs[g.name] = specFor(g, g.cwd.replace(/current$/, `releases/${release}`));
  return { config: { path: CONFIG_PATH, socketMode: 0o600, socketGroup: null, groups: structuredClone(groups) }, specs };
}

// ------------------------------------------------------------------ fake processes

export interface Behavior {
  /** Ignore the stop signal (only SIGKILL ends it). */
  ignoreStop: boolean;
  /** Time between the stop signal and the exit (draining). */
  drainMs: number;
  /** Become ready this long after spawning (null: only when the test says so). */
  readyAfterMs: number | null;
  /** Exit with this code this long after spawning, before any readiness. */
  crashAfterMs: number | null;
  crashCode: number;
  /** `worker.spawnFailed` instead of `worker.spawned`. */
  spawnFails: string | null;
  /**
   * `worker.spawnFailed` delivered once the current cascade has settled, not in turn: the
   * runtime's queueMicrotask path (a listen socket not held, a NOTIFY_SOCKET it could not open).
   */
  spawnFailsLater: string | null;
  /**
   * `worker.spawned`, then this exit code as the first event after the cascade, before any
   * timer: the exec inside the new process failed (setpriv or the shell exits 126/127).
   */
  execFails: number | null;
  stderr: string[];
  /**
   * Another member of its process group (a wrapper script's child) that outlives the
   * leader: `drains` exits on the stop signal, `ignoresStop` only on SIGKILL of the group.
   */
  straggler: 'none' | 'drains' | 'ignoresStop';
}

const DEFAULT_BEHAVIOR: Behavior = {
  ignoreStop: false,
  drainMs: 0,
  readyAfterMs: null,
  crashAfterMs: null,
  crashCode: 1,
  spawnFails: null,
  spawnFailsLater: null,
  execFails: null,
  stderr: [],
  straggler: 'none',
};

export interface FakeProcess {
  workerId: number;
  pid: number;
  group: string;
  slot: number;
  generation: number;
  spec: GenerationSpec;
  /** The leader runs. */
  alive: boolean;
  /** The leader exited but its straggler still runs (the machine was told `lingering`). */
  lingering: boolean;
  /** The machine has handled the news that the whole group is gone (an exit without `lingering`, `worker.gone`). */
  gone: boolean;
  /** The straggler got the stop signal with the rest of the group. */
  stragglerStopping: boolean;
  signals: NodeJS.Signals[];
  behavior: Behavior;
}

type Spawn = Extract<Effect, { type: 'spawn' }>;

interface Scheduled {
  due: number;
  seq: number;
  run: () => void;
}

export type LoadAnswer = LoadedConfig | { fail: string; issues?: { path: string; message: string }[] } | 'manual';

export interface WorldOptions {
  platform?: string;
  /** Workers become ready as soon as they are spawned. */
  autoReady?: boolean;
  now?: number;
  /** Send `start` at once (default true). */
  start?: boolean;
}

export class World {
  now: number;
  state: MachineState;
  /** Every effect, in order. */
  readonly effects: Effect[] = [];
  /** Armed timers as the runtime sees them: key -> {due, seq}. */
  readonly timers = new Map<string, { due: number; seq: number }>();
  readonly procs = new Map<number, FakeProcess>();
  readonly finished = new Map<number, ReloadReport>();
  readonly finishedOrder: number[] = [];
  readonly progress: { reloadId: number; event: ProgressEvent }[] = [];
  readonly replies: Effect[] = [];
  readonly loads: number[] = [];
  exitCode: number | null = null;
  /** Protocol violations seen by the harness itself (timer set twice, signal to an unknown worker...). */
  readonly violations: string[] = [];
  autoReady: boolean;
  /** What a `config.load` gets answered with. */
  loader: (reloadId: number) => LoadAnswer;
  /** Behavior for each new process (the default, refined per spawn). */
  behave: (spawn: Spawn) => Partial<Behavior> = () => ({});
  /**
   * Deep-freeze the state before every step: a step that changes its input
   * state (instead of copying what it changes) then throws.
   */
  freezeInput = false;
  /** Called after every machine step. */
  onStep: ((prev: MachineState, event: MachineEvent, result: StepResult) => void) | null = null;
  /** Called when a cascade has settled (where the runtime closes the listen sockets no spec uses). */
  onSettled: ((state: MachineState) => void) | null = null;
  current: LoadedConfig;

  private seq = 0;
  private queue: MachineEvent[] = [];
  /** Events due once the queue is empty (microtasks, the first I/O callback). */
  private afterCascade: (() => MachineEvent | null)[] = [];
  private draining = false;
  private scheduled: Scheduled[] = [];
  private nextPid = 1000;
  private lastWorkerId = 0;

  constructor(initial: LoadedConfig, opts: WorldOptions = {}) {
    this.now = opts.now ?? 1_700_000_000_000;
    this.autoReady = opts.autoReady ?? false;
    this.current = initial;
    this.loader = () => this.current;
    this.state = initialState(initial.config, initial.specs, { platform: opts.platform ?? 'linux', now: this.now });
    if (opts.start ?? true) this.send({ type: 'start' });
  }

  // ---------------------------------------------------------------- driving

  /** Feed one event (and every event its effects cause). Returns the effects of the whole cascade. */
  send(event: MachineEvent): Effect[] {
    const from = this.effects.length;
    this.queue.push(event);
    if (!this.draining) {
      this.draining = true;
      try {
        let guard = 0;
        while (this.queue.length > 0 || this.afterCascade.length > 0) {
          if (++guard > 20_000) throw new Error(`event cascade did not settle (last: ${JSON.stringify(this.queue[0]).slice(0, 200)})`);
          if (this.queue.length === 0) {
            const next = this.afterCascade.shift()!();
            if (next) this.queue.push(next);
            continue;
          }
          this.stepOne(this.queue.shift()!);
        }
        this.onSettled?.(this.state);
      } finally {
        this.draining = false;
      }
    }
    return this.effects.slice(from);
  }

  private stepOne(event: MachineEvent): void {
    const prev = this.freezeInput ? deepFreeze(this.state) : this.state;
    const result = step(prev, event, this.now);
    this.state = result.state;
    // From here on the machine knows the whole group is gone.
    const p = 'workerId' in event ? this.procs.get(event.workerId) : undefined;
    if (p && ((event.type === 'worker.exited' && !event.lingering) || event.type === 'worker.gone' || event.type === 'worker.spawnFailed')) p.gone = true;
    for (const e of result.effects) this.effects.push(e);
    this.onStep?.(prev, event, result);
    for (const e of result.effects) this.perform(e);
  }

  private perform(e: Effect): void {
    switch (e.type) {
      case 'spawn':
        return this.spawn(e);
      case 'signal':
        return this.signal(e.workerId, e.signal);
      case 'timer.set':
        if (this.timers.has(e.key)) this.violations.push(`timer.set for armed key ${e.key}`);
        this.timers.set(e.key, { due: this.now + e.ms, seq: this.seq++ });
        return;
      case 'timer.clear':
        this.timers.delete(e.key);
        return;
      case 'config.load': {
        this.loads.push(e.reloadId);
        const answer = this.loader(e.reloadId);
        if (answer === 'manual') return;
        this.answerLoad(e.reloadId, answer);
        return;
      }
      case 'reply.accepted':
      case 'reply.refused':
      case 'reply.stopping':
      case 'reply.ok':
        this.replies.push(e);
        return;
      case 'reload.progress':
        this.progress.push({ reloadId: e.reloadId, event: e.event });
        return;
      case 'reload.finished':
        if (this.finished.has(e.reloadId)) this.violations.push(`reload ${e.reloadId} finished twice`);
        this.finished.set(e.reloadId, e.report);
        this.finishedOrder.push(e.reloadId);
        return;
      case 'exit':
        if (this.exitCode !== null) this.violations.push('exit twice');
        this.exitCode = e.code;
        return;
      default:
        return;
    }
  }

  answerLoad(reloadId: number, answer: Exclude<LoadAnswer, 'manual'>): Effect[] {
    if ('fail' in answer) {
      return this.send({ type: 'config.failed', reloadId, message: answer.fail, issues: answer.issues ?? [] });
    }
    return this.send({ type: 'config.loaded', reloadId, config: structuredClone(answer.config), specs: structuredClone(answer.specs) });
  }

  private spawn(e: Spawn): void {
    if (e.workerId <= this.lastWorkerId) this.violations.push(`worker id ${e.workerId} not increasing`);
    if (this.procs.has(e.workerId)) this.violations.push(`worker id ${e.workerId} reused`);
    this.lastWorkerId = Math.max(this.lastWorkerId, e.workerId);
    const behavior: Behavior = { ...DEFAULT_BEHAVIOR, ...this.behave(e) };
    const p: FakeProcess = {
      workerId: e.workerId,
      pid: this.nextPid++,
      group: e.group,
      slot: e.slot,
      generation: e.generation,
      spec: e.spec,
      alive: behavior.spawnFails === null,
      lingering: false,
      gone: false,
      stragglerStopping: false,
      signals: [],
      behavior,
    };
    this.procs.set(e.workerId, p);
    if (behavior.spawnFails !== null) {
      // The machine learns of it with the next event; until then it may signal the
      // worker, which the runtime must tolerate (nothing to signal).
      this.queue.push({ type: 'worker.spawnFailed', workerId: e.workerId, error: behavior.spawnFails });
      return;
    }
    if (behavior.spawnFailsLater !== null) {
      const error = behavior.spawnFailsLater;
      p.alive = false;
      this.afterCascade.push(() => ({ type: 'worker.spawnFailed', workerId: e.workerId, error }));
      return;
    }
    this.queue.push({ type: 'worker.spawned', workerId: e.workerId, pid: p.pid });
    if (behavior.execFails !== null) {
      const code = behavior.execFails;
      this.afterCascade.push(() => (p.alive ? this.leaderExit(p, code, null, false) : null));
      return;
    }
    if (this.autoReady) this.queue.push({ type: 'worker.ready', workerId: e.workerId });
    if (behavior.readyAfterMs !== null) {
      this.schedule(behavior.readyAfterMs, () => {
        if (p.alive) this.send({ type: 'worker.ready', workerId: p.workerId });
      });
    }
    if (behavior.crashAfterMs !== null) {
      this.schedule(behavior.crashAfterMs, () => {
        if (p.alive) this.exit(p.workerId, behavior.crashCode, null);
      });
    }
  }

  private signal(workerId: number, sig: NodeJS.Signals): void {
    const p = this.procs.get(workerId);
    if (!p) {
      this.violations.push(`signal ${sig} to unknown worker ${workerId}`);
      return;
    }
    // Once told the group is gone, the machine must never signal it again: its id may be reused.
    if (p.gone) this.violations.push(`signal ${sig} to worker ${workerId} after its process group was reported gone`);
    p.signals.push(sig);
    if (p.lingering) {
      // The leader is gone; the signal reaches the straggler.
      if (sig === 'SIGKILL') this.goneLater(p, 0);
      else if (sig === p.spec.stopSignal && p.behavior.straggler === 'drains') this.goneLater(p, p.behavior.drainMs);
      return;
    }
    if (!p.alive) return;
    if (sig === 'SIGKILL') {
      // The whole group dies with it.
      this.exitLater(p, 0, null, 'SIGKILL', false);
      return;
    }
    if (sig === p.spec.stopSignal) p.stragglerStopping = true;
    if (sig === p.spec.stopSignal && !p.behavior.ignoreStop) this.exitLater(p, p.behavior.drainMs, 0, null);
  }

  private goneLater(p: FakeProcess, ms: number): void {
    const gone = (): MachineEvent | null => {
      if (!p.lingering) return null;
      p.lingering = false;
      return { type: 'worker.gone', workerId: p.workerId };
    };
    if (ms <= 0) {
      const e = gone();
      if (e) this.queue.push(e);
      return;
    }
    this.schedule(ms, () => {
      const e = gone();
      if (e) this.send(e);
    });
  }

  /** The leader exits; a straggler makes it `lingering`, else the group is gone with it. */
  private leaderExit(p: FakeProcess, code: number | null, signal: string | null, straggle = true): Extract<MachineEvent, { type: 'worker.exited' }> {
    p.alive = false;
    const lingering = straggle && p.behavior.straggler !== 'none';
    if (lingering) p.lingering = true;
    // A draining straggler that already got the stop signal leaves after its own drain.
    if (lingering && p.stragglerStopping && p.behavior.straggler === 'drains') this.goneLater(p, Math.max(1, p.behavior.drainMs));
    return { type: 'worker.exited', workerId: p.workerId, code, signal, stderrTail: p.behavior.stderr, ...(lingering ? { lingering } : {}) };
  }

  private exitLater(p: FakeProcess, ms: number, code: number | null, signal: string | null, straggle = true): void {
    if (ms <= 0) {
      this.queue.push(this.leaderExit(p, code, signal, straggle));
      return;
    }
    this.schedule(ms, () => {
      if (p.alive) this.exit(p.workerId, code, signal);
    });
  }

  private schedule(ms: number, run: () => void): void {
    this.scheduled.push({ due: this.now + ms, seq: this.seq++, run });
  }

  /** Advance the clock, firing due timers and scheduled process events in due order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (let guard = 0; ; guard++) {
      if (guard > 100_000) throw new Error('advance: timers keep firing');
      let best: { due: number; seq: number; fire: () => void } | null = null;
      for (const [key, t] of this.timers) {
        if (t.due <= end && (best === null || t.due < best.due || (t.due === best.due && t.seq < best.seq))) {
          best = { due: t.due, seq: t.seq, fire: () => { this.timers.delete(key); this.send({ type: 'timer', key }); } };
        }
      }
      for (const s of this.scheduled) {
        if (s.due <= end && (best === null || s.due < best.due || (s.due === best.due && s.seq < best.seq))) {
          best = { due: s.due, seq: s.seq, fire: () => { this.scheduled = this.scheduled.filter((x) => x !== s); s.run(); } };
        }
      }
      if (!best) break;
      this.now = Math.max(this.now, best.due);
      best.fire();
    }
    this.now = end;
  }

  // ---------------------------------------------------------------- process actions

  ready(workerId: number): Effect[] {
    return this.send({ type: 'worker.ready', workerId });
  }

  /** Make the workers starting now (of a group) ready: one round, not the workers that round starts. */
  readyAll(group?: string): void {
    const starting = this.state.workers.filter((x) => x.phase === 'starting' && (group === undefined || x.group === group));
    for (const x of starting) {
      const now = this.state.workers.find((y) => y.id === x.id);
      if (now?.phase === 'starting' && this.procs.get(x.id)?.alive) this.ready(x.id);
    }
  }

  /** Make starting workers ready until none is left starting. */
  readyUntilSettled(group?: string): void {
    for (let guard = 0; guard < 1000; guard++) {
      const before = this.effects.length;
      this.readyAll(group);
      if (this.effects.length === before) return;
    }
    throw new Error('readyUntilSettled: workers keep starting');
  }

  /** The process exits on its own (code 1 by default). */
  exit(workerId: number, code: number | null = 1, signal: string | null = null, stderr?: string[]): Effect[] {
    const p = this.procs.get(workerId);
    if (!p || !p.alive) throw new Error(`worker ${workerId} is not running`);
    const event = this.leaderExit(p, code, signal);
    return this.send(stderr ? { ...event, stderrTail: stderr } : event);
  }

  /** The straggler of a worker whose leader exited goes away on its own. */
  groupGone(workerId: number): Effect[] {
    const p = this.procs.get(workerId);
    if (!p || !p.lingering) throw new Error(`worker ${workerId} has no lingering process group`);
    p.lingering = false;
    return this.send({ type: 'worker.gone', workerId });
  }

  crash(workerId: number, stderr?: string[]): Effect[] {
    return this.exit(workerId, 1, null, stderr);
  }

  reload(groups: string[] | null = null, requestId = this.nextRequest()): Effect[] {
    return this.send({ type: 'reload.request', requestId, groups, trigger: 'rpc' });
  }

  restart(group: string, requestId = this.nextRequest()): Effect[] {
    return this.send({ type: 'restart.request', requestId, group });
  }

  stop(force = false, requestId: number | null = this.nextRequest()): Effect[] {
    return this.send({ type: 'stop.request', requestId, force });
  }

  private requestSeq = 100;
  nextRequest(): number {
    return this.requestSeq++;
  }

  // ---------------------------------------------------------------- queries

  workers(group?: string): WorkerRecord[] {
    return this.state.workers.filter((w) => group === undefined || w.group === group);
  }

  live(group?: string): WorkerRecord[] {
    return this.workers(group).filter((w) => w.phase === 'starting' || w.phase === 'ready');
  }

  readyWorkers(group?: string): WorkerRecord[] {
    return this.workers(group).filter((w) => w.phase === 'ready');
  }

  pids(group?: string): number[] {
    return this.live(group)
      .map((w) => w.pid!)
      .sort((a, b) => a - b);
  }

  proc(workerId: number): FakeProcess {
    const p = this.procs.get(workerId);
    if (!p) throw new Error(`no process for worker ${workerId}`);
    return p;
  }

  effectsOf<T extends Effect['type']>(type: T, from = 0): Extract<Effect, { type: T }>[] {
    return this.effects.slice(from).filter((e): e is Extract<Effect, { type: T }> => e.type === type);
  }

  accepted(requestId: number): Extract<Effect, { type: 'reply.accepted' }> | undefined {
    return this.replies.find((r): r is Extract<Effect, { type: 'reply.accepted' }> => r.type === 'reply.accepted' && r.requestId === requestId);
  }

  replyTo(requestId: number): Effect | undefined {
    return this.replies.find((r) => 'requestId' in r && r.requestId === requestId);
  }

  /** Keys of the timers armed now (harness view). */
  armed(): string[] {
    return [...this.timers.keys()].sort();
  }
}

/** A world whose groups all start and become ready. */
export function runningWorld(groups: GroupConfig[], opts: WorldOptions = {}): World {
  const w = new World(makeConfig(groups), opts);
  w.readyUntilSettled();
  if (w.state.daemon !== 'running') throw new Error(`expected running, got ${w.state.daemon}`);
  return w;
}

/** Freezes `value` and everything reachable from it; returns it. */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  return value;
}
