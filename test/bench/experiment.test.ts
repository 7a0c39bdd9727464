// The pure parts of the A/B experiments (bench/experiment.js): trial order, config variants, summary.
import { describe, expect, it } from 'vitest';
import { applyVariant, summarize, summaryText, trialPlan } from '../../bench/experiment.js';

describe('bench experiments', () => {
  it('interleaves the variants A B A B, per keep-alive mode', () => {
    const plan = trialPlan('bootnice', 3);
    expect(plan).toHaveLength(12);
    expect(plan.slice(0, 4).map((t) => `${t.variant}/${t.keepAlive}`)).toEqual(['off/true', 'on/true', 'off/false', 'on/false']);
    expect(plan.filter((t) => t.variant === 'on')).toHaveLength(6);
    expect(trialPlan('closespread', 2).map((t) => t.variant)).toEqual(['off', 'on', 'off', 'on']);
  });

  it('refuses an unknown experiment with the names it knows', () => {
    expect(() => trialPlan('fast', 1)).toThrow(/--experiment takes one of bootnice, bootnicelevels, warmup, spreadnice, surge, tierup, closespread; got "fast"/);
  });

  it('merges a variant over the group, env over env', () => {
    const group = { command: ['node', 'server.js'], env: { A: '1' }, count: 4 };
    expect(applyVariant(group, { bootNice: 10 })).toEqual({ ...group, bootNice: 10 });
    expect(applyVariant(group, { env: { HELLO_CLOSE_SPREAD_MS: '1000' } })).toEqual({ ...group, env: { A: '1', HELLO_CLOSE_SPREAD_MS: '1000' } });
    expect(applyVariant(group, {})).toEqual(group);
  });

  it('summarizes medians and ranges per mode and variant', () => {
    const f = (p99: number) => ({ closedSteadyP99: p99 });
    const s = summarize([
      { round: 1, keepAlive: true, variant: 'off', figures: f(10) },
      { round: 1, keepAlive: true, variant: 'on', figures: f(20) },
      { round: 2, keepAlive: true, variant: 'off', figures: f(30) },
      { round: 2, keepAlive: true, variant: 'on', figures: f(40) },
      { round: 3, keepAlive: true, variant: 'off', figures: f(50) },
      { round: 3, keepAlive: true, variant: 'on', figures: f(60) },
    ]);
    expect(s['keep-alive on']!.off!.closedSteadyP99).toMatchObject({ min: 10, median: 30, max: 50, n: 3 });
    expect(s['keep-alive on']!.on!.closedSteadyP99).toMatchObject({ min: 20, median: 40, max: 60, n: 3 });
    expect(summaryText(s)).toContain('saturated: steady p99 ms');
    expect(summaryText(s)).toContain('30 (10-50)');
  });

  it('runs and prints every variant of an experiment with more than two, in its order', () => {
    expect(trialPlan('bootnicelevels', 1).map((t) => t.variant)).toEqual(['off', 'nice 10', 'nice 19', 'off', 'nice 10', 'nice 19']);
    const s = summarize(
      ['off', 'nice 10', 'nice 19'].map((variant, i) => ({ round: 1, keepAlive: false, variant, figures: { openWindowP99: 100 - i * 40 } })),
    );
    const text = summaryText(s);
    const header = text.split('\n')[1]!;
    expect(header.indexOf('off')).toBeLessThan(header.indexOf('nice 10'));
    expect(header.indexOf('nice 10')).toBeLessThan(header.indexOf('nice 19'));
    const row = text.split('\n').find((l) => l.includes('p99 ms inside reload windows') && l.includes('open loop'))!;
    expect(row.replace(/\s+/g, ' ')).toContain('100 (100-100) 60 (60-60) 20 (20-20)');
  });
});
