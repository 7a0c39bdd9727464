/**
 * A new worker that fails its judgement after the canary's bake passed
 * (DESIGN §10): the reload fails on it, the report's verdict is `failed`
 * (not the bake's earlier pass), the `verify.failed` progress step names the
 * worker and why, and the failure carries no stderr (the worker did not crash).
 * And the bake's journal lines, and which old workers are told to stop shedding.
 */
import { describe, expect, it } from 'vitest';
import { groupConfig, makeConfig, runningWorld } from './harness.js';

describe('a new worker failing its judgement after the bake', () => {
  it('fails the reload with verdict failed, a verify.failed step naming the worker and an empty stderr tail', () => {
    const verify = { bakeMs: 2_000, maxErrorRate: 0.1, minRequests: 5, watchMs: 0 };
    const w = runningWorld([groupConfig({ count: 2 })]);
    for (const p of w.procs.values()) p.behavior.drainMs = 5_000;
    w.current = makeConfig([groupConfig({ count: 2, verify })], 2);
    w.reload();
    w.readyAll();
    const canary = w.live().find((x) => x.generation === 2)!;
    w.send({ type: 'worker.stats', workerId: canary.id, requests: 10, errors: 0 });
    w.advance(2_000);
    expect(w.progress.map((p) => p.event.step)).toContain('bake.passed');
    // The journal lines an operator reads for the bake: its start (which worker, how long) and its end (the figures).
    const logs = w.effectsOf('log').filter((e) => e.msg.startsWith('canary ready') || e.msg.startsWith('bake passed'));
    expect(logs).toEqual([
      { type: 'log', level: 'info', msg: 'canary ready: baking before the roll goes on', fields: { group: 'web', workerId: canary.id, pid: canary.pid, bakeMs: 2_000 } },
      { type: 'log', level: 'info', msg: 'bake passed: the roll goes on', fields: { group: 'web', canary: canary.id, requests: 10, errors: 0, verdict: 'passed' } },
    ]);
    w.readyAll();
    const second = w.live().find((x) => x.generation === 2 && x.id !== canary.id)!;
    expect(second.phase).toBe('ready');
    expect(w.state.reload).toMatchObject({ id: 1, phase: 'draining' });
    w.send({ type: 'worker.stats', workerId: second.id, requests: 10, errors: 5 });
    const failed = w.progress.filter((p) => p.event.step === 'verify.failed');
    expect(failed.map((p) => [p.event.group, p.event.message])).toEqual([
      ['web', `web: worker ${second.id} answered 50.0% errors (5 of 10), above maxErrorRate 10.0%; old workers over the same window: no responses`],
    ]);
    w.readyUntilSettled();
    w.advance(30_000);
    const rep = w.finished.get(1)!;
    expect(rep).toMatchObject({ state: 'failed', failure: { group: 'web', workerId: second.id, stderrTail: [] } });
    expect(rep.groups[0]!.verification).toMatchObject({ verdict: 'failed', canary: { workerId: canary.id, requests: 10, errors: 0 } });
  });
});

describe('the end of the shedding at the bake', () => {
  it('only old workers still serving are told to stop shedding; the rest of a crashed one, stopping, is not', () => {
    const verify = { bakeMs: 2_000, maxErrorRate: null, minRequests: 5, watchMs: 0 };
    const w = runningWorld([groupConfig({ count: 2 })]);
    const [a, b] = w.live();
    w.proc(b!.id).behavior.straggler = 'drains';
    w.proc(b!.id).behavior.drainMs = 10_000;
    w.current = makeConfig([groupConfig({ count: 2, verify })], 2);
    w.reload();
    w.readyAll();
    expect(w.effectsOf('worker.shed')).toEqual([
      { type: 'worker.shed', workerId: a!.id, share: 0.1 },
      { type: 'worker.shed', workerId: b!.id, share: 0.1 },
    ]);
    // b's leader crashes; its process group lives on and is being stopped.
    w.crash(b!.id);
    expect(w.workers().find((x) => x.id === b!.id)).toMatchObject({ phase: 'stopping' });
    const from = w.effects.length;
    w.advance(2_000);
    expect(w.progress.map((p) => p.event.step)).toContain('bake.passed');
    expect(w.effectsOf('worker.shed', from)).toEqual([{ type: 'worker.shed', workerId: a!.id, share: 0 }]);
    w.advance(10_000);
    w.readyUntilSettled();
    w.advance(30_000);
    expect(w.finished.get(1)!.state).toBe('succeeded');
    expect(w.violations).toEqual([]);
  });
});
