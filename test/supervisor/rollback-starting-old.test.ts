/**
 * A rollback judges only the workers it starts itself: an old worker that was
 * still starting (a crash restart) when the reload began, and crashes before it
 * is ready while the rollback runs, does not make the rollback fail.
 */
import { describe, expect, it } from 'vitest';
import { groupConfig, makeConfig, runningWorld } from './harness.js';

describe('a rollback', () => {
  it('is not failed by an old worker that was already starting before the reload and crashes before it is ready', () => {
    const g = groupConfig({ count: 2 });
    const w = runningWorld([g]);
    w.crash(w.live().find((x) => x.slot === 1)!.id);
    w.advance(100); // slot 1 restarts: a generation-1 worker, not ready yet
    const old = w.live().find((x) => x.slot === 1 && x.phase === 'starting')!;
    w.current = makeConfig([g], 2);
    w.reload();
    w.crash(w.live().find((x) => x.generation === 2)!.id); // the new worker fails: roll back to generation 1
    expect(w.state.reload!.phase).toBe('rollingBack');
    w.crash(old.id);
    expect(w.state.reload!.rollback!.failed).toBeNull();
    w.readyUntilSettled();
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(report.failure!.reason).toMatch(/before it was ready$/);
    expect(w.live().map((x) => [x.slot, x.generation])).toEqual([
      [0, 1],
      [1, 1],
    ]);
    expect(w.violations).toEqual([]);
  });
});
