/**
 * The worker request/error series (DESIGN §11) follow the group's release
 * history: one series per generation in `status` groups[].history, no more,
 * no fewer — driven through the pure machine with the collector observing
 * every step, the way the runtime does.
 */
import { describe, expect, it } from 'vitest';
import { MetricsCollector } from '../../src/metrics/collector.js';
import { groupConfig, makeConfig, World } from '../supervisor/harness.js';

function series(text: string, name: string): Map<number, number> {
  const out = new Map<number, number>();
  const re = new RegExp(`^${name}\\{group="web",generation="(\\d+)"\\} (\\S+)$`);
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m) out.set(Number(m[1]), Number(m[2]));
  }
  return out;
}

describe('smoothd_worker_requests_total / _errors_total', () => {
  it('have a series for exactly the generations in the status history, after every reload', () => {
    const g = groupConfig({ count: 2, history: 2 });
    const w = new World(makeConfig([g]), { autoReady: true, start: false });
    const c = new MetricsCollector({ version: '0.0.0', node: 'v0' });
    w.onStep = (prev, event, result) => c.observe(prev, event, result.state, result.effects, w.now);
    w.send({ type: 'start' });
    w.readyUntilSettled();
    let n = 0;
    const report = (): void => {
      // Every live worker reports its counters: requests 10 per report, errors 1.
      for (const x of w.live('web')) w.send({ type: 'worker.stats', workerId: x.id, requests: 10 + n, errors: 1 });
      n += 1;
    };
    const check = (): number[] => {
      const text = c.render(w.state);
      const hist = w.state.groups[0]!.history.map((h) => h.generation).sort((a, b) => a - b);
      expect([...series(text, 'smoothd_worker_requests_total').keys()].sort((a, b) => a - b)).toEqual(hist);
      expect([...series(text, 'smoothd_worker_errors_total').keys()].sort((a, b) => a - b)).toEqual(hist);
      return hist;
    };
    report();
    expect(check()).toEqual([1]);
    for (let release = 2; release <= 6; release++) {
      w.current = makeConfig([g], release);
      w.reload();
      w.readyUntilSettled();
      report();
      // Generation `release` and the one before it (history: 2); older ones are gone from both.
      expect(check()).toEqual([release - 1, release]);
    }
    const text = c.render(w.state);
    // Exited generation 5 keeps its workers' last counters (2 workers, their last report 10 + 4 each).
    expect(series(text, 'smoothd_worker_requests_total').get(5)).toBe(2 * (10 + 4));
    expect(series(text, 'smoothd_worker_errors_total').get(6)).toBe(2);
  });

  it('keep a failed generation while the history does, and the good one it fell back to', () => {
    const g = groupConfig({ count: 1, history: 3 });
    const w = new World(makeConfig([g]), { autoReady: true, start: false });
    const c = new MetricsCollector({ version: '0.0.0', node: 'v0' });
    w.onStep = (prev, event, result) => c.observe(prev, event, result.state, result.effects, w.now);
    w.send({ type: 'start' });
    w.readyUntilSettled();
    for (const x of w.live('web')) w.send({ type: 'worker.stats', workerId: x.id, requests: 7, errors: 0 });
    // Releases 2..5 cannot be spawned: each reload fails, generation 1 keeps serving.
    for (let release = 2; release <= 5; release++) {
      w.current = makeConfig([g], release);
      w.behave = (sp) => (sp.generation >= 2 ? { spawnFails: 'spawn EACCES' } : {});
      w.reload();
      w.readyUntilSettled();
      expect(w.finished.get(w.finishedOrder.at(-1)!)?.state).toBe('failed');
      const text = c.render(w.state);
      const hist = w.state.groups[0]!.history.map((h) => h.generation).sort((a, b) => a - b);
      expect([...series(text, 'smoothd_worker_requests_total').keys()].sort((a, b) => a - b)).toEqual(hist);
      expect(series(text, 'smoothd_worker_requests_total').get(1)).toBe(7);
    }
    // history: 3 keeps the three newest and always the current generation 1; 2 left, and its series with it.
    expect(w.state.groups[0]!.history.map((h) => [h.generation, h.outcome])).toEqual([[5, 'bad'], [4, 'bad'], [3, 'bad'], [1, 'good']]);
    expect([...series(c.render(w.state), 'smoothd_worker_requests_total').keys()]).toEqual([1, 3, 4, 5]);
  });
});
