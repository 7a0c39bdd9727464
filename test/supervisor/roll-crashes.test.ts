/**
 * Crashes while a reload or its automatic rollback is under way: the roll
 * or the rollback refills the slot (no crash backoff is scheduled), and a
 * failure report keeps the last 20 lines of stderr.
 */
import { describe, expect, it } from 'vitest';
import { STDERR_TAIL_LINES } from '../../src/supervisor/machine.js';
import { groupConfig, makeConfig, runningWorld } from './harness.js';

const backoffs = (keys: string[]) => keys.filter((k) => k.startsWith('backoff:'));

describe('a crash during a reload', () => {
  it('of an old worker of the group being rolled: the roll starts its replacement on the new generation at once, no backoff', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2 })], 2);
    w.reload(); // worker 3 (generation 2) starts in slot 0; old workers 1 and 2 serve
    w.crash(2);
    expect(backoffs(w.armed())).toEqual([]);
    expect(w.state.groups[0]!.slots[1]!.backoffUntil).toBeNull();
    expect(w.live().map((x) => [x.id, x.slot, x.generation])).toEqual([
      [1, 0, 1],
      [3, 0, 2],
      [4, 1, 2],
    ]);
    w.readyUntilSettled();
    w.advance(1000);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', failure: null });
    expect(w.live().map((x) => x.generation)).toEqual([2, 2]);
    expect(w.violations).toEqual([]);
  });

  it('of a new worker of a group waiting for its automatic rollback: no backoff, the rollback brings the slot back', () => {
    const groups = ['web', 'api', 'db'].map((name) => groupConfig({ name }));
    const w = runningWorld(groups);
    w.behave = (sp) => (sp.group === 'db' && sp.generation === 2 ? { spawnFails: 'spawn /usr/bin/node ENOENT' } : {});
    w.current = makeConfig(groups, 2);
    w.reload();
    w.readyAll('web');
    w.readyAll('api'); // web and api rolled; db fails at spawn: api rolls back first, web waits
    expect(w.state.reload!.rollback!.queue).toEqual(['api', 'web']);
    const web2 = w.live('web')[0]!;
    expect(web2.generation).toBe(2);
    w.crash(web2.id);
    expect(backoffs(w.armed())).toEqual([]);
    expect(w.state.groups.find((g) => g.name === 'web')!.slots[0]!.backoffUntil).toBeNull();
    for (let i = 0; i < 10; i++) {
      w.advance(500);
      w.readyAll();
    }
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(w.live().map((x) => [x.group, x.generation]).sort()).toEqual([
      ['api', 1],
      ['db', 1],
      ['web', 1],
    ]);
    expect(w.violations).toEqual([]);
  });

  it(`keeps the last ${STDERR_TAIL_LINES} lines of the failing worker's stderr in the report`, () => {
    const w = runningWorld([groupConfig({ onFailure: 'keep' })]);
    w.current = makeConfig([groupConfig({ onFailure: 'keep' })], 2);
    w.reload();
    const fresh = w.live().find((x) => x.generation === 2)!;
    const stderr = Array.from({ length: 25 }, (_, i) => `line ${i + 1}`);
    w.exit(fresh.id, 1, null, stderr);
    expect(w.finished.get(1)!.failure!.stderrTail).toEqual(stderr.slice(5));
  });
});
