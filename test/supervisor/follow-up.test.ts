/**
 * A reload asked for during a canary's bake, or during the automatic rollback
 * of a failed reload, joins the single queued follow-up (DESIGN §5, §10): it
 * never starts a second roll at once and every caller gets the follow-up's result.
 */
import { describe, expect, it } from 'vitest';
import { groupConfig, makeConfig, runningWorld } from './harness.js';

const verify = { bakeMs: 10_000, maxErrorRate: null, minRequests: 20, watchMs: 0 };

describe('reloads asked for during verification', () => {
  it('during the bake: queued as one follow-up that starts when the reload ends', () => {
    const w = runningWorld([groupConfig({ count: 2, ready: { kind: 'ipc' } })]);
    w.current = makeConfig([groupConfig({ count: 2, ready: { kind: 'ipc' }, verify })], 2);
    w.reload(null, 60);
    w.readyAll();
    expect(w.state.reload!.order[0]!.state).toBe('verifying');
    w.reload(null, 61);
    w.reload(null, 62);
    expect(w.accepted(61)).toMatchObject({ state: 'queued', reloadId: 2 });
    expect(w.accepted(62)).toMatchObject({ state: 'queued', reloadId: 2 });
    // Still one canary: the follow-up did not start a second roll.
    expect(w.live().filter((x) => x.generation === 2)).toHaveLength(1);
    w.autoReady = true;
    w.advance(10_000);
    w.advance(30_000);
    expect(w.finished.get(1)!.state).toBe('succeeded');
    w.advance(30_000);
    expect(w.finished.get(2)!.state).toBe('succeeded');
    expect(w.finished.has(3)).toBe(false);
    expect(w.violations).toEqual([]);
  });

  it('during the automatic rollback of a failed reload: queued, and it starts only once the group is back', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2, verify: { ...verify, bakeMs: 0, watchMs: 60_000 } })], 2);
    w.autoReady = true;
    w.reload(null, 70);
    w.advance(1000);
    expect(w.state.reload!.order[0]!.state).toBe('watching');
    w.autoReady = false;
    w.crash(w.live().find((x) => x.generation === 2)!.id);
    w.advance(10);
    expect(w.state.reload!.rollback).not.toBeNull();
    w.reload(null, 71);
    expect(w.accepted(71)).toMatchObject({ state: 'queued', reloadId: 2 });
    expect(w.workers().some((x) => x.generation === 3)).toBe(false);
    w.autoReady = true;
    w.readyAll();
    w.advance(30_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });
    // The follow-up re-reads the config and rolls to a new, higher number after the rollback ended.
    w.advance(120_000);
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded', groups: [{ generation: 3 }] });
    expect(w.violations).toEqual([]);
  });
});
