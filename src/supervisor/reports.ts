/**
 * Reports built from the machine's state: the reload report (final, or of the
 * reload running now), its per-group verification and rollback figures, and
 * the one-line status for systemd's STATUS= and logs. Pure functions of a
 * state snapshot.
 */
import { groupWorkers, isLive, readyCount } from './policy.js';
import type { GroupRollState, ReloadFailure, ReloadReport, RollbackState, VerificationReport } from './report.js';
import type { MachineState, ReloadGroupEntry, ReloadRun } from './types.js';
import { add, since, ZERO, type Counters } from './verify.js';

export type FailureCause = 'config' | 'worker' | 'stop' | 'rollback';

export function idleReport(): ReloadReport {
  return {
    id: 0,
    state: 'idle',
    trigger: '',
    startedAt: null,
    readyAt: null,
    finishedAt: null,
    durationMs: null,
    readyMs: null,
    done: 0,
    total: 0,
    error: null,
    errorCode: null,
    failure: null,
    queued: null,
    groups: [],
    rollback: null,
  };
}

/** Machine-level cause of a failed reload; the control layer publishes these codes. */
export function errorKindCode(cause: FailureCause): number {
  switch (cause) {
    case 'config':
      return -32004;
    case 'worker':
      return -32001;
    case 'stop':
      return -32006;
    case 'rollback':
      return -32009;
  }
}

export function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `was killed by ${signal}`;
  if (code === 127) return 'exited with code 127 (command not found)';
  return `exited with code ${code ?? 'unknown'}`;
}

export function formatMs(ms: number): string {
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)}s`;
  return `${ms}ms`;
}

/** The old workers' counters over the verification window. */
export function oldFigures(e: ReloadGroupEntry): Counters {
  const v = e.verification;
  if (!v) return { ...ZERO };
  let sum = { ...ZERO };
  for (const [id, base] of Object.entries(v.oldBase)) sum = add(sum, since(v.oldNow[id] ?? base, base));
  return sum;
}

export function verificationReport(e: ReloadGroupEntry): VerificationReport {
  const policy = e.spec?.verify;
  const v = e.verification;
  const bakeMs = policy?.bakeMs ?? 0;
  const canary = { workerId: v?.canaryId ?? null, requests: v?.canary.requests ?? 0, errors: v?.canary.errors ?? 0 };
  const old = oldFigures(e);
  let verdict: VerificationReport['verdict'];
  if (!policy || !v || (policy.bakeMs === 0 && policy.maxErrorRate === null && policy.watchMs === 0) || e.state === 'pending' || e.state === 'skipped') {
    verdict = 'off';
  } else if (v.verdict === 'failed') verdict = 'failed';
  else if (policy.maxErrorRate !== null && !v.judged) verdict = 'insufficient-data';
  else verdict = 'passed';
  return { bakeMs, canary, old, verdict };
}

function groupState(e: ReloadGroupEntry, final: ReloadReport['state']): GroupRollState {
  if (e.state === 'rolling' || e.state === 'verifying' || e.state === 'watching') {
    if (final === 'failed') return e.state === 'watching' ? 'rolled' : 'failed';
    if (final === 'succeeded' && e.state === 'watching') return 'rolled';
    return final === 'aborted' ? 'pending' : e.state;
  }
  return e.state;
}

/** The rollback's overall state: failed if any group's failed, skipped if every group's was skipped. */
function rollbackState(r: ReloadRun): RollbackState {
  const rb = r.rollback!;
  if (rb.failed !== null) return 'failed';
  const states = r.order.map((e) => e.rollback?.state).filter((s): s is RollbackState => s !== undefined);
  if (states.includes('running') || rb.current !== null || rb.queue.length > 0) return 'running';
  if (states.length > 0 && states.every((s) => s === 'skipped')) return 'skipped';
  return 'succeeded';
}

export function buildReport(
  r: ReloadRun,
  state: 'succeeded' | 'failed' | 'aborted',
  now: number,
  error: string | null,
  failure: ReloadFailure | null,
  cause: FailureCause | null,
  detail: string[],
): ReloadReport {
  const groups = r.order.map((e) => ({
    name: e.name,
    state: groupState(e, state),
    done: e.done,
    total: e.total,
    generation: e.generation,
    revision: e.spec?.revision ?? null,
    verification: verificationReport(e),
    rollback: e.rollback === null ? null : { state: e.rollback.state, generation: e.rollback.generation, ...(e.rollback.reason ? { reason: e.rollback.reason } : {}) },
  }));
  const fullError = detail.length > 0 ? `${error}\n${detail.map((d) => `  ${d}`).join('\n')}` : error;
  let rollback: ReloadReport['rollback'] = null;
  if (r.rollback) {
    let rbState = rollbackState(r);
    if (state === 'aborted' && rbState === 'running') rbState = 'failed';
    rollback = { state: rbState, durationMs: rbState === 'running' ? null : now - r.rollback.startedAt };
  }
  return {
    id: r.id,
    state,
    trigger: r.trigger,
    startedAt: new Date(r.startedAt).toISOString(),
    readyAt: r.readyAt === null ? null : new Date(r.readyAt).toISOString(),
    finishedAt: new Date(now).toISOString(),
    durationMs: now - r.startedAt,
    readyMs: r.readyAt === null ? null : r.readyAt - r.startedAt,
    done: groups.reduce((n, g) => n + g.done, 0),
    total: groups.reduce((n, g) => n + g.total, 0),
    error: fullError,
    errorCode: cause === null ? null : errorKindCode(cause),
    failure,
    queued: null,
    groups,
    rollback,
  };
}

/** One readable line for systemd's STATUS= and logs. */
export function statusLine(s: MachineState, now?: number): string {
  const parts = s.groups.map((g) => {
    const live = groupWorkers(s.workers, g.name).filter(isLive);
    return `${g.name} ${readyCount(live)}/${g.config.count} ready, generation ${g.generation}`;
  });
  const r = s.reload;
  if (s.daemon === 'reloading' && r) {
    if (r.rollback) return `rolling back${r.rollback.current ? ` ${r.rollback.current}` : ''}: ${r.rollback.error.split('\n')[0]}`;
    const verifying = r.order.find((e) => e.state === 'verifying');
    if (verifying) {
      const since = verifying.verification?.startedAt;
      const bake = verifying.spec?.verify.bakeMs ?? 0;
      const elapsed = now !== undefined && since != null ? Math.min(bake, Math.max(0, now - since)) : null;
      return `verifying ${verifying.name}: canary ${elapsed === null ? '' : `${Math.floor(elapsed / 1000)} s of `}${Math.round(bake / 1000)} s`;
    }
    const watching = r.order.filter((e) => e.state === 'watching');
    if (watching.length > 0) return `watching ${watching.map((e) => e.name).join(', ')} for crashes after the roll`;
    const cur = r.order.find((e) => e.state === 'rolling');
    // smoothctl rollback: a roll like a reload's, to an older generation.
    if (cur) return `${r.trigger === 'rollback' ? `rolling back ${cur.name} to generation ${cur.generation}` : `reloading ${cur.name}`}: ${cur.done}/${cur.total} replaced`;
    return `${r.trigger === 'rollback' ? 'rolling back' : 'reloading'}: ${r.phase === 'loading' ? 'reading the config' : 'waiting for old workers to exit'}`;
  }
  return `${s.daemon}: ${parts.join('; ')}`;
}

/** Report of the reload running now, or of the last one. */
export function currentReport(s: MachineState, now: number): ReloadReport {
  const r = s.reload;
  if (!r) return { ...s.lastReport, queued: s.queued?.id ?? null };
  const rep = buildReport(r, 'succeeded', now, null, null, null, []);
  return {
    ...rep,
    state: 'running',
    finishedAt: null,
    durationMs: null,
    queued: s.queued?.id ?? null,
    groups: r.order.map((e, i) => ({ ...rep.groups[i]!, state: e.state === 'rolling' ? 'pending' : e.state })),
  };
}
