/**
 * Deploy verification's steps inside the machine (DESIGN §10): the canary's
 * bake, the judgement of every new worker on its request counters, the end of
 * the bake and of the watch. Functions of the machine's stepper (the host),
 * split from machine.ts so each file keeps one concern; the judgement itself
 * is the pure src/supervisor/verify.ts.
 */
import { groupWorkers, isLive } from './policy.js';
import type { ReloadFailure } from './report.js';
import { formatMs, oldFigures } from './reports.js';
import type { Effect, GroupState, MachineState, ProgressEvent, ReloadGroupEntry, VerificationRun, WorkerRecord } from './types.js';
import { bakeVerdict, describeRate, failureReason, judge, since, ZERO, type Counters } from './verify.js';

/** Share of responses the old workers answer with `Connection: close` during a bake. */
export const SHED_SHARE = 0.1;

/** What these steps need of the machine. */
export interface VerifyHost {
  readonly s: MachineState;
  readonly now: number;
  emit(e: Effect): void;
  log(level: 'info' | 'warn' | 'error' | 'debug', msg: string, fields?: Record<string, unknown>): void;
  group(name: string): GroupState | undefined;
  worker(id: number): WorkerRecord | undefined;
  setTimer(key: string, ms: number): void;
  progress(step: ProgressEvent['step'], w: WorkerRecord | null, group: string | null, message: string, extra?: { bakeMs?: number }): void;
  failReload(g: GroupState, failure: ReloadFailure): void;
}

/** The first new worker of a group's roll is ready: the verification window opens, and the bake starts. */
export function canaryReady(m: VerifyHost, g: GroupState, e: ReloadGroupEntry, w: WorkerRecord): void {
  const v = e.verification;
  if (!v || v.canaryId !== null) return;
  v.canaryId = w.id;
  v.startedAt = m.now;
  // New objects, not changes to the old ones: a step shares these with the state it was given.
  const oldBase: Record<string, Counters> = {};
  const oldNow: Record<string, Counters> = {};
  for (const o of groupWorkers(m.s.workers, g.name)) {
    if (o.generation === w.generation || !isLive(o)) continue;
    oldBase[String(o.id)] = { ...(o.counters ?? ZERO) };
    oldNow[String(o.id)] = { ...(o.counters ?? ZERO) };
  }
  v.oldBase = oldBase;
  v.oldNow = oldNow;
  const bakeMs = e.spec?.verify.bakeMs ?? 0;
  if (bakeMs <= 0 || v.baked) {
    v.baked = true;
    return;
  }
  e.state = 'verifying';
  m.setTimer(`bake:${m.s.reload!.id}:${g.name}`, bakeMs);
  // Keep-alive clients stay on the old workers: have them shed a share, so the canary is judged on real traffic.
  v.shedding = [...v.shedding, ...Object.keys(v.oldBase).map(Number)];
  for (const id of Object.keys(v.oldBase)) {
    m.emit({ type: 'worker.shed', workerId: Number(id), share: SHED_SHARE });
  }
  m.log('info', 'canary ready: baking before the roll goes on', { group: g.name, workerId: w.id, pid: w.pid, bakeMs });
  m.progress('bake.started', w, g.name, `${g.name}: canary worker ${w.id} (pid ${w.pid}) baking for ${formatMs(bakeMs)}`, { bakeMs });
}

/** A worker's cumulative request counters (DESIGN §10): kept, and judged while its generation is being rolled out. */
export function onStats(m: VerifyHost, id: number, requests: number | null, errors: number | null): void {
  const w = m.worker(id);
  if (!w) return;
  w.counters = { requests: requests ?? w.counters?.requests ?? 0, errors: errors ?? w.counters?.errors ?? 0 };
  const r = m.s.reload;
  const e = r?.order.find((o) => o.name === w.group);
  const v = e?.verification;
  if (!r || !e || !v || r.rollback) return;
  if (v.oldBase[String(id)]) v.oldNow = { ...v.oldNow, [String(id)]: { ...w.counters } };
  if (w.phase !== 'ready' || w.startedBy !== r.id || w.generation !== e.generation) return;
  const mine = since(w.counters, w.baseline ?? ZERO);
  if (id === v.canaryId) v.canary = mine;
  const g = m.group(w.group);
  const policy = e.spec?.verify;
  // Judged until the reload ends: during the roll, the drain of the old workers and the watch.
  if (!g || !policy || e.state === 'failed' || e.state === 'pending' || e.state === 'skipped') return;
  const verdict = judge(policy, mine);
  if (verdict === 'ok') v.judged = true;
  if (verdict !== 'failed') return;
  verificationFailed(m, g, e, w, failureReason(policy, mine, oldFigures(e)));
}

export function verificationFailed(m: VerifyHost, g: GroupState, e: ReloadGroupEntry, w: WorkerRecord, reason: string): void {
  e.verification!.verdict = 'failed';
  m.progress('verify.failed', w, g.name, `${g.name}: worker ${w.id} ${reason}`);
  m.failReload(g, { group: g.name, workerId: w.id, slot: w.slot, pid: w.pid, reason, stderrTail: [] });
}

export function onBakeEnd(m: VerifyHost, reloadId: number, group: string): void {
  const r = m.s.reload;
  const e = r?.order.find((o) => o.name === group);
  const g = m.group(group);
  const v = e?.verification;
  if (!r || r.id !== reloadId || !e || !g || !v || v.baked || e.state !== 'verifying') return;
  const policy = e.spec!.verify;
  const canary = m.worker(v.canaryId ?? -1);
  const verdict = bakeVerdict(policy, v.canary);
  if (verdict === 'failed' && canary) {
    verificationFailed(m, g, e, canary, failureReason(policy, v.canary, oldFigures(e)));
    return;
  }
  v.baked = true;
  e.state = 'rolling';
  stopShedding(m, v);
  const figures = `canary ${describeRate(v.canary)}, old workers ${describeRate(oldFigures(e))}`;
  const note = verdict === 'insufficient-data' ? ` (fewer than ${policy.minRequests} responses: the error rate could not be judged yet)` : '';
  m.log('info', 'bake passed: the roll goes on', { group, canary: v.canaryId, ...v.canary, verdict });
  m.progress('bake.passed', canary ?? null, group, `${group}: bake passed after ${formatMs(policy.bakeMs)}: ${figures}${note}`);
}

/** The bake is over: old workers that still run keep their keep-alive clients again. */
export function stopShedding(m: VerifyHost, v: VerificationRun): void {
  const ids = v.shedding;
  v.shedding = [];
  for (const id of ids) {
    const w = m.worker(id);
    if (w && w.phase !== 'stopping') m.emit({ type: 'worker.shed', workerId: id, share: 0 });
  }
}

export function onWatchEnd(m: VerifyHost, reloadId: number, group: string): void {
  const r = m.s.reload;
  const e = r?.order.find((o) => o.name === group);
  if (!r || r.id !== reloadId || !e || e.state !== 'watching') return;
  e.state = 'rolled';
  m.progress('watch.passed', null, group, `${group}: no new worker crashed during the ${formatMs(e.spec?.verify.watchMs ?? 0)} watch`);
}
