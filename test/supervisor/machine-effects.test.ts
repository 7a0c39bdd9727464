/**
 * What the machine tells the runtime and the operator, field by field: the
 * progress events of a roll, the timers it arms and clears, the daemon state
 * changes for systemd's STATUS=, the start log line, and events about workers
 * it does not know.
 */
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../src/supervisor/types.js';
import { World, groupConfig, makeConfig, runningWorld } from './harness.js';

describe('machine effects', () => {
  it('a progress event of a worker names its id, pid, slot and generation', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2 })], 2);
    w.reload();
    const fresh = w.live().find((x) => x.generation === 2)!;
    const started = w.progress.find((p) => p.event.step === 'worker.started')!.event;
    expect(started).toMatchObject({ group: 'web', workerId: fresh.id, pid: fresh.pid, slot: fresh.slot, generation: 2, total: 2 });
    expect(fresh.pid).not.toBeNull();
    const loading = w.progress.find((p) => p.event.step === 'loading')!.event;
    expect(loading).toMatchObject({ group: null, workerId: null, pid: null, slot: null, generation: null, done: 0, total: 0 });
  });

  it('a progress event of a group without a worker takes the generation the group rolls to', () => {
    const w = runningWorld([groupConfig()]);
    w.current = makeConfig([groupConfig()], 2);
    w.reload();
    const groupStarted = w.progress.find((p) => p.event.step === 'group.started')!.event;
    expect(groupStarted).toMatchObject({ group: 'web', workerId: null, pid: null, slot: null, generation: 2 });
  });

  it('a timer without a stderr worker is armed without stderrOf; only armed timers are cleared', () => {
    const w = new World(makeConfig([groupConfig({ count: 2 })]), { start: false });
    const armed = new Set<string>();
    const wrong: string[] = [];
    w.onStep = (_prev, event, result) => {
      if (event.type === 'timer') armed.delete(event.key); // fired: no longer armed
      for (const e of result.effects) {
        if (e.type === 'timer.set') {
          if (e.key.startsWith('readyTimeout:')) expect(e).toHaveProperty('stderrOf');
          else expect(Object.keys(e).sort()).toEqual(['key', 'ms', 'type']);
          armed.add(e.key);
        }
        if (e.type === 'timer.clear') {
          if (!armed.has(e.key)) wrong.push(e.key);
          armed.delete(e.key);
        }
      }
    };
    w.send({ type: 'start' });
    w.readyAll();
    w.crash(1);
    w.advance(100);
    w.readyAll();
    w.stop();
    w.advance(60_000);
    expect(w.effectsOf('timer.set').some((e) => !e.key.startsWith('readyTimeout:'))).toBe(true);
    expect(wrong).toEqual([]);
    expect(w.effectsOf('timer.clear').length).toBeGreaterThan(0);
  });

  it('the daemon state is announced once per change, with its status line', () => {
    const w = runningWorld([groupConfig({ count: 2 })]);
    w.current = makeConfig([groupConfig({ count: 2 })], 2);
    w.reload();
    w.readyUntilSettled();
    w.advance(60_000);
    w.stop();
    w.advance(60_000);
    const states = w.effectsOf('daemon.state').map((e) => e.state);
    expect(states).toEqual(['running', 'reloading', 'running', 'stopping']);
    expect(w.effectsOf('daemon.state')[0]!.status).toBe('running: web 2/2 ready, generation 1');
  });

  it('the start is logged with the groups it starts', () => {
    const w = new World(makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'api' })]));
    const log = w.effects.find((e): e is Extract<Effect, { type: 'log' }> => e.type === 'log')!;
    expect(log).toEqual({ type: 'log', level: 'info', msg: 'starting workers', fields: { groups: ['web', 'api'] } });
    expect(w.effectsOf('spawn')).toHaveLength(2);
  });

  it('a spawn error is the stderr tail of the failure; a readyTimeout without a tail has an empty one', () => {
    const w = new World(makeConfig([groupConfig()]));
    w.send({ type: 'worker.spawnFailed', workerId: 1, error: 'spawn /usr/bin/node EACCES' });
    expect(w.state.startFailure).toMatchObject({ workerId: 1, stderrTail: ['spawn /usr/bin/node EACCES'] });

    const r = runningWorld([groupConfig({ readyTimeoutMs: 1000 })]);
    r.current = makeConfig([groupConfig({ readyTimeoutMs: 1000 })], 2);
    r.reload();
    const fresh = r.live().find((x) => x.generation === 2)!;
    r.send({ type: 'timer', key: `readyTimeout:${fresh.id}` });
    expect(r.finished.get(1)!.failure).toMatchObject({ workerId: fresh.id, stderrTail: [] });
  });

  it('a status text of an unknown worker is ignored; a known one is kept', () => {
    const w = runningWorld([groupConfig()]);
    w.send({ type: 'worker.status', workerId: 99, text: 'nobody' });
    w.send({ type: 'worker.status', workerId: 1, text: 'serving 3 clients' });
    expect(w.workers().map((x) => x.statusText)).toEqual(['serving 3 clients']);
  });

  it('a worker whose process group outlives its leader shows why it still stops', () => {
    const w = runningWorld([groupConfig({ stopTimeoutMs: 1000 })]);
    w.proc(1).behavior.straggler = 'ignoresStop';
    w.current = makeConfig([groupConfig({ stopTimeoutMs: 1000 })], 2);
    w.reload();
    w.readyAll();
    expect(w.workers().find((x) => x.id === 1)!.statusText).toBe('leader exited; waiting for the rest of its process group');
  });
});
