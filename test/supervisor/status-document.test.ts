/**
 * The status document field by field (DESIGN §6): every value the pure
 * builder computes is asserted exactly, so a changed sort, time, fallback or
 * pseudo-worker field fails here (these were surviving mutants of status.ts).
 */
import { describe, it, expect } from 'vitest';
import { buildStatus, type StatusInputs } from '../../src/supervisor/status.js';
import { groupConfig, makeConfig, runningWorld, type World } from './harness.js';

const T0 = 1_700_000_000_000;
const io = (w: World, extra: Partial<StatusInputs> = {}): StatusInputs => ({
  pid: 4242,
  version: '9.9.9',
  now: w.now,
  rss: (pid) => pid * 10,
  bound: (key) => (key === 'tcp:127.0.0.1:0' ? '127.0.0.1:41234' : null),
  ...extra,
});
const iso = (t: number) => new Date(t).toISOString();

describe('status document', () => {
  it('carries the daemon fields, the uptime and each worker exactly', () => {
    const listen = [{ name: 'http', text: '127.0.0.1:0', address: { kind: 'tcp', host: '127.0.0.1', port: 0, key: 'tcp:127.0.0.1:0' } }];
    const w = runningWorld([groupConfig({ name: 'web', count: 2, listen: listen as never })]);
    w.advance(1500);
    const st = buildStatus(w.state, io(w));
    expect(st.version).toBe(1);
    expect(st.daemon).toEqual({
      pid: 4242,
      version: '9.9.9',
      state: 'running',
      startedAt: iso(T0),
      uptimeMs: 1500,
      platform: 'linux',
      configPath: '/etc/smoothd/smoothd.yaml',
    });
    const [g] = st.groups;
    expect({ ...g, workers: undefined, history: undefined }).toEqual({
      name: 'web',
      reloadable: true,
      generation: 1,
      desired: 2,
      pending: false,
      listen: [{ name: 'http', address: '127.0.0.1:0', bound: '127.0.0.1:41234' }],
      revision: null,
      workers: undefined,
      history: undefined,
    });
    expect(g!.history.map((h) => [h.generation, h.state])).toEqual([[1, 'current']]);
    const pids = w.pids('web');
    expect(g!.workers).toEqual(
      [0, 1].map((slot) => ({
        id: slot + 1,
        slot,
        pid: pids[slot],
        generation: 1,
        state: 'ready',
        startedAt: iso(T0),
        readyAt: iso(T0),
        restarts: 0,
        rssBytes: pids[slot]! * 10,
        statusText: null,
        lastExit: null,
      })),
    );
  });

  it('sorts workers by slot, then by id; a crashed slot shows a backoff pseudo-worker counting down to 0', () => {
    const w = runningWorld([groupConfig({ name: 'web', count: 2, restartDelayMs: 1000 })]);
    // Slot 0 crashes and restarts with a higher id than slot 1's worker: it still sorts first.
    w.crash(1);
    const backoff = buildStatus(w.state, io(w)).groups[0]!.workers;
    expect(backoff.map((x) => [x.id, x.slot, x.state])).toEqual([
      [2, 1, 'ready'],
      [null, 0, 'backoff'],
    ]);
    expect(backoff[1]).toEqual({
      id: null,
      slot: 0,
      pid: null,
      generation: 1,
      state: 'backoff',
      startedAt: null,
      readyAt: null,
      restarts: 1,
      rssBytes: null,
      statusText: 'restarting in 1000 ms',
      lastExit: expect.objectContaining({ code: 1 }),
    });
    // A status built after the restart was due (the timer not yet handled) says 0 ms, never a negative time.
    expect(buildStatus(w.state, io(w, { now: w.now + 5000 })).groups[0]!.workers[1]!.statusText).toBe('restarting in 0 ms');
    w.advance(1000);
    w.readyAll();
    const after = buildStatus(w.state, io(w)).groups[0]!.workers;
    expect(after.map((x) => [x.id, x.slot, x.state, x.restarts])).toEqual([
      [3, 0, 'ready', 1],
      [2, 1, 'ready', 0],
    ]);
    expect(after[0]!.lastExit).toMatchObject({ code: 1 });
    expect(after[0]!.startedAt).toBe(iso(T0 + 1000));
  });

  it('a worker without a pid yet has no memory figure; during a roll old and new share a slot in id order', () => {
    const w = runningWorld([groupConfig({ name: 'web', count: 1 })]);
    w.reload();
    const during = buildStatus(w.state, io(w)).groups[0]!.workers;
    expect(during.map((x) => [x.id, x.slot, x.generation, x.state])).toEqual([
      [1, 0, 1, 'ready'],
      [2, 0, 2, 'starting'],
    ]);
    expect(during[1]!.readyAt).toBeNull();
    const st = buildStatus(w.state, io(w, { rss: () => null }));
    expect(st.groups[0]!.workers.map((x) => x.rssBytes)).toEqual([null, null]);
    const noPid = structuredClone(w.state);
    noPid.workers[1]!.pid = null;
    let asked = 0;
    const doc = buildStatus(noPid, io(w, { rss: () => ++asked }));
    expect(doc.groups[0]!.workers.map((x) => x.rssBytes)).toEqual([1, null]);
    expect(asked).toBe(1);
  });

  it('a changed non-reloadable group shows pending, and its listen list stays the running generation\'s', () => {
    const tcp = (port: number) => ({ name: 'http', text: `127.0.0.1:${port}`, address: { kind: 'tcp', host: '127.0.0.1', port, key: `tcp:127.0.0.1:${port}` } });
    const first = groupConfig({ name: 'db', reloadable: false, listen: [tcp(7001)] as never });
    const w = runningWorld([first]);
    w.current = makeConfig([{ ...first, listen: [tcp(7002)] as never }], 2);
    w.reload();
    w.readyAll();
    const g = buildStatus(w.state, io(w, { bound: (k) => `bound ${k}` })).groups[0]!;
    expect(g.pending).toBe(true);
    expect(g.reloadable).toBe(false);
    expect(g.listen).toEqual([{ name: 'http', address: '127.0.0.1:7001', bound: 'bound tcp:127.0.0.1:7001' }]);
  });

  it('orders workers by slot then id whatever order the state keeps them in', () => {
    const w = runningWorld([groupConfig({ name: 'web', count: 2 })]);
    w.reload();
    const reversed = structuredClone(w.state);
    reversed.workers.reverse();
    expect(buildStatus(reversed, io(w)).groups[0]!.workers.map((x) => [x.slot, x.id])).toEqual([
      [0, 1],
      [0, 3],
      [1, 2],
    ]);
  });

  it('a draining worker in a slot removed by a lowered count still shows, with 0 restarts', () => {
    const first = groupConfig({ name: 'web', count: 2 });
    const w = runningWorld([first]);
    w.proc(2).behavior.drainMs = 10_000;
    w.current = makeConfig([{ ...first, count: 1 }], 2);
    w.reload();
    w.readyAll();
    const shown = buildStatus(w.state, io(w)).groups[0]!.workers;
    expect(shown.find((x) => x.id === 2)).toMatchObject({ slot: 1, state: 'stopping', restarts: 0, lastExit: null });
  });
});
