import { describe, expect, it } from 'vitest';
import {
  buildReport,
  currentReport,
  describeExit,
  errorKindCode,
  formatMs,
  idleReport,
  oldFigures,
  statusLine,
  verificationReport,
} from '../../src/supervisor/reports.js';
import type { ReloadGroupEntry, ReloadRun, VerificationRun } from '../../src/supervisor/types.js';
import { groupConfig, runningWorld, specFor } from './harness.js';

const T0 = 1_700_000_000_000;
const verifyOn = { bakeMs: 5_000, maxErrorRate: 0.01, minRequests: 20, watchMs: 0 };

function vrun(over: Partial<VerificationRun> = {}): VerificationRun {
  return {
    canaryId: 7,
    startedAt: T0,
    baked: false,
    canary: { requests: 30, errors: 1 },
    oldBase: {},
    oldNow: {},
    judged: true,
    shedding: [],
    verdict: null,
    ...over,
  };
}

function entry(over: Partial<ReloadGroupEntry> = {}): ReloadGroupEntry {
  return {
    name: 'web',
    state: 'rolling',
    previousGeneration: 1,
    verification: null,
    rollback: null,
    done: 1,
    total: 2,
    generation: 2,
    spec: { ...specFor(groupConfig({ verify: verifyOn })), revision: 'r2' },
    previous: null,
    added: false,
    ...over,
  };
}

function run(order: ReloadGroupEntry[], over: Partial<ReloadRun> = {}): ReloadRun {
  return { id: 3, trigger: 'rpc', groups: null, force: [], phase: 'rolling', removed: [], startedAt: T0, readyAt: null, order, rollback: null, ...over };
}

const rollbackRun = (over: Partial<NonNullable<ReloadRun['rollback']>> = {}): NonNullable<ReloadRun['rollback']> => ({
  startedAt: T0 + 1_000,
  queue: [],
  current: null,
  error: 'web: worker 4 crashed\n  more',
  failure: null,
  failed: null,
  ...over,
});

describe('reload report helpers (pure)', () => {
  it('the idle report has no reload in it', () => {
    expect(idleReport()).toEqual({
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
    });
  });

  it('maps each failure cause to its stable error code', () => {
    expect([errorKindCode('config'), errorKindCode('worker'), errorKindCode('stop'), errorKindCode('rollback')]).toEqual([-32004, -32001, -32006, -32009]);
  });

  it('describes an exit by signal, by code, 127 as command not found, and an unknown code', () => {
    expect(describeExit(null, 'SIGKILL')).toBe('was killed by SIGKILL');
    expect(describeExit(127, null)).toBe('exited with code 127 (command not found)');
    expect(describeExit(3, null)).toBe('exited with code 3');
    expect(describeExit(null, null)).toBe('exited with code unknown');
  });

  it('formats durations as ms below a second, whole or tenth seconds above', () => {
    expect(formatMs(0)).toBe('0ms');
    expect(formatMs(999)).toBe('999ms');
    expect(formatMs(1000)).toBe('1s');
    expect(formatMs(30_000)).toBe('30s');
    expect(formatMs(1500)).toBe('1.5s');
    expect(formatMs(1001)).toBe('1.0s');
  });

  it("sums the old workers' counters since the window opened (a worker without a new report counts 0)", () => {
    expect(oldFigures(entry())).toEqual({ requests: 0, errors: 0 });
    const v = vrun({
      oldBase: { '1': { requests: 10, errors: 1 }, '2': { requests: 5, errors: 0 }, '3': { requests: 8, errors: 8 } },
      oldNow: { '1': { requests: 25, errors: 3 }, '2': { requests: 9, errors: 2 } },
    });
    expect(oldFigures(entry({ verification: v }))).toEqual({ requests: 19, errors: 4 });
  });
});

describe('verification report of a group', () => {
  it('is off without a verification run, without a policy, or with a policy that checks nothing', () => {
    expect(verificationReport(entry()).verdict).toBe('off');
    const off = { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 0 };
    expect(verificationReport(entry({ verification: vrun(), spec: { ...specFor(groupConfig({ verify: off })) } })).verdict).toBe('off');
    expect(verificationReport(entry({ verification: vrun(), spec: null })).verdict).toBe('off');
  });

  it('is on when any one of bake, error rate or watch is set', () => {
    for (const v of [
      { bakeMs: 1, maxErrorRate: null, minRequests: 20, watchMs: 0 },
      { bakeMs: 0, maxErrorRate: 0.5, minRequests: 20, watchMs: 0 },
      { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 1 },
    ]) {
      expect(verificationReport(entry({ verification: vrun(), spec: specFor(groupConfig({ verify: v })) })).verdict).toBe('passed');
    }
  });

  it('is off for a group that has not rolled or was skipped', () => {
    expect(verificationReport(entry({ verification: vrun(), state: 'pending' })).verdict).toBe('off');
    expect(verificationReport(entry({ verification: vrun(), state: 'skipped' })).verdict).toBe('off');
  });

  it('says failed, insufficient-data (error rate never judged) or passed, with the canary and old figures', () => {
    const v = vrun({ oldBase: { '1': { requests: 0, errors: 0 } }, oldNow: { '1': { requests: 40, errors: 2 } } });
    expect(verificationReport(entry({ verification: v }))).toEqual({
      bakeMs: 5_000,
      canary: { workerId: 7, requests: 30, errors: 1 },
      old: { requests: 40, errors: 2 },
      verdict: 'passed',
    });
    expect(verificationReport(entry({ verification: vrun({ verdict: 'failed' }) })).verdict).toBe('failed');
    expect(verificationReport(entry({ verification: vrun({ judged: false }) })).verdict).toBe('insufficient-data');
    const bakeOnly = specFor(groupConfig({ verify: { bakeMs: 1000, maxErrorRate: null, minRequests: 20, watchMs: 0 } }));
    expect(verificationReport(entry({ verification: vrun({ judged: false }), spec: bakeOnly })).verdict).toBe('passed');
  });

  it('without a run or a policy: no canary, zero figures, no bake', () => {
    expect(verificationReport(entry({ spec: null }))).toEqual({ bakeMs: 0, canary: { workerId: null, requests: 0, errors: 0 }, old: { requests: 0, errors: 0 }, verdict: 'off' });
  });
});

describe('final reload report', () => {
  it('carries times, totals, the error with its detail lines, the code and the failure', () => {
    const failure = { group: 'web', workerId: 4, slot: 0, pid: 99, reason: 'crashed', stderrTail: ['boom'] };
    const r = run([entry({ state: 'failed', done: 1, total: 2 }), entry({ name: 'api', state: 'rolled', done: 3, total: 3, generation: 5 })], { readyAt: T0 + 700 });
    const rep = buildReport(r, 'failed', T0 + 2_500, 'web: worker 4 crashed', failure, 'worker', ['first', 'second']);
    expect(rep).toMatchObject({
      id: 3,
      state: 'failed',
      trigger: 'rpc',
      startedAt: new Date(T0).toISOString(),
      readyAt: new Date(T0 + 700).toISOString(),
      finishedAt: new Date(T0 + 2_500).toISOString(),
      durationMs: 2_500,
      readyMs: 700,
      done: 4,
      total: 5,
      error: 'web: worker 4 crashed\n  first\n  second',
      errorCode: -32001,
      failure,
      queued: null,
      rollback: null,
    });
    expect(rep.groups.map((g) => [g.name, g.state, g.done, g.total, g.generation, g.revision])).toEqual([
      ['web', 'failed', 1, 2, 2, 'r2'],
      ['api', 'rolled', 3, 3, 5, 'r2'],
    ]);
  });

  it('without detail lines the error is as given; without a cause there is no code; never ready: no readyAt', () => {
    const rep = buildReport(run([entry({ state: 'rolled', spec: null })]), 'succeeded', T0 + 10, null, null, null, []);
    expect(rep).toMatchObject({ error: null, errorCode: null, readyAt: null, readyMs: null, failure: null });
    expect(rep.groups[0]!.revision).toBeNull();
    expect(buildReport(run([]), 'failed', T0, 'config refused', null, 'config', []).error).toBe('config refused');
  });

  it('names the state each group ended in, by how the reload ended', () => {
    const states = ['rolling', 'verifying', 'watching', 'rolled', 'pending', 'skipped'] as const;
    const r = run(states.map((state) => entry({ name: state, state })));
    const of = (end: 'succeeded' | 'failed' | 'aborted') => buildReport(r, end, T0, null, null, null, []).groups.map((g) => g.state);
    expect(of('failed')).toEqual(['failed', 'failed', 'rolled', 'rolled', 'pending', 'skipped']);
    expect(of('succeeded')).toEqual(['rolling', 'verifying', 'rolled', 'rolled', 'pending', 'skipped']);
    expect(of('aborted')).toEqual(['pending', 'pending', 'pending', 'rolled', 'pending', 'skipped']);
  });

  it("keeps each group's rollback, with its reason only when there is one", () => {
    const r = run([
      entry({ rollback: { state: 'succeeded', generation: 1, reason: null } }),
      entry({ name: 'api', rollback: { state: 'failed', generation: 1, reason: 'worker 9 crashed' } }),
    ]);
    const groups = buildReport(r, 'failed', T0, 'x', null, 'worker', []).groups;
    expect(groups[0]!.rollback).toEqual({ state: 'succeeded', generation: 1 });
    expect(groups[1]!.rollback).toEqual({ state: 'failed', generation: 1, reason: 'worker 9 crashed' });
  });
});

describe('rollback in the reload report', () => {
  const rb = (order: ReloadGroupEntry['rollback'][], over: Partial<NonNullable<ReloadRun['rollback']>> = {}, end: 'failed' | 'aborted' = 'failed') =>
    buildReport(
      run(order.map((r, i) => entry({ name: `g${i}`, rollback: r })), { rollback: rollbackRun(over) }),
      end,
      T0 + 4_000,
      'x',
      null,
      'rollback',
      [],
    ).rollback;
  const done = (state: 'succeeded' | 'skipped' | 'running' | 'failed') => ({ state, generation: 1, reason: null });

  it('succeeded, with its duration from the start of the rollback', () => {
    expect(rb([done('succeeded'), done('skipped'), null])).toEqual({ state: 'succeeded', durationMs: 3_000 });
    expect(rb([])).toEqual({ state: 'succeeded', durationMs: 3_000 });
  });

  it('skipped only when every group with a rollback skipped it', () => {
    expect(rb([done('skipped'), null, done('skipped')])).toEqual({ state: 'skipped', durationMs: 3_000 });
  });

  it('failed once a group failed, whatever the others did', () => {
    expect(rb([done('running')], { failed: 'g0: worker 3 crashed' })).toEqual({ state: 'failed', durationMs: 3_000 });
  });

  it('running while a group rolls back, one is current, or one is queued: no duration yet', () => {
    expect(rb([done('succeeded'), done('running')])).toEqual({ state: 'running', durationMs: null });
    expect(rb([done('succeeded')], { current: 'g1' })).toEqual({ state: 'running', durationMs: null });
    expect(rb([done('succeeded')], { queue: ['g1'] })).toEqual({ state: 'running', durationMs: null });
  });

  it('a reload aborted (stop) while its rollback ran reports the rollback failed', () => {
    expect(rb([done('running')], {}, 'aborted')).toEqual({ state: 'failed', durationMs: 3_000 });
    expect(rb([done('succeeded')], {}, 'aborted')).toEqual({ state: 'succeeded', durationMs: 3_000 });
  });
});

describe('report of the reload running now', () => {
  it('is the last report, with the id of a queued reload', () => {
    const w = runningWorld([groupConfig()], { autoReady: true });
    const s = { ...w.state, lastReport: { ...idleReport(), id: 2, state: 'succeeded' as const }, queued: null };
    expect(currentReport(s, T0)).toEqual({ ...s.lastReport, queued: null });
    expect(currentReport({ ...s, queued: { id: 5, trigger: 'rpc', groups: null, force: [] } }, T0).queued).toBe(5);
  });

  it('is running, unfinished, with rolling groups shown as pending and the queued id', () => {
    const w = runningWorld([groupConfig()], { autoReady: true });
    const r = run([entry({ state: 'rolling' }), entry({ name: 'api', state: 'rolled' })]);
    const rep = currentReport({ ...w.state, daemon: 'reloading', reload: r, queued: { id: 4, trigger: 'signal', groups: null, force: [] } }, T0 + 900);
    expect(rep).toMatchObject({ id: 3, state: 'running', finishedAt: null, durationMs: null, queued: 4, done: 2, total: 4, error: null });
    expect(rep.groups.map((g) => g.state)).toEqual(['pending', 'rolled']);
    expect(currentReport({ ...w.state, daemon: 'reloading', reload: r, queued: null }, T0).queued).toBeNull();
  });
});

describe('the one-line status (STATUS=, logs)', () => {
  const world = () => runningWorld([groupConfig({ name: 'web', count: 2 }), groupConfig({ name: 'api' })], { autoReady: true });

  it('counts ready workers per group with its generation', () => {
    expect(statusLine(world().state)).toBe('running: web 2/2 ready, generation 1; api 1/1 ready, generation 1');
  });

  it('during a reload: the group rolling and how many are replaced, or the phase', () => {
    const s = { ...world().state, daemon: 'reloading' as const };
    expect(statusLine({ ...s, reload: run([entry({ state: 'rolled' }), entry({ name: 'api', state: 'rolling', done: 1, total: 3 })]) })).toBe('reloading api: 1/3 replaced');
    expect(statusLine({ ...s, reload: run([], { phase: 'loading' }) })).toBe('reloading: reading the config');
    expect(statusLine({ ...s, reload: run([], { phase: 'draining' }) })).toBe('reloading: waiting for old workers to exit');
  });

  it('during smoothctl rollback: rolling back to the generation', () => {
    const s = { ...world().state, daemon: 'reloading' as const };
    expect(statusLine({ ...s, reload: run([entry({ state: 'rolling', generation: 1, done: 0, total: 2 })], { trigger: 'rollback' }) })).toBe(
      'rolling back web to generation 1: 0/2 replaced',
    );
    expect(statusLine({ ...s, reload: run([], { trigger: 'rollback', phase: 'draining' }) })).toBe('rolling back: waiting for old workers to exit');
    expect(statusLine({ ...s, reload: run([], { trigger: 'rollback', phase: 'loading' }) })).toBe('rolling back: reading the config');
  });

  it("during a failed reload's rollback: the group and the first line of the error", () => {
    const s = { ...world().state, daemon: 'reloading' as const };
    expect(statusLine({ ...s, reload: run([], { rollback: rollbackRun({ current: 'web' }) }) })).toBe('rolling back web: web: worker 4 crashed');
    expect(statusLine({ ...s, reload: run([], { rollback: rollbackRun() }) })).toBe('rolling back: web: worker 4 crashed');
  });

  it('during a bake: seconds baked of the bake, bounded to the bake', () => {
    const s = { ...world().state, daemon: 'reloading' as const };
    const baking = (startedAt: number | null) => run([entry({ state: 'rolled' }), entry({ name: 'api', state: 'verifying', verification: vrun({ startedAt }) })]);
    expect(statusLine({ ...s, reload: baking(T0) }, T0 + 2_999)).toBe('verifying api: canary 2 s of 5 s');
    expect(statusLine({ ...s, reload: baking(T0) }, T0 + 60_000)).toBe('verifying api: canary 5 s of 5 s');
    expect(statusLine({ ...s, reload: baking(T0) }, T0 - 5_000)).toBe('verifying api: canary 0 s of 5 s');
    expect(statusLine({ ...s, reload: baking(T0) })).toBe('verifying api: canary 5 s');
    expect(statusLine({ ...s, reload: baking(null) }, T0)).toBe('verifying api: canary 5 s');
  });

  it('during the watch: every group watched', () => {
    const s = { ...world().state, daemon: 'reloading' as const };
    expect(statusLine({ ...s, reload: run([entry({ state: 'watching' }), entry({ name: 'api', state: 'watching' })]) })).toBe(
      'watching web, api for crashes after the roll',
    );
  });

  it('a reload record outside the reloading state is not shown', () => {
    const s = world().state;
    expect(statusLine({ ...s, daemon: 'stopping', reload: run([entry()]) })).toBe('stopping: web 2/2 ready, generation 1; api 1/1 ready, generation 1');
  });
});
