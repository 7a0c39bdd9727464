/**
 * Property tests: random sequences of worker behavior, clock jumps, reload and
 * restart requests and config answers, with the contract's invariants checked
 * after EVERY machine step.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, it, afterAll, beforeAll, expect } from 'vitest';
import fc from 'fast-check';
import type { GroupConfig, ListenEntry, RollingPolicy } from '../../src/config/types.js';
import { checkRollIndex, groupWorkers, isLive, readyCount, rollIndexChecks } from '../../src/supervisor/policy.js';
import type { MachineEvent, MachineState, StepResult, WorkerRecord } from '../../src/supervisor/types.js';
import { buildStatus } from '../../src/supervisor/status.js';
import { planRollback } from '../../src/supervisor/history.js';
import { World, groupConfig, makeConfig, type Behavior } from './harness.js';
import { hasTimer, timerDue, timerKeys } from '../../src/supervisor/timers.js';

type Fault = 'none' | 'spawnFails' | 'crashSoon' | 'readySoon' | 'straggler';
const faultsArb = fc.array(fc.constantFrom<Fault>('none', 'none', 'none', 'none', 'spawnFails', 'crashSoon', 'readySoon', 'readySoon', 'straggler'), {
  maxLength: 30,
});

const NAMES = ['a', 'b', 'c'] as const;
/** SUPERVISOR_PROP_SCALE=10 runs ten times as many cases (bug hunting). */
const SCALE = Number(process.env.SUPERVISOR_PROP_SCALE ?? 1);
/** SUPERVISOR_PROP_RUNS=10000 runs that many sequences in all, shared 4:2:3 like the defaults (200:100:150). */
const RUNS = Number(process.env.SUPERVISOR_PROP_RUNS ?? 0);
const runs = (base: number): number => (RUNS > 0 ? Math.max(1, Math.round((RUNS * base) / 450)) : base * SCALE);
const budget = (base: number): number => 60_000 * Math.max(1, runs(base) / base);
const STATS = process.env.SUPERVISOR_PROP_STATS === '1';
/** Replay a failure: SUPERVISOR_PROP_SEED=<seed> SUPERVISOR_PROP_PATH=<path> (from fast-check's report). */
const replay = (): { seed?: number; path?: string; endOnFailure?: boolean } =>
  process.env.SUPERVISOR_PROP_SEED
    ? { seed: Number(process.env.SUPERVISOR_PROP_SEED), path: process.env.SUPERVISOR_PROP_PATH, endOnFailure: true }
    : process.env.SUPERVISOR_PROP_NOSHRINK === '1'
      ? { endOnFailure: true } // report the first failure as found (shrinking long sequences can take many minutes)
      : {};
const stats: Record<string, number> = {};
const count = (k: string): void => {
  stats[k] = (stats[k] ?? 0) + 1;
};
/** The one-line summary printed after the file: a generator that stops producing a situation shows a 0. */
const totals = { sequences: 0, events: 0, longest: 0 };
const SITUATIONS = [
  'crash while draining',
  'new worker crashed after ready in its roll',
  'reload during stop',
  'stale timer',
  'timer fired late',
  'ready after deadline',
  'start failure',
  'config refused',
  'bake started',
  'rollback started',
  'listen changed',
  'worker status',
  'spawn failed after the cascade',
  'exec failed before ready',
  'config answer superseded',
] as const;
/** Counts the situations of SITUATIONS one machine step produces. */
function situations(prev: MachineState, event: MachineEvent, res: StepResult, now: number): void {
  totals.events++;
  const before = 'workerId' in event ? prev.workers.find((x) => x.id === event.workerId) : undefined;
  if (event.type === 'worker.exited' && before) {
    const crashed = (event.code !== null && event.code !== 0) || (event.signal === 'SIGKILL' && !before.killed);
    if (crashed && before.phase === 'stopping') count('crash while draining');
    const rolling = prev.groups.find((g) => g.name === before.group)?.rollTarget === before.generation;
    if (before.phase === 'ready' && before.startedBy !== null && before.startedBy === prev.reload?.id && rolling) {
      count('new worker crashed after ready in its roll');
    }
  }
  if (event.type === 'reload.request' && prev.daemon === 'stopping') count('reload during stop');
  if (event.type === 'timer' && !hasTimer(prev.timers, event.key)) count('stale timer');
  if (event.type === 'timer' && hasTimer(prev.timers, event.key) && timerDue(prev.timers, event.key)! < now) count('timer fired late');
  if (event.type === 'worker.ready' && before && (before.phase !== 'starting' || before.failed)) count('ready after deadline');
  if (event.type === 'config.failed') count('config refused');
  if (event.type === 'worker.status') count('worker status');
  if ((event.type === 'config.loaded' || event.type === 'config.failed') && !(prev.reload?.id === event.reloadId && prev.reload.phase === 'loading')) {
    count('config answer superseded');
  }
  if (event.type === 'config.loaded' && prev.reload?.id === event.reloadId && prev.reload.phase === 'loading') {
    const listenNow = (name: string): string => {
      const g = prev.groups.find((x) => x.name === name);
      return JSON.stringify(g?.specs[String(g.generation)]?.listen ?? null);
    };
    if (Object.entries(event.specs).some(([name, spec]) => prev.groups.some((g) => g.name === name) && listenNow(name) !== JSON.stringify(spec.listen))) count('listen changed');
  }
  for (const e of res.effects) {
    if (e.type === 'exit' && e.code === 71) count('start failure');
    if (e.type === 'reload.progress' && e.event.step === 'bake.started') count('bake started');
    if (e.type === 'reload.progress' && e.event.step === 'rollback.started') count('rollback started');
  }
}

// ------------------------------------------------------------------ generators

/** Listen addresses the generated configs pick from (the runtime binds them; the machine only carries them in specs). */
const LISTEN_POOL: ListenEntry[] = [
  { address: { kind: 'tcp', host: '127.0.0.1', port: 8080, family: 4, key: 'tcp:127.0.0.1:8080' }, name: 'http', backlog: 511, mode: null, text: '127.0.0.1:8080' },
  { address: { kind: 'tcp', host: '127.0.0.1', port: 8081, family: 4, key: 'tcp:127.0.0.1:8081' }, name: 'http', backlog: 511, mode: null, text: '127.0.0.1:8081' },
  { address: { kind: 'unix', path: '/run/app/admin.sock', key: 'unix:/run/app/admin.sock' }, name: 'admin', backlog: 511, mode: null, text: 'unix:/run/app/admin.sock' },
];
/** A listen list from a bit mask over LISTEN_POOL (0: none). */
const listenOf = (mask: number): ListenEntry[] => LISTEN_POOL.filter((_, i) => mask & (1 << i)).map((l) => structuredClone(l));

const rollingArb = (count: number): fc.Arbitrary<RollingPolicy> =>
  fc
    .record({ surge: fc.integer({ min: 0, max: 2 }), unavailable: fc.integer({ min: 0, max: Math.min(2, count) }) })
    .filter((r) => r.surge + r.unavailable > 0);

const groupArb = (name: string, opts: { unavailable0?: boolean } = {}): fc.Arbitrary<GroupConfig> =>
  fc.integer({ min: 1, max: 3 }).chain((count) =>
    fc
      .record({
        rolling: opts.unavailable0 ? fc.record({ surge: fc.integer({ min: 1, max: 2 }), unavailable: fc.constant(0) }) : rollingArb(count),
        readyTimeoutMs: fc.constantFrom(1000, 5000),
        stopTimeoutMs: fc.constantFrom(500, 3000),
        reloadable: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        delayReady: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
        onFailure: fc.constantFrom('rollback' as const, 'rollback' as const, 'rollback' as const, 'keep' as const),
        bakeMs: fc.constantFrom(0, 0, 500, 2000),
        judged: fc.boolean(),
        watchMs: fc.constantFrom(0, 0, 1000, 3000),
        listen: fc.integer({ min: 0, max: 7 }),
      })
      .map((r) =>
        groupConfig({
          name,
          count,
          rolling: r.rolling,
          readyTimeoutMs: r.readyTimeoutMs,
          stopTimeoutMs: r.stopTimeoutMs,
          reloadable: r.reloadable,
          ready: r.delayReady ? { kind: 'delay', ms: 200 } : { kind: 'ipc' },
          restartDelayMs: 100,
          maxRestartDelayMs: 1000,
          onFailure: r.onFailure,
          // maxErrorRate needs a counter channel: not with a duration `ready` (DESIGN §10).
          verify: { bakeMs: r.bakeMs, maxErrorRate: r.judged && !r.delayReady ? 0.2 : null, minRequests: 5, watchMs: r.watchMs },
          listen: listenOf(r.listen),
        }),
      ),
  );

const initialArb = (opts: { unavailable0?: boolean } = {}) =>
  fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(...NAMES.slice(0, n).map((name) => groupArb(name, opts))));

type ConfigChange =
  | { kind: 'fail' }
  | { kind: 'same' }
  | { kind: 'count'; pick: number; count: number }
  | { kind: 'rolling'; pick: number; surge: number; unavailable: number }
  | { kind: 'reloadable'; pick: number }
  | { kind: 'env'; pick: number }
  | { kind: 'listen'; pick: number; mask: number }
  | { kind: 'add'; name: string }
  | { kind: 'remove'; pick: number };

const changeArb = (opts: { unavailable0?: boolean }): fc.Arbitrary<ConfigChange> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constant({ kind: 'fail' as const }) },
    { weight: 3, arbitrary: fc.constant({ kind: 'same' as const }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('count' as const), pick: fc.nat(), count: fc.integer({ min: 1, max: 5 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('rolling' as const),
        pick: fc.nat(),
        surge: fc.integer({ min: 0, max: 2 }),
        unavailable: opts.unavailable0 ? fc.constant(0) : fc.integer({ min: 0, max: 3 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('reloadable' as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('env' as const), pick: fc.nat() }) },
    // A group's listen addresses added, removed or moved (the loader binds the new ones before it answers).
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('listen' as const), pick: fc.nat(), mask: fc.integer({ min: 0, max: 7 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('add' as const), name: fc.constantFrom(...NAMES) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }) },
  );

type Action =
  | { t: 'ready'; pick: number }
  | { t: 'crash'; pick: number; code: number }
  | { t: 'advance'; ms: number }
  | { t: 'staleTimer'; pick: number }
  | { t: 'late'; ms: number; timersFirst: boolean }
  | { t: 'reload'; groups: string[] | null }
  | { t: 'restart'; name: string }
  | { t: 'answer'; change: ConfigChange }
  | { t: 'ignoreStop'; pick: number }
  | { t: 'straggle'; pick: number; kind: 'drains' | 'ignoresStop' }
  | { t: 'groupGone'; pick: number }
  | { t: 'stats'; pick: number; requests: number; errors: number }
  | { t: 'rollback'; force: boolean }
  | { t: 'status'; pick: number; text: string }
  | { t: 'spawnFault'; kind: 'failsLater' | 'execFails' }
  | { t: 'stopWhileLoading' }
  | { t: 'stop'; force: boolean };

const actionArb = (opts: { crashes: boolean; unavailable0?: boolean }): fc.Arbitrary<Action> => {
  const arbs: fc.WeightedArbitrary<Action>[] = [
    { weight: 6, arbitrary: fc.record({ t: fc.constant('ready' as const), pick: fc.nat() }) },
    {
      weight: 4,
      arbitrary: fc.record({
        t: fc.constant('advance' as const),
        ms: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 300, max: 6000 }), fc.constant(60_000)),
      }),
    },
    // A timer event whose timer was cleared, already fired or never armed (the runtime's watchdog
    // probe): the readyTimeout of a worker that is ready or gone, the kill timer of a worker that
    // exited, the backoff or bake timer of an old slot or reload.
    { weight: 2, arbitrary: fc.record({ t: fc.constant('staleTimer' as const), pick: fc.nat() }) },
    // The event loop was blocked: timers fire late, before or interleaved with the process events due meanwhile.
    {
      weight: 2,
      arbitrary: fc.record({ t: fc.constant('late' as const), ms: fc.integer({ min: 1, max: 8000 }), timersFirst: fc.boolean() }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant('reload' as const),
        groups: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.subarray([...NAMES], { minLength: 1 }) }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('restart' as const), name: fc.constantFrom(...NAMES) }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('answer' as const), change: changeArb(opts) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('ignoreStop' as const), pick: fc.nat() }) },
    // A process group that outlives its leader (DESIGN §13), and a straggler leaving on its own.
    { weight: 1, arbitrary: fc.record({ t: fc.constant('straggle' as const), pick: fc.nat(), kind: fc.constantFrom('drains' as const, 'ignoresStop' as const) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('groupGone' as const), pick: fc.nat() }) },
    // smoothctl rollback (on purpose): to the newest good older generation, when there is one.
    { weight: 1, arbitrary: fc.record({ t: fc.constant('rollback' as const), force: fc.boolean() }) },
    // Request counters (deploy verification): healthy traffic, or a burst of 5xx.
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant('stats' as const),
        pick: fc.nat(),
        requests: fc.integer({ min: 0, max: 20 }),
        errors: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 20 }) }),
      }),
    },
  ];
  // STATUS text from a worker. IPC and NOTIFY_SOCKET messages come from I/O, so never before
  // `worker.spawned` (queued in the same dispatch as the spawn); the coalescer
  // (src/runtime/status-coalescer.ts) may deliver the last text up to 250 ms late, after the
  // worker was told to stop or even after it exited: any worker ever spawned may send it.
  arbs.push({ weight: 3, arbitrary: fc.record({ t: fc.constant('status' as const), pick: fc.nat(), text: fc.constantFrom('serving', 'draining 3 connections', '') }) });
  // The next spawn fails after the fact. The runtime queues `worker.spawned` in the dispatch
  // that performs the spawn, and a process exit is an I/O callback, so an exit can never come
  // before `worker.spawned`; what can come late is `worker.spawnFailed` from the
  // queueMicrotask paths of Runtime.spawn (listen socket not held, NOTIFY_SOCKET not opened),
  // after the rest of the cascade (which may already signal the worker), or an exec failure
  // inside the child (126/127) as the first event after `worker.spawned`, before readiness.
  arbs.push({ weight: 2, arbitrary: fc.record({ t: fc.constant('spawnFault' as const), kind: fc.constantFrom('failsLater' as const, 'execFails' as const) }) });
  if (opts.crashes) {
    arbs.push({ weight: 2, arbitrary: fc.record({ t: fc.constant('crash' as const), pick: fc.nat(), code: fc.constantFrom(1, 2, 137) }) });
  }
  // A stop in the middle of the sequence stays rare: weight 1 against the others x5.
  const stop: fc.WeightedArbitrary<Action> = { weight: 1, arbitrary: fc.record({ t: fc.constant('stop' as const), force: fc.boolean() }) };
  // A stop while a config load is out: the load's answer comes later, for a reload the stop
  // aborted (Runtime.loadConfig's promise settles whatever happened meanwhile).
  const stopWhileLoading: fc.WeightedArbitrary<Action> = { weight: 1, arbitrary: fc.constant({ t: 'stopWhileLoading' as const }) };
  return fc.oneof(...arbs.map((a) => ({ ...a, weight: a.weight * 5 })), stop, stopWhileLoading);
};

// ------------------------------------------------------------------ the world under test

class Checked {
  readonly w: World;
  disk: GroupConfig[];
  release = 1;
  readonly pendingLoads: number[] = [];
  readonly acceptedIds = new Set<number>();
  /** Cumulative counters each fake worker has reported. */
  readonly counters = new Map<number, { requests: number; errors: number }>();
  /** Worker id -> the reload that retired it. */
  readonly retired = new Map<number, number>();
  readonly failures: string[] = [];
  readonly log: string[] = [];
  /** Listen sockets the runtime holds open (bound by the loader, closed once no spec refers to them). */
  readonly held = new Set<string>();
  /** Fault for the next spawn (a spawnFault action). */
  nextFault: 'failsLater' | 'execFails' | null = null;

  constructor(
    groups: GroupConfig[],
    drains: number[],
    private readonly strictReady: boolean,
    faults: Fault[] = [],
  ) {
    this.disk = structuredClone(groups);
    this.w = new World(makeConfig(groups), { start: false });
    let spawns = 0;
    this.w.behave = () => {
      const i = spawns++;
      const b: Partial<Behavior> = { drainMs: drains[i % drains.length]! };
      // Faults hit only the first spawns, so that quiescing can converge.
      const f = faults[i];
      if (this.nextFault === 'failsLater') b.spawnFailsLater = 'listen socket 127.0.0.1:8080 is not held';
      if (this.nextFault === 'execFails') b.execFails = 127;
      if (this.nextFault === 'failsLater') count('spawn failed after the cascade');
      if (this.nextFault === 'execFails') count('exec failed before ready');
      this.nextFault = null;
      if (f === 'spawnFails') b.spawnFails = 'spawn ENOENT';
      if (f === 'crashSoon') b.crashAfterMs = 50;
      if (f === 'readySoon') b.readyAfterMs = 30;
      if (f === 'straggler') b.straggler = i % 2 === 0 ? 'drains' : 'ignoresStop';
      return b;
    };
    this.w.loader = (id) => {
      this.pendingLoads.push(id);
      return 'manual';
    };
    // Every step gets a deep-frozen input: a step that changes the state it was given throws.
    this.w.freezeInput = true;
    this.w.onStep = (prev, event, result) => this.check(prev, event, result);
    for (const g of groups) for (const l of g.listen) this.held.add(l.address.key);
    this.w.onSettled = (s) => this.releaseSockets(s);
    this.w.send({ type: 'start' });
  }

  fail(msg: string): void {
    this.failures.push(msg);
  }

  /** What Runtime.releaseUnusedSockets does after each dispatch: close what no spec, pending change or reload refers to. */
  private releaseSockets(s: MachineState): void {
    const keep = new Set<string>();
    const add = (spec: { listen: ListenEntry[] } | null | undefined): void => {
      for (const l of spec?.listen ?? []) keep.add(l.address.key);
    };
    for (const g of s.groups) {
      for (const spec of Object.values(g.specs)) add(spec);
      add(g.pending);
    }
    for (const e of s.reload?.order ?? []) add(e.spec);
    for (const q of s.queuedRollbacks) for (const t of q.targets) add(t.spec);
    if (s.reload?.phase === 'loading') return;
    if (s.exited) keep.clear();
    for (const k of [...this.held]) if (!keep.has(k)) this.held.delete(k);
  }

  // ---------------------------------------------------------------- per-step invariants

  private check(prev: MachineState, event: MachineEvent, res: StepResult): void {
    const s = res.state;
    const fx = res.effects;
    const where = `after ${JSON.stringify(event).slice(0, 160)}`;
    situations(prev, event, res, this.w.now);
    if (event.type === 'worker.exited' && event.lingering) count('leader exited, group lingers');
    if (event.type === 'worker.gone') count('lingering group gone');

    for (const e of fx) {
      if (e.type === 'reply.accepted') this.acceptedIds.add(e.reloadId);
      if (e.type === 'reload.progress' && e.event.step === 'worker.stopping') this.retired.set(e.event.workerId!, e.reloadId);
    }

    const crash = event.type === 'worker.exited' && prev.workers.find((x) => x.id === event.workerId)?.phase !== 'stopping';

    // (l) A spawn only needs listen sockets smoothd still holds: else the runtime fails it
    // ("listen socket ... is not held") and the slot crash-loops on a socket it closed itself.
    for (const e of fx) {
      if (e.type !== 'spawn') continue;
      const missing = e.spec.listen.filter((l) => !this.held.has(l.address.key)).map((l) => l.text);
      if (missing.length > 0) this.fail(`(l) worker ${e.workerId} of ${e.group}@${e.generation} spawned with listen ${missing} already closed ${where}`);
    }
    // (l') A loaded listen change is never dropped: the group rolls to it, or it waits as the group's pending change.
    if (event.type === 'config.loaded' && prev.reload?.id === event.reloadId && prev.reload.phase === 'loading') {
      for (const g of s.groups) {
        const spec = event.specs[g.name];
        if (!spec || !event.config.groups.some((x) => x.name === g.name)) continue;
        const rolls = s.reload?.order.some((o) => o.name === g.name && o.state === 'pending');
        const current = g.specs[String(g.generation)];
        if (rolls || !current || JSON.stringify(current.listen) === JSON.stringify(spec.listen)) continue;
        if (JSON.stringify(g.pending?.listen) !== JSON.stringify(spec.listen)) {
          this.fail(`(l') ${g.name}: listen ${spec.listen.map((l) => l.text)} loaded but neither rolled nor pending ${where}`);
        }
      }
    }
    // (s) STATUS text changes the worker's statusText and nothing else: no effect, no roll decision.
    if (event.type === 'worker.status') {
      const expect = { ...prev, workers: prev.workers.map((x) => (x.id === event.workerId ? { ...x, statusText: event.text } : x)) };
      if (fx.length > 0 || !isDeepStrictEqual(s, expect)) this.fail(`(s) worker.status changed more than the status text: effects ${JSON.stringify(fx).slice(0, 200)} ${where}`);
    }
    // (o) A config answer for a reload that is no longer loading (the stop aborted it) changes nothing.
    if ((event.type === 'config.loaded' || event.type === 'config.failed') && !(prev.reload?.id === event.reloadId && prev.reload.phase === 'loading')) {
      if (fx.length > 0 || !isDeepStrictEqual(s, prev)) this.fail(`(o) superseded config answer for reload ${event.reloadId} changed the state ${where}`);
    }
    // (o') One config load at a time: the machine never asks for a load while another one's answer
    // could still move a reload, so answers can never arrive out of order for a live reload.
    for (const e of fx) {
      if (e.type !== 'config.load') continue;
      const live = this.pendingLoads.filter((id) => !this.w.finished.has(id));
      if (live.length > 0) this.fail(`(o') config.load for reload ${e.reloadId} while the load of reload ${live} is still out ${where}`);
    }

    // A worker whose leader exited while its group lingers is stopping, and SIGKILL is armed or sent.
    for (const x of s.workers) {
      if (!x.leaderExit) continue;
      if (x.phase !== 'stopping') this.fail(`worker ${x.id} with a lingering group is ${x.phase} ${where}`);
      if (!x.killed && !hasTimer(s.timers, `kill:${x.id}`)) this.fail(`worker ${x.id} lingers with no kill timer armed ${where}`);
    }
    if (event.type === 'worker.exited' && event.lingering && !s.workers.some((x) => x.id === event.workerId && x.leaderExit)) {
      if (prev.workers.some((x) => x.id === event.workerId)) this.fail(`lingering group of worker ${event.workerId} forgotten ${where}`);
    }

    // At most one group rolls, only while a reload runs.
    const rolling = s.groups.filter((g) => g.rollTarget !== null);
    if (rolling.length > 1) this.fail(`two groups roll at once ${where}`);
    if (rolling.length > 0 && s.reload === null) this.fail(`a group rolls without a reload ${where}`);
    if (s.reload !== null && s.daemon !== 'reloading') this.fail(`reload ${s.reload.id} runs while daemon is ${s.daemon} ${where}`);
    if (s.queued !== null && s.reload === null && s.daemon !== 'starting') this.fail(`queued reload with none running ${where}`);

    for (const g of s.groups) {
      if (g.rollTarget === null) continue;
      const { count, rolling: pol } = g.config;
      const liveNow = groupWorkers(s.workers, g.name).filter(isLive);
      const liveBefore = groupWorkers(prev.workers, g.name).filter(isLive);
      // (a) starting + ready within count + surge while the group rolls. A lowered count can
      // leave more old workers than that when the roll begins: then the roll only shrinks it.
      if (liveNow.length > count + pol.surge) {
        const spawned = fx.some((e) => e.type === 'spawn' && e.group === g.name);
        if (spawned || liveNow.length > liveBefore.length) {
          this.fail(`(a) group ${g.name}: ${liveNow.length} live > count ${count} + surge ${pol.surge} ${where}`);
        }
      }
      // (b') unavailable 0, no crash in this step: ready never drops below count during the roll.
      if (pol.unavailable === 0 && !crash) {
        const rb = readyCount(liveBefore);
        const rn = readyCount(liveNow);
        if (rn < Math.min(rb, count)) this.fail(`(b') group ${g.name}: ready ${rb} -> ${rn} < count ${count} ${where}`);
      }
    }

    // (f) During a bake the canary is the only new worker of its group (DESIGN §10).
    for (const e of s.reload?.order ?? []) {
      if (e.state !== 'verifying') continue;
      count('bake in progress');
      const fresh = s.workers.filter((x) => x.group === e.name && x.generation === e.generation && x.startedBy === s.reload!.id && isLive(x));
      if (fresh.length > 1) this.fail(`(f) ${e.name} bakes with ${fresh.length} new workers ${fresh.map((x) => x.id)} ${where}`);
    }
    if (s.reload?.rollback) count('rolling back');

    // (b) smoothd never stops a ready worker of a rolling group below count - unavailable.
    for (const e of fx) {
      if (e.type !== 'signal' || e.signal === 'SIGKILL') continue;
      const before = prev.workers.find((x) => x.id === e.workerId);
      const after = s.workers.find((x) => x.id === e.workerId);
      if (!before && !after && !fx.some((f) => f.type === 'spawn' && f.workerId === e.workerId)) {
        this.fail(`(e) signal ${e.signal} to unknown worker ${e.workerId} ${where}`);
      }
      if (!before || before.phase !== 'ready' || !after) continue;
      if (after.stopReason !== 'replaced' && after.stopReason !== 'count lowered') continue;
      const g = s.groups.find((x) => x.name === after.group)!;
      const floor = g.config.count - g.config.rolling.unavailable;
      const ready = readyCount(groupWorkers(s.workers, g.name));
      if (ready < floor) this.fail(`(b) retired ready worker ${e.workerId} of ${g.name}: ready ${ready} < ${floor} ${where}`);
    }
    if (this.strictReady) {
      for (const g of s.groups) {
        if (g.rollTarget === null || g.config.rolling.unavailable !== 0) continue;
        const rb = readyCount(groupWorkers(prev.workers, g.name));
        const rn = readyCount(groupWorkers(s.workers, g.name));
        if (rn < Math.min(rb, g.config.count)) this.fail(`(b'') ${g.name} ready dropped ${rb} -> ${rn} ${where}`);
      }
    }

    for (const e of fx) {
      if (e.type === 'exit' && s.workers.length > 0) this.fail(`exit with ${s.workers.length} workers left ${where}`);
      if (e.type === 'reload.finished') {
        const r = e.report;
        if (r.state === 'succeeded') {
          if (r.readyAt === null || r.finishedAt === null) this.fail(`(c) succeeded reload ${r.id} without readyAt/finishedAt`);
          for (const gr of r.groups) {
            if (gr.state !== 'rolled') continue;
            // (A queued rollback may start in the same step: its own new workers are not old ones left behind.)
            const old = groupWorkers(s.workers, gr.name).filter((x) => isLive(x) && x.generation !== gr.generation && !(x.startedBy !== null && x.startedBy > r.id));
            if (old.length > 0) this.fail(`(c) reload ${r.id} succeeded with old workers ${old.map((x) => x.id)} live in ${gr.name} ${where}`);
          }
          const draining = s.workers.filter((x) => this.retired.get(x.id) === r.id);
          if (draining.length > 0) this.fail(`(c) reload ${r.id} succeeded before its old workers ${draining.map((x) => x.id)} exited`);
          if (r.readyAt! > r.finishedAt! || r.startedAt! > r.readyAt!) this.fail(`(c) reload ${r.id}: startedAt <= readyAt <= finishedAt broken`);
        }
        if (r.state === 'failed' && !r.error) this.fail(`(c) failed reload ${r.id} without a reason`);
        // (g) A rolled-back group serves one generation again: the one it ran before.
        if (r.rollback) count(`rollback ${r.rollback.state}`);
        if (r.state === 'failed' && r.rollback?.state === 'succeeded') {
          for (const gr of r.groups) {
            if (gr.rollback?.state !== 'succeeded' || gr.rollback.generation === null) continue;
            const mixed = groupWorkers(s.workers, gr.name).filter((x) => isLive(x) && x.generation !== gr.rollback!.generation && !(x.startedBy !== null && x.startedBy > r.id));
            if (mixed.length > 0) this.fail(`(g) ${gr.name} rolled back to ${gr.rollback.generation} but ${mixed.map((x) => `${x.id}@${x.generation}`)} still serve ${where}`);
            const g = s.groups.find((x) => x.name === gr.name);
            if (g && g.generation !== gr.rollback.generation && s.reload === null) this.fail(`(g) ${gr.name} rolled back to ${gr.rollback.generation} but shows generation ${g.generation} ${where}`);
          }
        }
        if (r.state === 'succeeded' && r.rollback !== null) this.fail(`(c) succeeded reload ${r.id} reports a rollback`);
        if (r.state === 'failed' && r.failure) {
          const gen = r.groups.find((x) => x.name === r.failure!.group)?.generation;
          // A rollback on purpose targets an existing generation that some slots may still run (mixed
          // generations after an onFailure: keep): a crash restart of such a slot (startedBy null) runs
          // the slot's own generation, as in steady state; it is not a new worker of this rollback.
          const own = (x: WorkerRecord): boolean => r.trigger === 'rollback' && x.startedBy === null;
          const left = s.workers.filter((x) => x.group === r.failure!.group && x.generation === gen && x.phase === 'starting' && !own(x) && !(x.startedBy !== null && x.startedBy > r.id));
          if (left.length > 0) this.fail(`(c) failed reload ${r.id} left new workers starting: ${left.map((x) => x.id)}`);
        }
        if (r.state === 'failed' && r.failure && !r.failure.reason) this.fail(`(c) failure without a reason`);
      }
    }
  }

  /** Checks between actions: the harness's timers mirror the machine's; the status document builds. */
  checkQuiet(): void {
    const st = buildStatus(this.w.state, { pid: 1, version: 't', now: this.w.now, rss: () => null, bound: () => null });
    if (st.version !== 1 || !st.reload) this.fail('status document without version or reload');
    for (const g of st.groups) {
      for (const x of g.workers) {
        if (!['starting', 'ready', 'stopping', 'backoff'].includes(x.state)) this.fail(`status: worker state ${x.state}`);
      }
      // A backoff pseudo-worker only stands for an empty slot.
      for (const b of g.workers.filter((x) => x.state === 'backoff')) {
        if (g.workers.some((x) => x.slot === b.slot && (x.state === 'starting' || x.state === 'ready'))) {
          this.fail(`status: slot ${g.name}/${b.slot} in backoff while a worker serves it`);
        }
      }
    }
    JSON.stringify(st);
    const mine = this.w.armed();
    const theirs = timerKeys(this.w.state.timers).sort();
    if (JSON.stringify(mine) !== JSON.stringify(theirs)) this.fail(`(e) timers differ: harness ${mine} machine ${theirs}`);
    for (const v of this.w.violations.splice(0)) this.fail(`(e) ${v}`);
  }

  // ---------------------------------------------------------------- actions

  apply(a: Action): void {
    const w = this.w;
    this.log.push(JSON.stringify(a));
    switch (a.t) {
      case 'ready': {
        const starting = w.state.workers.filter((x) => x.phase === 'starting' && w.procs.get(x.id)?.alive);
        const x = starting[a.pick % Math.max(1, starting.length)];
        if (x) w.ready(x.id);
        break;
      }
      case 'crash': {
        const alive = [...w.procs.values()].filter((p) => p.alive);
        const p = alive[a.pick % Math.max(1, alive.length)];
        if (p) w.exit(p.workerId, a.code === 137 ? null : a.code, a.code === 137 ? 'SIGKILL' : null, [`crash ${a.code}`]);
        break;
      }
      case 'advance':
        w.advance(a.ms);
        break;
      case 'staleTimer': {
        const armedNow = new Set(w.timers.keys());
        const keys = [...new Set(w.effectsOf('timer.set').map((e) => e.key))].filter((k) => !armedNow.has(k));
        keys.push('probe:watchdog');
        const key = keys[a.pick % keys.length]!;
        count(`stale timer: ${key.split(':')[0]}`);
        w.send({ type: 'timer', key });
        break;
      }
      case 'late': {
        // Nothing fires while the loop is blocked; then the overdue timers run (in due order, each
        // one skipped if an earlier one's step cleared or re-armed it), then the process events.
        const end = w.now + a.ms;
        const overdue = [...w.timers].filter(([, t]) => t.due <= end).sort(([, x], [, y]) => x.due - y.due || x.seq - y.seq);
        w.now = end;
        if (a.timersFirst) {
          for (const [key, t] of overdue) {
            if (w.timers.get(key)?.seq !== t.seq) continue;
            w.timers.delete(key);
            w.send({ type: 'timer', key });
          }
        }
        w.advance(0);
        break;
      }
      case 'reload':
        w.reload(a.groups);
        break;
      case 'restart':
        w.restart(a.name);
        break;
      case 'stop':
        w.stop(a.force);
        break;
      case 'straggle': {
        const alive = [...w.procs.values()].filter((p) => p.alive);
        const p = alive[a.pick % Math.max(1, alive.length)];
        if (p) p.behavior.straggler = a.kind;
        break;
      }
      case 'groupGone': {
        const lingering = [...w.procs.values()].filter((p) => p.lingering);
        const p = lingering[a.pick % Math.max(1, lingering.length)];
        if (p) w.groupGone(p.workerId);
        break;
      }
      case 'stats': {
        const alive = w.state.workers.filter((x) => x.phase !== 'stopping' && w.procs.get(x.id)?.alive);
        const x = alive[a.pick % Math.max(1, alive.length)];
        if (!x) break;
        const c = this.counters.get(x.id) ?? { requests: 0, errors: 0 };
        const errors = Math.min(a.errors, a.requests);
        const next = { requests: c.requests + a.requests, errors: c.errors + errors };
        this.counters.set(x.id, next);
        count(errors * 5 > a.requests ? 'stats: error burst' : 'stats: healthy');
        w.send({ type: 'worker.stats', workerId: x.id, ...next });
        break;
      }
      case 'rollback': {
        const plan = planRollback(w.state.groups, { groups: null, to: null, force: a.force });
        if (typeof plan === 'string') break;
        count('rollback on purpose');
        // Runtime.rollback binds the targets' listen addresses before it sends the request.
        for (const t of plan) for (const l of t.spec.listen) this.held.add(l.address.key);
        const requestId = w.nextRequest();
        w.send({ type: 'rollback.request', requestId, targets: plan });
        break;
      }
      case 'status': {
        const all = [...w.procs.values()];
        const p = all[a.pick % Math.max(1, all.length)];
        if (p) w.send({ type: 'worker.status', workerId: p.workerId, text: a.text });
        break;
      }
      case 'spawnFault':
        this.nextFault = a.kind;
        break;
      case 'stopWhileLoading':
        if (w.state.reload?.phase === 'loading') w.stop(false);
        break;
      case 'ignoreStop': {
        const alive = [...w.procs.values()].filter((p) => p.alive);
        const p = alive[a.pick % Math.max(1, alive.length)];
        if (p) p.behavior.ignoreStop = true;
        break;
      }
      case 'answer': {
        const id = this.pendingLoads.shift();
        if (id === undefined) break;
        this.answer(id, a.change);
        break;
      }
    }
    this.checkQuiet();
  }

  /** The loader's answer: a refusal (a bind failure is one too), or the config read with its new listen addresses bound. */
  answer(id: number, change: ConfigChange): void {
    if (change.kind === 'fail') {
      this.w.answerLoad(id, { fail: 'bad config', issues: [{ path: 'groups', message: 'nope' }] });
      return;
    }
    this.changeDisk(change);
    for (const g of this.disk) for (const l of g.listen) this.held.add(l.address.key);
    // A listen change alone keeps the release folder (an in-place config edit): then only listen differs.
    if (change.kind !== 'listen') this.release++;
    this.w.answerLoad(id, makeConfig(this.disk, this.release));
  }

  private changeDisk(c: ConfigChange): void {
    const d = this.disk;
    const pick = (n: number) => d[n % d.length]!;
    switch (c.kind) {
      case 'count': {
        const g = pick(c.pick);
        g.count = c.count;
        g.rolling.unavailable = Math.min(g.rolling.unavailable, g.count);
        if (g.rolling.surge + g.rolling.unavailable === 0) g.rolling.surge = 1;
        break;
      }
      case 'rolling': {
        const g = pick(c.pick);
        g.rolling = { surge: c.surge, unavailable: Math.min(c.unavailable, g.count) };
        if (g.rolling.surge + g.rolling.unavailable === 0) g.rolling.surge = 1;
        break;
      }
      case 'reloadable':
        pick(c.pick).reloadable = !pick(c.pick).reloadable;
        break;
      case 'env':
        pick(c.pick).env = { REV: String(this.release) };
        break;
      case 'listen':
        pick(c.pick).listen = listenOf(c.mask);
        break;
      case 'add':
        if (!d.some((g) => g.name === c.name)) d.push(groupConfig({ name: c.name, restartDelayMs: 100, maxRestartDelayMs: 1000, readyTimeoutMs: 2000, stopTimeoutMs: 500 }));
        break;
      case 'remove':
        if (d.length > 1) d.splice(c.pick % d.length, 1);
        break;
      case 'same':
      case 'fail':
        break;
    }
  }

  // ---------------------------------------------------------------- endings

  /** Answer every config load, make every worker ready, let time pass: every reload must end. */
  quiesce(): void {
    const w = this.w;
    w.autoReady = true;
    for (let round = 0; round < 200; round++) {
      while (this.pendingLoads.length > 0) {
        this.answer(this.pendingLoads.shift()!, { kind: 'same' });
        this.checkQuiet();
      }
      w.readyAll();
      this.checkQuiet();
      const busy =
        w.state.reload !== null ||
        w.state.queued !== null ||
        w.state.workers.some((x) => x.phase !== 'ready') ||
        w.state.groups.some((g) => g.slots.some((s) => s.backoffUntil !== null));
      if (!busy && w.state.daemon !== 'starting') break;
      w.advance(1000);
      this.checkQuiet();
    }
    const s = w.state;
    if (s.daemon === 'stopping') return; // the start failed: exit 71 is checked by stop()
    if (s.reload !== null || s.queued !== null) this.fail(`(c) reload still running after quiescing: ${JSON.stringify(s.reload ?? s.queued)}`);
    for (const id of this.acceptedIds) if (!w.finished.has(id)) this.fail(`(c) accepted reload ${id} never finished`);
    // Steady state: every slot of every group has a ready worker.
    for (const g of s.groups) {
      for (let i = 0; i < g.config.count; i++) {
        if (!s.workers.some((x) => x.group === g.name && x.slot === i && x.phase === 'ready')) {
          this.fail(`steady state: ${g.name} slot ${i} has no ready worker`);
        }
      }
    }
    if (s.daemon !== 'running') this.fail(`daemon ${s.daemon} after quiescing`);
  }

  stop(force: boolean): void {
    const w = this.w;
    w.autoReady = false;
    w.stop(false);
    this.checkQuiet();
    if (force) {
      w.stop(true);
      this.checkQuiet();
    }
    for (let i = 0; i < 100 && w.exitCode === null; i++) {
      w.advance(1000);
      this.checkQuiet();
    }
    // (d) exit, no worker, no timer.
    // The answers of loads the stop aborted still come (the loader's promise settles): they change nothing.
    while (this.pendingLoads.length > 0) {
      this.answer(this.pendingLoads.shift()!, { kind: 'listen', pick: 0, mask: 7 });
      this.checkQuiet();
    }
    if (w.exitCode === null) this.fail(`(d) no exit after stop; workers ${JSON.stringify(w.state.workers.map((x) => [x.id, x.phase]))}`);
    else if (w.exitCode !== 0 && !(w.exitCode === 71 && w.state.startFailure)) this.fail(`(d) exit code ${w.exitCode}`);
    if (w.state.workers.length > 0) this.fail('(d) workers left after exit');
    if (w.armed().length > 0 || timerKeys(w.state.timers).length > 0) this.fail(`(d) timers left: ${w.armed()}`);
    if ([...w.procs.values()].some((p) => p.alive || p.lingering)) this.fail('(d) a process outlived smoothd');
    for (const id of this.acceptedIds) if (!w.finished.has(id)) this.fail(`(c) accepted reload ${id} never got a report`);
  }
}

function run(
  groups: GroupConfig[],
  drains: number[],
  actions: Action[],
  quiesce: boolean,
  force: boolean,
  strictReady = false,
  faults: Fault[] = [],
): void {
  const c = new Checked(groups, drains, strictReady, faults);
  const events0 = totals.events;
  try {
    // Get past the start most of the time: a start failure ends the run early (exit 71).
    for (const a of actions) {
      c.apply(a);
      if (c.failures.length > 0) break;
    }
    if (c.failures.length === 0 && quiesce) c.quiesce();
    if (c.failures.length === 0) c.stop(force);
  } catch (err) {
    c.fail(`threw: ${(err as Error).stack}`);
  }
  totals.sequences++;
  totals.longest = Math.max(totals.longest, totals.events - events0);
  for (const r of c.w.finished.values()) count(`reload ${r.state}`);
  count(`exit ${c.w.exitCode}`);
  count(`max workers ${Math.min(10, c.w.effectsOf('spawn').length)}`);
  if (c.failures.length > 0) {
    throw new Error(`${c.failures.slice(0, 5).join('\n')}\nactions:\n${c.log.join('\n')}`);
  }
}

/** Start and make the first workers ready before the random part, so most runs reach `running`. */
const bootActions: Action[] = [...Array(12)].map(() => ({ t: 'ready' as const, pick: 0 }));

describe('supervisor properties', () => {
  // Every answer of the rolling policy's index is compared with a scan inside the step that asks (a difference throws).
  beforeAll(() => checkRollIndex(true));
  afterAll(() => {
    checkRollIndex(false);
    expect(rollIndexChecks()).toBeGreaterThan(totals.sequences);
    const seen = SITUATIONS.map((k) => `${k} ${stats[k] ?? 0}`).join(', ');
    console.log(`supervisor properties: ${totals.sequences} sequences, ${totals.events} events, longest ${totals.longest} events, ${rollIndexChecks()} roll decisions checked against a scan; ${seen}`);
    if (STATS) console.log(stats);
  });
  it('holds its invariants over random event sequences', () => {
    fc.assert(
      fc.property(
        initialArb(),
        fc.array(fc.constantFrom(0, 0, 0, 50, 400, 2000), { minLength: 1, maxLength: 6 }),
        fc.array(actionArb({ crashes: true }), { minLength: 1, maxLength: 60, size: 'max' }),
        fc.boolean(),
        fc.boolean(),
        faultsArb,
        (groups, drains, actions, quiesce, force, faults) => {
          // Faults start after the boot spawns (a few indexes in, so the start mostly succeeds).
          run(groups, drains, [...bootActions, ...actions], quiesce, force, false, [...Array(9).fill('none'), ...faults]);
        },
      ),
      { numRuns: runs(200), ...replay() },
    );
  }, budget(200));

  it('holds them when the start itself is disturbed', () => {
    fc.assert(
      fc.property(
        initialArb(),
        fc.array(fc.constantFrom(0, 50, 400), { minLength: 1, maxLength: 4 }),
        fc.array(actionArb({ crashes: true }), { minLength: 1, maxLength: 40, size: 'max' }),
        fc.boolean(),
        faultsArb,
        (groups, drains, actions, force, faults) => {
          run(groups, drains, actions, true, force, false, faults);
        },
      ),
      { numRuns: runs(100), ...replay() },
    );
  }, budget(100));

  it('without crashes and with unavailable 0, ready never drops below count during a reload', () => {
    fc.assert(
      fc.property(
        initialArb({ unavailable0: true }),
        fc.array(fc.constantFrom(0, 50, 400), { minLength: 1, maxLength: 4 }),
        fc.array(actionArb({ crashes: false, unavailable0: true }), { minLength: 1, maxLength: 60, size: 'max' }),
        (groups, drains, actions) => {
          run(groups, drains, [...bootActions, ...actions], true, false, true);
        },
      ),
      { numRuns: runs(150), ...replay() },
    );
  }, budget(150));
});
