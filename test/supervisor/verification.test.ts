/**
 * Deploy verification and automatic rollback in the machine (DESIGN §10),
 * driven with fake processes and a fake clock: the bake holds the roll at one
 * canary, the error budget judges every new worker, the watch catches a crash
 * after the roll, and a failed reload rolls every group it rolled back to the
 * generation each ran before, under the same rolling policy.
 */
import { describe, expect, it } from 'vitest';
import type { GroupConfig, VerifyPolicy } from '../../src/config/types.js';
import { statusLine } from '../../src/supervisor/machine.js';
import { groupConfig, makeConfig, runningWorld, type World } from './harness.js';

const verify = (v: Partial<VerifyPolicy>): VerifyPolicy => ({ bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 0, ...v });

/** A running world whose next reload rolls to release 2 with `next` applied to every group. */
function world(groups: Partial<GroupConfig>[], next: Partial<GroupConfig> = {}): World {
  const w = runningWorld(groups.map((g) => groupConfig(g)));
  w.current = makeConfig(
    groups.map((g) => groupConfig({ ...g, ...next })),
    2,
  );
  return w;
}

const steps = (w: World, id = 1) => w.progress.filter((p) => p.reloadId === id).map((p) => p.event.step);
const gens = (w: World, group?: string) => w.live(group).map((x) => x.generation).sort();

/** Old workers take this long to drain, so the reload is still on when later reports come. */
function slowDrain(w: World, ms = 1000): void {
  for (const p of w.procs.values()) p.behavior.drainMs = ms;
}

function stats(w: World, workerId: number, requests: number, errors: number): void {
  w.send({ type: 'worker.stats', workerId, requests, errors });
}

describe('bake', () => {
  it('holds the roll at one canary until it has been ready for bake, whatever surge says', () => {
    const w = world([{ count: 3, rolling: { surge: 3, unavailable: 0 }, ready: { kind: 'ipc' } }], { verify: verify({ bakeMs: 10_000 }) });
    w.reload();
    const fresh = () => w.live().filter((x) => x.generation === 2);
    expect(fresh()).toHaveLength(1); // surge 3 would have started three
    w.readyAll();
    expect(steps(w)).toContain('bake.started');
    expect(w.state.reload!.order[0]!.state).toBe('verifying');
    expect(fresh()).toHaveLength(1);
    expect(w.live().filter((x) => x.generation === 1)).toHaveLength(3); // no old worker stopped during the bake
    w.advance(9_999);
    expect(fresh()).toHaveLength(1);
    w.advance(1);
    expect(steps(w)).toContain('bake.passed');
    expect(fresh()).toHaveLength(3);
    w.readyAll();
    w.advance(30_000);
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('succeeded');
    expect(rep.groups[0]!.verification).toMatchObject({ bakeMs: 10_000, canary: { workerId: 4 }, verdict: 'passed' });
    expect(w.violations).toEqual([]);
  });

  it('in the Workerman order stops one old worker for the canary, then none until the bake passed', () => {
    const w = world([{ count: 3, rolling: { surge: 0, unavailable: 1 } }], { verify: verify({ bakeMs: 5000 }) });
    w.reload();
    expect(w.live().filter((x) => x.generation === 1)).toHaveLength(2);
    w.advance(10);
    w.readyAll();
    expect(w.live().filter((x) => x.generation === 2)).toHaveLength(1);
    expect(w.live().filter((x) => x.generation === 1)).toHaveLength(2);
    w.advance(4000);
    expect(w.live().filter((x) => x.generation === 1)).toHaveLength(2);
  });

  it('a canary that crashes during its bake fails the reload and rolls the group back', () => {
    const w = world([{ count: 2 }], { verify: verify({ bakeMs: 10_000 }) });
    const oldIds = w.live().map((x) => x.id);
    w.reload();
    w.readyAll();
    const canary = w.live().find((x) => x.generation === 2)!;
    w.advance(5000);
    w.crash(canary.id, ['boom']);
    w.advance(100);
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('failed');
    expect(rep.failure).toMatchObject({ workerId: canary.id, stderrTail: ['boom'] });
    expect(rep.groups[0]!.verification.verdict).toBe('failed');
    // Nothing to respawn: both old workers still serve (no old worker was stopped during the bake).
    expect(rep.rollback).toMatchObject({ state: 'succeeded' });
    expect(rep.groups[0]!.rollback).toEqual({ state: 'succeeded', generation: 1 });
    expect(w.live().map((x) => x.id)).toEqual(oldIds);
    expect(w.state.groups[0]!.generation).toBe(1);
  });
});

describe('error budget', () => {
  const ipc = { kind: 'ipc' } as const;

  it('fails the canary strictly above maxErrorRate once it has minRequests, with the old workers beside it', () => {
    const w = world([{ count: 2, ready: ipc }], { verify: verify({ bakeMs: 10_000, maxErrorRate: 0.1, minRequests: 20 }) });
    stats(w, 1, 100, 0);
    stats(w, 2, 100, 1);
    w.reload();
    w.readyAll();
    const canary = w.live().find((x) => x.generation === 2)!;
    stats(w, canary.id, 10, 9); // below minRequests: not judged yet
    expect(w.finished.has(1)).toBe(false);
    stats(w, 1, 600, 0);
    stats(w, 2, 600, 1);
    stats(w, canary.id, 20, 2); // exactly 10%: not above
    expect(w.finished.has(1)).toBe(false);
    stats(w, canary.id, 30, 4); // 13.3%
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('failed');
    expect(rep.errorCode).toBe(-32001);
    expect(rep.failure!.reason).toBe('answered 13.3% errors (4 of 30), above maxErrorRate 10.0%; old workers over the same window: 0.0% errors (0 of 1000)');
    expect(rep.groups[0]!.verification).toEqual({
      bakeMs: 10_000,
      canary: { workerId: canary.id, requests: 30, errors: 4 },
      old: { requests: 1000, errors: 0 },
      verdict: 'failed',
    });
    expect(steps(w)).toEqual(expect.arrayContaining(['bake.started', 'verify.failed', 'rollback.started', 'rollback.done']));
    expect(gens(w)).toEqual([1, 1]);
  });

  it('judges counters since ready: errors a worker made while starting do not count', () => {
    const w = world([{ count: 1, ready: ipc }], { verify: verify({ maxErrorRate: 0.05, minRequests: 10 }) });
    slowDrain(w);
    w.reload();
    const n = w.live().find((x) => x.generation === 2)!;
    stats(w, n.id, 50, 50); // before ready
    w.ready(n.id);
    stats(w, n.id, 70, 50); // 20 requests since ready, 0 errors
    w.advance(30_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded' });
    expect(w.finished.get(1)!.groups[0]!.verification.verdict).toBe('passed');
  });

  it('judges every new worker of the roll, not just the canary', () => {
    const w = world([{ count: 2, ready: ipc }], { verify: verify({ maxErrorRate: 0.05, minRequests: 10 }) });
    slowDrain(w);
    w.reload();
    w.readyAll(); // canary ready; old slot 0 retired; second new worker starting
    const second = w.live().find((x) => x.generation === 2 && x.phase === 'starting')!;
    w.ready(second.id);
    stats(w, second.id, 10, 5);
    expect(steps(w)).toContain('rollback.started');
    w.autoReady = true;
    w.readyAll();
    w.advance(5000);
    w.readyAll();
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(gens(w)).toEqual([1, 1]);
    expect(w.finished.get(1)!.failure!.workerId).toBe(second.id);
  });

  it('a bake that ends below minRequests passes as insufficient-data', () => {
    const w = world([{ count: 1, ready: ipc }], { verify: verify({ bakeMs: 1000, maxErrorRate: 0.05, minRequests: 20 }) });
    w.reload();
    w.readyAll();
    stats(w, w.live().find((x) => x.generation === 2)!.id, 3, 0);
    w.advance(1000);
    w.readyAll();
    w.advance(30_000);
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('succeeded');
    expect(rep.groups[0]!.verification.verdict).toBe('insufficient-data');
    expect(w.progress.find((p) => p.event.step === 'bake.passed')!.event.message).toMatch(/fewer than 20 responses/);
  });
});

describe('watch', () => {
  it('a crash of a new worker within the watch fails the deploy and rolls it back; the reply waits for the watch', () => {
    const w = world([{ count: 2 }], { verify: verify({ watchMs: 60_000 }) });
    w.autoReady = true;
    w.reload();
    w.readyAll();
    w.advance(100);
    expect(w.finished.has(1)).toBe(false);
    expect(w.state.reload!.order[0]!.state).toBe('watching');
    expect(steps(w)).toContain('watch.started');
    w.advance(10_000);
    const victim = w.live().find((x) => x.generation === 2)!;
    w.crash(victim.id, ['segfault']);
    w.advance(100);
    w.readyAll();
    w.advance(30_000);
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('failed');
    expect(rep.failure!.reason).toMatch(/during the 1m watch|during the 60s watch/);
    expect(rep.rollback).toMatchObject({ state: 'succeeded' });
    expect(gens(w)).toEqual([1, 1]);
    expect(w.state.groups[0]!.generation).toBe(1);
  });

  it('after the watch a crash is an ordinary crash: restarted, no rollback', () => {
    const w = world([{ count: 2 }], { verify: verify({ watchMs: 5000 }) });
    w.autoReady = true;
    w.reload();
    w.readyAll();
    w.advance(5100);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', rollback: null });
    expect(steps(w)).toContain('watch.passed');
    w.crash(w.live()[0]!.id);
    w.advance(1000);
    expect(gens(w)).toEqual([2, 2]);
    expect(w.finished.size).toBe(1);
  });

  it('a reload asked for during the watch joins the queued follow-up', () => {
    const w = world([{ count: 1 }], { verify: verify({ watchMs: 5000 }) });
    w.autoReady = true;
    w.reload(null, 50);
    w.readyAll();
    w.advance(100);
    w.reload(null, 51);
    expect(w.accepted(51)).toMatchObject({ state: 'queued', reloadId: 2 });
    w.advance(5000);
    w.readyAll();
    w.advance(6000);
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.finished.get(2)!.state).toBe('succeeded');
  });
});

describe('rollback', () => {
  it('returns every slot of every rolled group to its previous generation: the failing group first, then the others', () => {
    const w = world([{ name: 'web', count: 2 }, { name: 'api', count: 2 }]);
    w.autoReady = true;
    w.behave = (sp) => (sp.group === 'api' && sp.generation === 2 && sp.slot === 1 ? { spawnFails: 'spawn ENOENT' } : {});
    w.reload();
    w.readyAll();
    for (let i = 0; i < 20; i++) {
      w.advance(500);
      w.readyAll();
    }
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('failed');
    expect(rep.groups.map((g) => [g.name, g.state, g.rollback])).toEqual([
      ['web', 'rolled', { state: 'succeeded', generation: 1 }],
      ['api', 'failed', { state: 'succeeded', generation: 1 }],
    ]);
    expect(rep.rollback).toMatchObject({ state: 'succeeded' });
    expect(rep.rollback!.durationMs).toBeGreaterThanOrEqual(0);
    const rb = w.progress.filter((p) => p.event.step === 'rollback.started' && p.event.group !== null).map((p) => p.event.group);
    expect(rb).toEqual(['api', 'web']);
    expect(gens(w, 'web')).toEqual([1, 1]);
    expect(gens(w, 'api')).toEqual([1, 1]);
    // Rolled-back workers run their old generation's spec and number.
    const last = w.effectsOf('spawn').filter((s) => s.group === 'web').at(-1)!;
    expect(last).toMatchObject({ generation: 1, spec: { cwdReal: '/srv/app/releases/1' } });
    expect(w.violations).toEqual([]);
  });

  it('the next reload takes a new, higher generation number', () => {
    const w = world([{ count: 1, readyTimeoutMs: 1000 }]);
    w.reload();
    w.advance(1000); // the new worker misses readyTimeout
    w.advance(1000);
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(w.state.groups[0]!.generation).toBe(1);
    w.autoReady = true;
    w.current = makeConfig([groupConfig({ count: 1 })], 3);
    w.reload();
    w.readyAll();
    w.advance(30_000);
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', groups: [{ generation: 3 }] });
    expect(gens(w)).toEqual([3]);
  });

  it('restores the previous generation\'s settings: surplus workers of a raised count are drained', () => {
    const w = world([{ count: 1, ready: { kind: 'ipc' } }], { count: 3, verify: verify({ maxErrorRate: 0.01, minRequests: 5 }) });
    slowDrain(w);
    w.reload();
    w.readyAll();
    expect(w.live().filter((x) => x.generation === 2 && x.phase === 'ready').length).toBeGreaterThanOrEqual(2);
    const bad = w.live().filter((x) => x.generation === 2 && x.phase === 'ready');
    stats(w, bad.at(-1)!.id, 5, 5);
    w.autoReady = true;
    for (let i = 0; i < 10; i++) {
      w.advance(1000);
      w.readyAll();
    }
    const rep = w.finished.get(1)!;
    expect(rep).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(w.state.groups[0]!.config.count).toBe(1);
    expect(w.live().map((x) => [x.slot, x.generation])).toEqual([[0, 1]]);
  });

  it('an in-place deploy (same folder, command and environment) is not respawned: rollback skipped, with why', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2 })], 1); // same release folder: files changed in place
    w.autoReady = true;
    w.behave = (sp) => (sp.generation === 2 && sp.slot === 1 ? { spawnFails: 'spawn ENOENT' } : {});
    w.reload();
    for (let i = 0; i < 10; i++) {
      w.advance(500);
      w.readyAll();
    }
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('failed');
    expect(rep.rollback).toMatchObject({ state: 'skipped' });
    expect(rep.groups[0]!.rollback).toMatchObject({ state: 'skipped', generation: 1, reason: expect.stringMatching(/in-place deploy.*releases\/N behind a current symlink/) });
    expect(w.live()).toHaveLength(2); // count still covered, nothing respawned
  });

  it('a worker of the previous generation failing too: ROLLBACK_FAILED, mixed generations serve', () => {
    const w = world([{ count: 2, readyTimeoutMs: 1000 }]);
    w.autoReady = true;
    let n = 0;
    // generation 2's second worker fails; then the rollback's first worker of generation 1 fails too
    w.behave = (sp) => {
      if (sp.generation === 2 && sp.slot === 1) return { spawnFails: 'spawn ENOENT' };
      if (sp.generation === 1 && n++ === 0) return { spawnFails: 'cwd /srv/app/releases/1 does not exist (ENOENT)' };
      return {};
    };
    w.reload();
    for (let i = 0; i < 10; i++) {
      w.advance(500);
      w.readyAll();
    }
    const rep = w.finished.get(1)!;
    expect(rep.state).toBe('failed');
    expect(rep.errorCode).toBe(-32009);
    expect(rep.rollback).toMatchObject({ state: 'failed' });
    expect(rep.error).toMatch(/the rollback failed too .*mixed generations serve/);
  });

  it('onFailure: keep leaves ready new workers (mixed generations) and reports no rollback', () => {
    const w = world([{ count: 2, readyTimeoutMs: 1000 }], { onFailure: 'keep' });
    w.reload();
    w.readyAll();
    w.advance(1000);
    const rep = w.finished.get(1)!;
    expect(rep).toMatchObject({ state: 'failed', rollback: null });
    expect(gens(w)).toEqual([1, 2]);
  });

  it('a group added by the failed reload is removed again', () => {
    const w = runningWorld([groupConfig({ name: 'web' })]);
    w.current = makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'api', readyTimeoutMs: 1000 })], 2);
    w.autoReady = true;
    w.behave = (sp) => (sp.group === 'api' ? { spawnFails: 'spawn ENOENT' } : {});
    w.reload();
    for (let i = 0; i < 10; i++) {
      w.advance(500);
      w.readyAll();
    }
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    expect(w.state.groups.map((g) => g.name)).toEqual(['web']);
    expect(gens(w, 'web')).toEqual([1]);
  });
});

describe('rollback on purpose (smoothctl rollback)', () => {
  const target = (w: World, generation: number) => {
    const h = w.state.groups[0]!.history.find((x) => x.generation === generation)!;
    return [{ group: 'web', generation, spec: h.spec }];
  };

  it('rolls back to an existing generation without a new number; asked for during a reload it waits as its own item', () => {
    const w = world([{ count: 2 }]);
    w.autoReady = true;
    w.reload();
    w.advance(1000);
    expect(w.state.groups[0]!.generation).toBe(2);
    for (const p of w.procs.values()) p.behavior.drainMs = 500;
    w.current = makeConfig([groupConfig({ count: 2 })], 3);
    w.reload(null, 70); // reload 2 runs (to generation 3)
    w.send({ type: 'rollback.request', requestId: 71, targets: target(w, 1) });
    expect(w.accepted(71)).toMatchObject({ state: 'queued', reloadId: 3 });
    w.reload(null, 72); // joins the follow-up reload, not the rollback
    expect(w.accepted(72)).toMatchObject({ state: 'queued', reloadId: 4 });
    for (let i = 0; i < 20; i++) {
      w.advance(500);
      w.readyAll();
    }
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', groups: [{ generation: 3 }] });
    expect(w.finished.get(3)).toMatchObject({ state: 'succeeded', trigger: 'rollback', groups: [{ generation: 1 }] });
    expect(w.finished.get(4)).toMatchObject({ state: 'succeeded', groups: [{ generation: 4 }] });
    expect(w.finishedOrder).toEqual([1, 2, 3, 4]);
    expect(gens(w)).toEqual([4, 4]);
    expect(w.violations).toEqual([]);
  });
});

describe('rollback on purpose, queued behind a reload that failed', () => {
  it('finds its group already back on the target (the reload was rolled back to it): skipped, nothing respawned', () => {
    const w = world([{ count: 2, readyTimeoutMs: 1000 }]);
    w.behave = (sp) => (sp.generation === 2 ? { crashAfterMs: 300 } : {});
    w.reload(); // reload 1 rolls to generation 2, which exits before it is ready
    const h1 = w.state.groups[0]!.history.find((x) => x.generation === 1)!;
    w.send({ type: 'rollback.request', requestId: 90, targets: [{ group: 'web', generation: 1, spec: h1.spec }] });
    expect(w.accepted(90)).toMatchObject({ state: 'queued', reloadId: 2 });
    for (let i = 0; i < 10; i++) {
      w.advance(500);
      w.readyAll();
    }
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    const spawnsBefore = w.effectsOf('spawn').length;
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', trigger: 'rollback', groups: [{ name: 'web', state: 'skipped' }] });
    expect(w.workers().filter((x) => x.startedBy === 2)).toEqual([]);
    expect(w.effectsOf('spawn').length).toBe(spawnsBefore);
    expect(gens(w)).toEqual([1, 1]);
    expect(w.state.groups[0]!.generation).toBe(1);
    expect(w.violations).toEqual([]);
  });
});

describe('reloads asked for during a rollback on purpose', () => {
  it('join the single follow-up reload, which starts when the rollback ends and takes a new number', () => {
    const w = world([{ count: 2 }]);
    w.autoReady = true;
    w.reload();
    w.advance(1000);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded', groups: [{ generation: 2 }] });
    for (const p of w.procs.values()) p.behavior.drainMs = 500;
    w.autoReady = false;
    const h1 = w.state.groups[0]!.history.find((x) => x.generation === 1)!;
    w.send({ type: 'rollback.request', requestId: 80, targets: [{ group: 'web', generation: 1, spec: h1.spec }] });
    expect(w.accepted(80)).toMatchObject({ state: 'running', reloadId: 2 });
    expect(statusLine(w.state, w.now)).toBe('rolling back web to generation 1: 0/2 replaced'); // systemd's STATUS=
    w.current = makeConfig([groupConfig({ count: 2 })], 3);
    w.reload(null, 81);
    w.reload(null, 82);
    expect(w.accepted(81)).toMatchObject({ state: 'queued', reloadId: 3 });
    expect(w.accepted(82)).toMatchObject({ state: 'queued', reloadId: 3 });
    expect(w.loads).toEqual([1]); // the follow-up reads the config only when the rollback is over
    for (let i = 0; i < 20; i++) {
      w.advance(500);
      w.readyAll();
    }
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', trigger: 'rollback', groups: [{ state: 'rolled', generation: 1 }] });
    expect(w.finished.get(3)).toMatchObject({ state: 'succeeded', groups: [{ generation: 3 }] });
    expect(w.finishedOrder).toEqual([1, 2, 3]);
    expect(gens(w)).toEqual([3, 3]);
    expect(w.violations).toEqual([]);
  });
});
