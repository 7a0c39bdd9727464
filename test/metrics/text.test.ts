/** The hand-written text format 0.0.4 and the label values fixed by DESIGN §11. */
import { describe, expect, it } from 'vitest';
import { reloadResult } from '../../src/metrics/collector.js';
import { escapeLabel, Exposition, Histogram } from '../../src/metrics/text.js';
import type { ReloadReport } from '../../src/supervisor/report.js';

describe('text format', () => {
  it('escapes backslash, double quote and line feed in label values', () => {
    expect(escapeLabel('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
  });

  it('writes cumulative buckets, +Inf, _sum and _count', () => {
    const h = new Histogram([0.1, 1]);
    for (const v of [0.05, 0.5, 2]) h.observe(v);
    const text = new Exposition().family('x_seconds', 'histogram', 'a\nb').histogram('x_seconds', { group: 'w"eb' }, h).toString();
    expect(text).toBe(
      [
        '# HELP x_seconds a\\nb',
        '# TYPE x_seconds histogram',
        'x_seconds_bucket{group="w\\"eb",le="0.1"} 1',
        'x_seconds_bucket{group="w\\"eb",le="1"} 2',
        'x_seconds_bucket{group="w\\"eb",le="+Inf"} 3',
        'x_seconds_sum{group="w\\"eb"} 2.55',
        'x_seconds_count{group="w\\"eb"} 3',
        '',
      ].join('\n'),
    );
  });
});

describe('smoothd_reloads_total result', () => {
  const r = (state: ReloadReport['state'], rollback: ReloadReport['rollback'] = null) => ({ state, rollback }) as ReloadReport;
  it('is one of succeeded, failed, rolled_back, aborted', () => {
    expect(reloadResult(r('succeeded'))).toBe('succeeded');
    expect(reloadResult(r('aborted'))).toBe('aborted');
    expect(reloadResult(r('failed'))).toBe('failed');
    expect(reloadResult(r('failed', { state: 'succeeded', durationMs: 5 }))).toBe('rolled_back');
    expect(reloadResult(r('failed', { state: 'skipped', durationMs: 5 }))).toBe('failed');
    expect(reloadResult(r('failed', { state: 'failed', durationMs: 5 }))).toBe('failed');
  });
});
