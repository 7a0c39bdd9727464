/**
 * The progress and report figures of an automatic rollback, and news of a
 * worker the machine does not know.
 */
import { describe, expect, it } from 'vitest';
import { groupConfig, makeConfig, runningWorld } from './harness.js';

describe('an automatic rollback', () => {
  it('keeps the count of workers the reload rolled: the old workers it brings back are not counted as rolled', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2 })], 2);
    w.reload();
    w.readyAll(); // worker 3 (slot 0) ready on generation 2; worker 4 starts in slot 1
    w.crash(4); // fails the reload: slot 0 rolls back to generation 1
    w.readyUntilSettled();
    w.advance(1000);
    const report = w.finished.get(1)!;
    expect(report).toMatchObject({ state: 'failed', done: 1, total: 2, rollback: { state: 'succeeded' } });
    expect(report.groups[0]).toMatchObject({ name: 'web', state: 'failed', done: 1, total: 2, rollback: { state: 'succeeded', generation: 1 } });
    const ready = w.progress.filter((p) => p.event.step === 'worker.ready').map((p) => [p.event.workerId, p.event.generation, p.event.done]);
    expect(ready).toEqual([
      [3, 2, 1],
      [5, 1, 1],
    ]);
    expect(w.live().map((x) => x.generation)).toEqual([1, 1]);
  });
});

describe('news of a worker the machine does not know', () => {
  it('a spawned event for an unknown worker changes nothing', () => {
    const w = runningWorld([groupConfig()]);
    const before = w.state;
    expect(w.send({ type: 'worker.spawned', workerId: 99, pid: 4242 })).toEqual([]);
    expect(w.state.workers).toEqual(before.workers);
  });
});
