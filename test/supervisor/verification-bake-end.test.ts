/**
 * What the end of a bake leaves behind (DESIGN §10): the status line says the
 * group rolls on, and while a failed reload rolls back, the new workers of
 * a group that rolled fine are not judged on their counters any more.
 */
import { describe, expect, it } from 'vitest';
import type { GroupConfig, VerifyPolicy } from '../../src/config/types.js';
import { statusLine } from '../../src/supervisor/machine.js';
import { groupConfig, makeConfig, runningWorld, type World } from './harness.js';

const verify = (v: Partial<VerifyPolicy>): VerifyPolicy => ({ bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 0, ...v });
const ipc = { kind: 'ipc' } as const;

function world(groups: Partial<GroupConfig>[], next: (g: Partial<GroupConfig>) => Partial<GroupConfig>): World {
  const w = runningWorld(groups.map((g) => groupConfig(g)));
  w.current = makeConfig(
    groups.map((g) => groupConfig({ ...g, ...next(g) })),
    2,
  );
  return w;
}

describe('the end of a bake', () => {
  it('once the bake passed, the status line says the group is being reloaded, no longer verified', () => {
    const w = world([{ count: 2, ready: ipc }], () => ({ verify: verify({ bakeMs: 3_000 }) }));
    for (const p of w.procs.values()) p.behavior.drainMs = 1_000;
    w.reload();
    w.readyAll();
    expect(statusLine(w.state, w.now)).toBe('verifying web: canary 0 s of 3 s');
    w.advance(3_000);
    expect(statusLine(w.state, w.now)).toMatch(/^reloading web: \d\/2 replaced$/);
  });

  it('during a rollback, a new worker of a group that rolled fine is not judged on its counters', () => {
    const groups = [
      { name: 'web', count: 1, ready: ipc },
      { name: 'api', count: 1, ready: ipc },
    ];
    const w = world(groups, () => ({ verify: verify({ maxErrorRate: 0.1, minRequests: 5 }) }));
    for (const p of w.procs.values()) p.behavior.drainMs = 1_000;
    w.reload();
    w.readyUntilSettled('web');
    w.readyAll('api');
    const webNew = w.live('web').find((x) => x.generation === 2 && x.phase === 'ready')!;
    const apiNew = w.live('api').find((x) => x.generation === 2 && x.phase === 'ready')!;
    w.send({ type: 'worker.stats', workerId: apiNew.id, requests: 10, errors: 5 });
    expect(w.state.reload!.rollback).not.toBeNull();
    const failedBefore = w.progress.filter((p) => p.event.step === 'verify.failed').length;
    expect(failedBefore).toBe(1);
    // The failing group is rolled back first: web's new worker still serves.
    expect(w.workers().find((x) => x.id === webNew.id)!.phase).toBe('ready');
    w.send({ type: 'worker.stats', workerId: webNew.id, requests: 10, errors: 9 });
    expect(w.progress.filter((p) => p.event.step === 'verify.failed')).toHaveLength(1);
    w.autoReady = true;
    w.readyUntilSettled();
    w.advance(30_000);
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('failed');
    expect(rep.failure).toMatchObject({ group: 'api', workerId: apiNew.id });
    expect(rep.failure!.reason).toContain('answered 50.0% errors (5 of 10)');
  });
});
