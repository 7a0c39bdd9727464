/** The readiness verdict of `smoothctl status --ready` over status documents (pure). */
import { describe, expect, it } from 'vitest';
import { readiness } from '../../src/cli/readiness.js';
import type { GroupStatus, ReloadGroupReport, ReloadReport, StatusDocument, WorkerStatus } from '../../src/supervisor/report.js';

const worker = (state: WorkerStatus['state'], slot = 0): WorkerStatus => ({
  id: slot + 1, slot, pid: 100 + slot, generation: 1, state, startedAt: null, readyAt: null, restarts: 0, rssBytes: null, statusText: null, lastExit: null,
});
const group = (name: string, desired: number, states: WorkerStatus['state'][]): GroupStatus => ({
  name, reloadable: true, generation: 1, desired, pending: false, listen: [], workers: states.map((s, i) => worker(s, i)), revision: null, history: [],
});
const reload = (over: Partial<ReloadReport> = {}): ReloadReport => ({
  id: 0, state: 'idle', trigger: 'rpc', startedAt: null, readyAt: null, finishedAt: null, durationMs: null, readyMs: null,
  done: 0, total: 0, error: null, errorCode: null, failure: null, queued: null, groups: [], rollback: null, ...over,
});
const entry = (name: string, state: ReloadGroupReport['state'], generation: number): ReloadGroupReport => ({
  name, state, done: 0, total: 1, generation, revision: null, rollback: null,
  verification: { bakeMs: 0, canary: { workerId: null, requests: 0, errors: 0 }, old: { requests: 0, errors: 0 }, verdict: 'off' },
});
const doc = (groups: GroupStatus[], over: { state?: StatusDocument['daemon']['state']; reload?: ReloadReport } = {}): StatusDocument => ({
  version: 1,
  daemon: { pid: 1, version: '0', state: over.state ?? 'running', startedAt: '', uptimeMs: 0, platform: 'linux', configPath: '/c' },
  reload: over.reload ?? reload(),
  groups,
});

describe('readiness', () => {
  it('is ready when every group has count ready workers', () => {
    expect(readiness(doc([group('web', 2, ['ready', 'ready']), group('jobs', 1, ['ready'])]))).toEqual({ ready: true, summary: 'ready: 2 groups, 3 workers ready' });
  });

  it('counts old and new ready workers alike during a roll, and is ready while reloading', () => {
    const rolling = reload({ id: 3, state: 'running', groups: [entry('web', 'rolling', 2)] });
    expect(readiness(doc([group('web', 2, ['ready', 'ready', 'starting', 'stopping'])], { state: 'reloading', reload: rolling })).ready).toBe(true);
  });

  it('is not ready with fewer ready workers than count, naming the group and the other states', () => {
    expect(readiness(doc([group('web', 2, ['ready']), group('jobs', 3, ['ready', 'backoff', 'starting'])]))).toEqual({
      ready: false,
      reason: 'group web has 1 of 2 workers ready',
    });
    expect(readiness(doc([group('jobs', 3, ['ready', 'backoff', 'starting'])]))).toEqual({
      ready: false,
      reason: 'group jobs has 1 of 3 workers ready (1 backoff, 1 starting)',
    });
  });

  it('is not ready while starting or stopping', () => {
    expect(readiness(doc([group('web', 1, ['ready'])], { state: 'starting' }))).toEqual({ ready: false, reason: 'smoothd is starting' });
    expect(readiness(doc([group('web', 1, ['ready'])], { state: 'stopping' }))).toEqual({ ready: false, reason: 'smoothd is stopping' });
  });

  it('is not ready after a failed reload even though the old workers serve, and again ready after one succeeds', () => {
    const all = [group('web', 1, ['ready'])];
    expect(readiness(doc(all, { reload: reload({ id: 4, state: 'failed', error: 'worker 9 exited with code 3 before ready' }) }))).toEqual({
      ready: false,
      reason: 'reload 4 failed: worker 9 exited with code 3 before ready (ready again once a reload succeeds)',
    });
    expect(readiness(doc(all, { reload: reload({ id: 5, state: 'succeeded' }) })).ready).toBe(true);
  });

  it('is ready after a failed reload whose rollback brought every slot back, not after a skipped or failed one', () => {
    const all = [group('web', 1, ['ready'])];
    const failed = (state: 'succeeded' | 'skipped' | 'failed') => reload({ id: 7, state: 'failed', error: 'web: worker 9 answered 100.0% errors', rollback: { state, durationMs: 40 } });
    expect(readiness(doc(all, { reload: failed('succeeded') })).ready).toBe(true);
    expect(readiness(doc(all, { reload: failed('skipped') }))).toEqual({
      ready: false,
      reason: 'reload 7 failed: web: worker 9 answered 100.0% errors; its rollback skipped (ready again once a reload succeeds)',
    });
    expect(readiness(doc(all, { reload: failed('failed') })).ready).toBe(false);
  });

  it('is not ready while a running reload has a failed group', () => {
    const r = reload({ id: 6, state: 'running', groups: [entry('web', 'failed', 2)] });
    expect(readiness(doc([group('web', 1, ['ready'])], { state: 'reloading', reload: r }))).toEqual({ ready: false, reason: 'reload 6 is failing in group web' });
  });
});

describe('smoothctl status --ready parsing', () => {
  it('takes --ready (with or without --json) on status only', async () => {
    const { parseArgs } = await import('../../src/cli/smoothctl.js');
    expect(parseArgs(['status', '--ready'])).toEqual({ command: { name: 'status', json: false, ready: true } });
    expect(parseArgs(['status', '--ready', '--json'])).toEqual({ command: { name: 'status', json: true, ready: true } });
    expect(() => parseArgs(['reload', '--ready'])).toThrow('option --ready does not apply to reload (usage: smoothctl reload [--group NAME]... [--no-wait] [--json] [--dry-run])');
  });
});
