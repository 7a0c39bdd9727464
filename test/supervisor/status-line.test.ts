/**
 * systemd's STATUS= line during deploy verification (DESIGN §10, issue 10):
 * the canary's bake counts up as "verifying web: canary 8 s of 10 s", and the
 * watch after the roll says what it waits for.
 */
import { describe, expect, it } from 'vitest';
import { statusLine } from '../../src/supervisor/machine.js';
import { groupConfig, makeConfig, runningWorld } from './harness.js';

describe('STATUS= during verification', () => {
  it('counts the canary\'s bake in seconds, then names the watch', () => {
    const verify = { bakeMs: 10_000, maxErrorRate: null, minRequests: 20, watchMs: 30_000 };
    const w = runningWorld([groupConfig({ count: 2, ready: { kind: 'ipc' } })]);
    w.current = makeConfig([groupConfig({ count: 2, ready: { kind: 'ipc' }, verify })], 2);
    w.reload();
    w.readyAll();
    expect(statusLine(w.state, w.now)).toBe('verifying web: canary 0 s of 10 s');
    w.advance(8_000);
    expect(statusLine(w.state, w.now)).toBe('verifying web: canary 8 s of 10 s');
    w.advance(2_000);
    w.readyAll();
    w.advance(5_000);
    w.readyAll();
    expect(w.state.reload!.order[0]!.state).toBe('watching');
    expect(statusLine(w.state, w.now)).toBe('watching web for crashes after the roll');
    w.advance(30_000);
    expect(w.finished.get(1)).toMatchObject({ state: 'succeeded' });
    expect(statusLine(w.state, w.now)).toMatch(/^running: web 2\/2 ready, generation 2$/);
  });
});
