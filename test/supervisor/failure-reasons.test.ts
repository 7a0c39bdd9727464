/**
 * What a failed reload's report says about the worker that failed it: a new
 * worker that could not be started is reported with the spawn error alone
 * (not as a crash "before it was ready"), and a crash during the watch keeps
 * only the last STDERR_TAIL_LINES lines of its stderr, like every other failure.
 */
import { describe, expect, it } from 'vitest';
import { STDERR_TAIL_LINES } from '../../src/supervisor/machine.js';
import { groupConfig, makeConfig, runningWorld } from './harness.js';

describe('the failure a reload reports', () => {
  it('of a new worker that could not be started is the spawn error itself', () => {
    const w = runningWorld([groupConfig({ onFailure: 'keep' })]);
    w.behave = (sp) => (sp.generation === 2 ? { spawnFails: 'spawn /srv/app/bin/server ENOENT' } : {});
    w.current = makeConfig([groupConfig({ onFailure: 'keep' })], 2);
    w.reload();
    const report = w.finished.get(1)!;
    expect(report.state).toBe('failed');
    expect(report.failure).toMatchObject({ group: 'web', slot: 0, reason: 'could not be started: spawn /srv/app/bin/server ENOENT' });
    expect(w.live().map((x) => x.generation)).toEqual([1]);
  });

  it(`of a crash during the watch keeps the last ${STDERR_TAIL_LINES} lines of its stderr`, () => {
    const verify = { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 5000 };
    const w = runningWorld([groupConfig({ verify, onFailure: 'keep' })]);
    w.current = makeConfig([groupConfig({ verify, onFailure: 'keep' })], 2);
    w.reload();
    w.readyUntilSettled();
    w.advance(100);
    expect(w.state.reload!.order[0]!.state).toBe('watching');
    const stderr = Array.from({ length: STDERR_TAIL_LINES + 5 }, (_, i) => `line ${i + 1}`);
    w.exit(w.live()[0]!.id, 1, null, stderr);
    const report = w.finished.get(1)!;
    expect(report.state).toBe('failed');
    expect(report.failure!.reason).toMatch(/during the 5s watch$/);
    expect(report.failure!.stderrTail).toEqual(stderr.slice(-STDERR_TAIL_LINES));
  });
});
