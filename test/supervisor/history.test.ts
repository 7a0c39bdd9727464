import { describe, expect, it } from 'vitest';
import { historyStatus, rollbackTarget, trimHistory } from '../../src/supervisor/history.js';
import type { HistoryEntry } from '../../src/supervisor/types.js';
import { groupConfig, makeConfig, runningWorld, specFor } from './harness.js';

const entry = (generation: number, outcome: HistoryEntry['outcome']): HistoryEntry => ({
  generation,
  createdAt: 1_700_000_000_000 + generation,
  spec: { ...specFor(groupConfig(), `/srv/app/releases/${generation}`), revision: `r${generation}` },
  outcome,
});

describe('release history (pure)', () => {
  it('keeps at most `keep` entries, but always the current one and the newest good one before it', () => {
    const h = [entry(6, null), entry(5, 'bad'), entry(4, 'bad'), entry(3, 'bad'), entry(2, 'good'), entry(1, 'good')];
    expect(trimHistory(h, 2, 6).map((x) => x.generation)).toEqual([6, 5, 2]);
    expect(trimHistory(h, 10, 6).map((x) => x.generation)).toEqual([6, 5, 4, 3, 2, 1]);
  });

  it('drops generations that never got an outcome and no longer run', () => {
    expect(trimHistory([entry(3, null), entry(2, 'good'), entry(1, 'good')], 5, 2).map((x) => x.generation)).toEqual([2, 1]);
  });

  it('shows current, good and bad with cwd, command and revision', () => {
    expect(historyStatus([entry(2, 'bad'), entry(1, 'good')], 1)).toEqual([
      { generation: 2, createdAt: new Date(1_700_000_000_002).toISOString(), cwd: '/srv/app/releases/2', command: ['node', 'server.js'], revision: 'r2', state: 'bad' },
      { generation: 1, createdAt: new Date(1_700_000_000_001).toISOString(), cwd: '/srv/app/releases/1', command: ['node', 'server.js'], revision: 'r1', state: 'current' },
    ]);
  });

  it('finds the rollback target: the newest good generation older than the current one, or --to', () => {
    const h = [entry(4, null), entry(3, 'bad'), entry(2, 'good'), entry(1, 'good')];
    expect((rollbackTarget(h, 4, null) as HistoryEntry).generation).toBe(2);
    expect((rollbackTarget(h, 4, 1) as HistoryEntry).generation).toBe(1);
    expect(rollbackTarget(h, 4, 9)).toMatch(/generation 9 is not in the history \(it keeps 4, 3, 2, 1\)/);
    expect(rollbackTarget(h, 4, 4)).toMatch(/is the one running now/);
    expect(rollbackTarget([entry(1, 'good')], 1, null)).toMatch(/no good generation older than the current one/);
  });
});

describe('release history in the machine', () => {
  const states = (w: ReturnType<typeof runningWorld>) => w.state.groups[0]!.history.map((h) => [h.generation, h.outcome]);

  it('generation 1 is good once the start succeeded; a rolled-back release is bad; a good reload is good', () => {
    const w = runningWorld([groupConfig({ count: 1, readyTimeoutMs: 1000 })]);
    expect(states(w)).toEqual([[1, 'good']]);
    w.current = makeConfig([groupConfig({ count: 1, readyTimeoutMs: 1000 })], 2);
    w.reload();
    w.advance(1000); // misses readyTimeout: rolled back
    w.advance(1000);
    expect(w.finished.get(1)!.state).toBe('failed');
    expect(states(w)).toEqual([
      [2, 'bad'],
      [1, 'good'],
    ]);
    w.autoReady = true;
    w.current = makeConfig([groupConfig({ count: 1, readyTimeoutMs: 1000 })], 3);
    w.reload();
    w.advance(1000);
    expect(w.finished.get(2)!.state).toBe('succeeded');
    expect(states(w)).toEqual([
      [3, 'good'],
      [2, 'bad'],
      [1, 'good'],
    ]);
    const hs = historyStatus(w.state.groups[0]!.history, w.state.groups[0]!.generation);
    expect(hs.map((h) => [h.generation, h.state, h.cwd])).toEqual([
      [3, 'current', '/srv/app/releases/3'],
      [2, 'bad', '/srv/app/releases/2'],
      [1, 'good', '/srv/app/releases/1'],
    ]);
  });

  it('keeps `history` entries', () => {
    const w = runningWorld([groupConfig({ history: 2 })]);
    w.autoReady = true;
    for (let rel = 2; rel <= 5; rel++) {
      w.current = makeConfig([groupConfig({ history: 2 })], rel);
      w.reload();
      w.advance(1000);
    }
    expect(states(w)).toEqual([
      [5, 'good'],
      [4, 'good'],
    ]);
  });
});
