/** `smoothctl status` lists the newest reload reports of `status.reloads`, one line each. */
import { describe, expect, it } from 'vitest';
import { formatReloadLine, formatStatus, RECENT_RELOADS } from '../../src/cli/smoothctl.js';
import type { ReloadReport, StatusDocument } from '../../src/supervisor/report.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

function report(id: number, over: Partial<ReloadReport> = {}): ReloadReport {
  return {
    id,
    state: 'succeeded',
    trigger: 'rpc',
    startedAt: new Date(NOW - 62_000).toISOString(),
    readyAt: null,
    finishedAt: new Date(NOW - 60_000).toISOString(),
    durationMs: 2_000,
    readyMs: null,
    done: 2,
    total: 2,
    error: null,
    errorCode: null,
    failure: null,
    queued: null,
    groups: [{ name: 'web', state: 'rolled', done: 2, total: 2, generation: id + 1, revision: null, verification: { bakeMs: 0, canary: { workerId: null, requests: 0, errors: 0 }, old: { requests: 0, errors: 0 }, verdict: 'off' }, rollback: null }],
    rollback: null,
    ...over,
  };
}

function doc(reloads: ReloadReport[]): StatusDocument & { reloads: ReloadReport[] } {
  return {
    version: 1,
    daemon: { pid: 1, version: '1.0.0', state: 'running', startedAt: new Date(NOW - 3_600_000).toISOString(), uptimeMs: 3_600_000, platform: 'linux', configPath: '/etc/smoothd/smoothd.yaml' },
    reload: reloads[0] ?? report(0, { state: 'idle' }),
    groups: [],
    reloads,
  };
}

describe('smoothctl status', () => {
  it(`shows the ${RECENT_RELOADS} newest reloads, one line each`, () => {
    const failed = report(5, { state: 'failed', error: 'worker 9 exited with code 1 before ready\nsecond line', rollback: { state: 'succeeded', durationMs: 900 } });
    const text = formatStatus(doc([failed, report(4), report(3), report(2)]), NOW);
    const lines = text.split('\n');
    const at = lines.indexOf('recent reloads:');
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 1 + RECENT_RELOADS + 1)).toEqual([
      '  reload 5 failed, rolled back, 2.0 s, 1m ago, web gen 6: worker 9 exited with code 1 before ready',
      '  reload 4 succeeded, 2.0 s, 1m ago, web gen 5',
      '  reload 3 succeeded, 2.0 s, 1m ago, web gen 4',
      '',
    ]);
  });

  it('shows no reload lines before any reload, and escapes control characters in errors', () => {
    expect(formatStatus(doc([]), NOW)).not.toContain('recent reloads');
    expect(formatReloadLine(report(1, { state: 'failed', error: 'bad \x1b[31m thing' }), NOW)).not.toContain('\x1b');
  });
});
