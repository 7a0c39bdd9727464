/**
 * The log line of a planned exit (an old worker a reload stopped, drained and
 * gone): an `info` line 'worker exited' with the worker, its exit and why it
 * was stopped — the level decides whether `journalctl -p warning` shows it.
 */
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../src/supervisor/types.js';
import { groupConfig, makeConfig, runningWorld } from './harness.js';

type Log = Extract<Effect, { type: 'log' }>;

describe('a planned exit', () => {
  it('is logged at info as "worker exited" with the worker, code, signal and reason', () => {
    const w = runningWorld([groupConfig({ count: 1 })]);
    w.current = makeConfig([groupConfig({ count: 1 })], 2);
    const from = w.effects.length;
    w.reload();
    w.readyAll();
    const exited = w.effectsOf('log', from).filter((e: Log) => e.msg === 'worker exited');
    expect(exited).toEqual([
      { type: 'log', level: 'info', msg: 'worker exited', fields: { group: 'web', workerId: 1, pid: w.proc(1).pid, code: 0, signal: null, reason: expect.stringMatching(/^stopped \(/) } },
    ]);
  });
});
