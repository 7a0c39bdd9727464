/**
 * The listen addresses STATUS shows for a group are those of the generation it
 * shows (its spec), falling back to the group's config only while no spec
 * exists yet (a group a running reload added but has not started). A failed
 * reload with `onFailure: keep` where no new worker got ready leaves the group
 * on the generation it ran: status, the next rollback target and the listen
 * sockets smoothd keeps are the old ones.
 */
import { describe, expect, it } from 'vitest';
import type { ListenEntry } from '../../src/config/types.js';
import { buildStatus } from '../../src/supervisor/status.js';
import { groupConfig, makeConfig, runningWorld, type World } from './harness.js';

const at = (port: number): ListenEntry[] => [
  { name: 'http', text: `127.0.0.1:${port}`, backlog: 511, mode: null, address: { kind: 'tcp', host: '127.0.0.1', port, family: 4, key: `tcp:127.0.0.1:${port}` } },
];
const status = (w: World) => buildStatus(w.state, { pid: 1, version: 't', now: w.now, rss: () => null, bound: (key) => `bound ${key}` });
const groupStatus = (w: World, name = 'web') => status(w).groups.find((g) => g.name === name)!;
/** Every listen key the runtime keeps bound for a group: those of the specs it still knows. */
const heldKeys = (w: World, name = 'web') =>
  [...new Set(Object.values(w.state.groups.find((g) => g.name === name)!.specs).flatMap((s) => s.listen.map((l) => l.address.key)))].sort();

describe('status: the listen addresses of a group', () => {
  it('a group a reload added shows its config listen while an earlier group still rolls', () => {
    const web = groupConfig({ name: 'web', count: 1 });
    const w = runningWorld([web]);
    w.current = makeConfig([web, groupConfig({ name: 'api', count: 1, listen: at(7070) })], 2);
    w.reload();
    expect(w.state.groups.find((g) => g.name === 'api')!.specs).toEqual({});
    expect(groupStatus(w, 'api').listen).toEqual([{ name: 'http', address: '127.0.0.1:7070', bound: 'bound tcp:127.0.0.1:7070' }]);
  });

  it('onFailure keep, no new worker ready: status shows the old generation and the address its workers serve', () => {
    const w = runningWorld([groupConfig({ count: 2, onFailure: 'keep', listen: at(8080) })]);
    w.current = makeConfig([groupConfig({ count: 3, onFailure: 'keep', listen: at(9090) })], 2);
    w.reload();
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    for (const x of w.workers().filter((x) => x.generation === 2)) w.exit(x.id, 0, 'SIGTERM');
    expect(w.live().map((x) => [x.generation, x.phase])).toEqual([
      [1, 'ready'],
      [1, 'ready'],
    ]);
    const g = groupStatus(w);
    expect(g.generation).toBe(1);
    expect(g.desired).toBe(2);
    expect(g.listen).toEqual([{ name: 'http', address: '127.0.0.1:8080', bound: 'bound tcp:127.0.0.1:8080' }]);
    expect(w.state.groups[0]!.slots.map((s) => s.generation)).toEqual([1, 1, 1]);
    // The failed spec is let go, so its listen socket closes.
    expect(Object.keys(w.state.groups[0]!.specs)).toEqual(['1']);
    expect(heldKeys(w)).toEqual(['tcp:127.0.0.1:8080']);
  });

  it('onFailure keep, no new worker ready: a later failed reload rolls back to the generation that served, not the failed one', () => {
    const w = runningWorld([groupConfig({ count: 1, onFailure: 'keep', listen: at(8080) })]);
    w.current = makeConfig([groupConfig({ count: 1, onFailure: 'keep', listen: at(9090) })], 2);
    w.reload();
    w.crash(w.live().find((x) => x.generation === 2)!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    expect(Object.keys(w.state.groups[0]!.specs)).toEqual(['1']);
    w.current = makeConfig([groupConfig({ count: 1, listen: at(6060) })], 3);
    w.reload();
    w.crash(w.live().find((x) => x.generation === 3)!.id);
    expect(w.finished.get(2)!.state).toBe('failed');
    expect(w.finished.get(2)!.groups[0]!.rollback).toMatchObject({ state: 'succeeded', generation: 1 });
    w.readyUntilSettled();
    expect(w.live().map((x) => x.generation)).toEqual([1]);
    expect(groupStatus(w).listen.map((l) => l.address)).toEqual(['127.0.0.1:8080']);
  });

  it('onFailure keep with a new worker ready: mixed generations, status shows the new generation and its address', () => {
    const w = runningWorld([groupConfig({ count: 2, onFailure: 'keep', listen: at(8080) })]);
    w.current = makeConfig([groupConfig({ count: 2, onFailure: 'keep', listen: at(9090) })], 2);
    w.reload();
    w.ready(w.live().find((x) => x.generation === 2)!.id);
    w.crash(w.live().find((x) => x.generation === 2 && x.phase === 'starting')!.id);
    expect(w.finished.get(1)!.state).toBe('failed');
    expect(w.live().map((x) => x.generation).sort()).toEqual([1, 2]);
    const g = groupStatus(w);
    expect(g.generation).toBe(2);
    expect(g.listen).toEqual([{ name: 'http', address: '127.0.0.1:9090', bound: 'bound tcp:127.0.0.1:9090' }]);
    // Both generations serve, so both listen sockets stay.
    expect(heldKeys(w)).toEqual(['tcp:127.0.0.1:8080', 'tcp:127.0.0.1:9090']);
  });
});
