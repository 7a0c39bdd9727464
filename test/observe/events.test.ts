/**
 * Every event name of DESIGN §11 comes out of the event stream, derived from
 * the machine's real steps (the supervisor harness's fake processes and clock
 * fed into the EventHub the runtime uses): a verified reload whose canary
 * fails its error budget after the bake, the watch of the next one, crashes,
 * a refused config, a SIGKILL after stopTimeout and smoothd stopping.
 */
import { describe, expect, it } from 'vitest';
import { EVENT_NAMES, EventHub, type SmoothdEvent } from '../../src/observe/events.js';
import { groupConfig, makeConfig, runningWorld } from '../supervisor/harness.js';

describe('the event stream', () => {
  it('emits every §11 event name, each with the fixed fields', () => {
    const hub = new EventHub();
    const seen: SmoothdEvent[] = [];
    hub.subscribe(null, (e) => seen.push(e));
    const ipc = { kind: 'ipc' as const };
    const w = runningWorld([groupConfig({ count: 2, ready: ipc })]);
    w.onStep = (prev, event, result) => hub.observe(prev, event, result.state, result.effects, w.now);
    const names = (): Set<string> => new Set(seen.map((e) => e.event));

    // Reload 1: the canary bakes, passes, then a later new worker answers 50% errors: verify.failed, rolled back.
    w.current = makeConfig([groupConfig({ count: 2, ready: ipc, verify: { bakeMs: 1000, maxErrorRate: 0.05, minRequests: 10, watchMs: 0 } })], 2);
    for (const p of w.procs.values()) p.behavior.drainMs = 1000; // the reload is still on when the report comes
    w.reload();
    w.readyAll();
    w.advance(1000);
    const later = w.live().find((x) => x.generation === 2 && x.phase === 'starting')!;
    w.ready(later.id);
    w.send({ type: 'worker.stats', workerId: later.id, requests: 20, errors: 10 });
    w.autoReady = true;
    w.readyAll();
    w.advance(30_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' } });

    // Reload 2: a watch that passes.
    w.current = makeConfig([groupConfig({ count: 2, ready: ipc, verify: { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 2000 } })], 3);
    w.reload();
    w.advance(30_000);
    expect(w.finished.get(2)).toMatchObject({ state: 'succeeded' });

    // Reload 3: a new worker exits before ready.
    w.autoReady = false;
    w.current = makeConfig([groupConfig({ count: 2, ready: ipc })], 4);
    w.reload();
    w.crash(w.live().find((x) => x.generation === 4)!.id);
    w.autoReady = true;
    w.advance(30_000);
    expect(w.finished.get(3)).toMatchObject({ state: 'failed' });

    // A crash outside a roll, a refused config, then a stop whose drain needs SIGKILL.
    w.crash(w.live()[0]!.id);
    w.advance(5000);
    w.loader = () => ({ fail: 'groups.web.count: got 0' });
    w.reload();
    expect(w.finished.get(4)).toMatchObject({ state: 'failed' });
    for (const p of w.procs.values()) p.behavior.drainMs = 10 * 60_000;
    w.stop();
    w.advance(10 * 60_000);

    const missing = EVENT_NAMES.filter((n) => !names().has(n));
    expect(missing).toEqual([]);
    for (const e of seen) expect(Object.keys(e).sort()).toEqual(['at', 'data', 'event', 'generation', 'group', 'message', 'pid', 'workerId']);
    expect(seen.find((e) => e.event === 'reload.done' && (e.data as { id: number }).id === 1)!.data).toMatchObject({ result: 'rolled_back' });
    expect(seen.find((e) => e.event === 'bake.started')).toMatchObject({ group: 'web', generation: 2 });
  });
});
