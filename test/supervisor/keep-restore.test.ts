/**
 * `onFailure: keep` returning a group to the generation it ran (failReload):
 * a group the failed reload added has no earlier generation to return to (it
 * keeps the one it was given until it is gone), and only the slots of the
 * failed generation go back, never a slot an earlier kept reload left on an
 * older one (the second case fails if every slot is reset).
 */
import { describe, expect, it } from 'vitest';
import { buildStatus } from '../../src/supervisor/status.js';
import { groupConfig, makeConfig, runningWorld, type World } from './harness.js';

const groupStatus = (w: World, name: string) =>
  buildStatus(w.state, { pid: 1, version: 't', now: w.now, rss: () => null, bound: () => null }).groups.find((g) => g.name === name)!;

describe('onFailure keep: what the group returns to', () => {
  it('a group the failed reload added keeps the generation it was given while it drains, then goes', () => {
    const web = groupConfig({ name: 'web', count: 1 });
    const w = runningWorld([web]);
    w.current = makeConfig([web, groupConfig({ name: 'api', count: 2, onFailure: 'keep' })], 2);
    w.reload();
    w.readyAll('web');
    const api = w.live('api');
    expect(api.map((x) => x.phase)).toEqual(['starting', 'starting']);
    w.proc(api[1]!.id).behavior.drainMs = 300;
    w.crash(api[0]!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    // The other new worker drains; until it is gone the group shows the generation it ran.
    const left = w.workers('api');
    expect(left.map((x) => x.phase)).toEqual(['stopping']);
    const g = groupStatus(w, 'api');
    expect(g.generation).toBe(left[0]!.generation);
    expect(typeof g.generation).toBe('number');
    w.advance(300);
    expect(w.state.groups.map((x) => x.name)).toEqual(['web']);
  });

  it('a slot an earlier kept reload left on an older generation stays on it, and its worker restarts on it', () => {
    const cfg = (release: number) => makeConfig([groupConfig({ count: 2, onFailure: 'keep' })], release);
    const w = runningWorld([groupConfig({ count: 2, onFailure: 'keep' })]);
    // Reload 1 (generation 2): one new worker gets ready, the next fails: both generations serve.
    w.current = cfg(2);
    w.reload();
    w.readyAll();
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    for (const x of w.workers().filter((x) => x.phase === 'stopping')) w.exit(x.id, 0, 'SIGTERM');
    expect(w.live().map((x) => x.generation).sort()).toEqual([1, 2]);
    // Reload 2 (generation 3): its first new worker fails before ready.
    w.current = cfg(3);
    w.reload();
    w.crash(w.live().find((x) => x.generation === 3)!.id);
    expect(w.finished.get(2)!.state).toBe('failed');
    for (const x of w.workers().filter((x) => x.phase === 'stopping')) w.exit(x.id, 0, 'SIGTERM');
    const g = w.state.groups[0]!;
    expect(g.generation).toBe(2);
    const old = w.live().find((x) => x.generation === 1)!;
    expect(g.slots[old.slot]!.generation).toBe(1);
    // The generation-1 worker crashes: its slot starts generation 1 again.
    w.crash(old.id);
    w.advance(60_000);
    const again = w.live().find((x) => x.slot === old.slot)!;
    expect(again.generation).toBe(1);
  });
});
