// A/B experiments of the benchmark (`node bench/run.js --experiment NAME`):
// the example app with an option off (A) and on (B), interleaved A B A B ...
// so that whatever else the shared machine does hits both alike. Each trial is
// a short closed-loop run at saturation (autocannon, --connections) and an
// open-loop run at half of that trial's measured capacity, with reloads. This
// file holds the variants and the summary (pure); bench/run.js runs them.

import { spread } from './stats.js';

/**
 * The experiments: per variant, what changes in the example's group config
 * (merged over it; `env` merged over its env), and the keep-alive modes worth
 * measuring (close-spread changes nothing without keep-alive: every answer
 * already carries Connection: close).
 */
export const EXPERIMENTS = {
  bootnice: {
    title: 'bootNice: 10 (new workers boot at nice 10, restored once ready) vs off',
    keepAlive: [true, false],
    variants: { off: {}, on: { bootNice: 10 } },
  },
  bootnicelevels: {
    title: 'bootNice: 10 and 19 (the lowest Linux priority) vs off',
    keepAlive: [true, false],
    variants: { off: {}, 'nice 10': { bootNice: 10 }, 'nice 19': { bootNice: 19 } },
  },
  warmup: {
    title: 'kit warm-up of 10 (the example), 200 and 2 000 requests before ready, each with bootNice: 10',
    keepAlive: [true, false],
    variants: {
      'warm 10': { bootNice: 10, env: { HELLO_WARMUP: '10' } },
      'warm 200': { bootNice: 10, env: { HELLO_WARMUP: '200' } },
      'warm 2000': { bootNice: 10, env: { HELLO_WARMUP: '2000' } },
    },
  },
  spreadnice: {
    title: 'closeSpreadMs 0, 1 000 and 2 000 (the drain spreads its Connection: close answers) with bootNice: 10, keep-alive on',
    keepAlive: [true],
    variants: {
      'spread 0': { bootNice: 10 },
      'spread 1000': { bootNice: 10, env: { HELLO_CLOSE_SPREAD_MS: '1000' } },
      'spread 2000': { bootNice: 10, env: { HELLO_CLOSE_SPREAD_MS: '2000' } },
    },
  },
  surge: {
    title: 'rolling surge 4 (the example: every new worker at once) vs surge 1 (one at a time), and surge 1 with bootNice: 10',
    keepAlive: [true, false],
    variants: {
      'surge 4': {},
      'surge 1': { rolling: { surge: 1 } },
      'surge 1 nice 10': { rolling: { surge: 1 }, bootNice: 10 },
    },
  },
  tierup: {
    title: 'surge 1 with bootNice: 10, without and with --interrupt-budget=32768 on the worker (V8 tiers up after a quarter of its default budget; Node 20 only)',
    keepAlive: [true, false],
    variants: {
      'surge 1 nice 10': { rolling: { surge: 1 }, bootNice: 10 },
      'budget 32768': { rolling: { surge: 1 }, bootNice: 10, command: ['node', '--interrupt-budget=32768', 'server.js'] },
    },
  },
  closespread: {
    title: 'closeSpreadMs: 1000 (the drain spreads its Connection: close answers over 1 s) vs off',
    keepAlive: [true],
    variants: { off: {}, on: { env: { HELLO_CLOSE_SPREAD_MS: '1000' } } },
  },
};

/** The order of the trials: A B A B ... for each keep-alive mode, `trials` of each variant. */
export function trialPlan(name, trials) {
  const e = EXPERIMENTS[name];
  if (!e) throw new Error(`--experiment takes one of ${Object.keys(EXPERIMENTS).join(', ')}; got ${JSON.stringify(name)}`);
  const plan = [];
  for (let i = 0; i < trials; i++) {
    for (const keepAlive of e.keepAlive) for (const variant of Object.keys(e.variants)) plan.push({ round: i + 1, keepAlive, variant });
  }
  return plan;
}

/** Merges a variant's override into a group config. */
export function applyVariant(group, override) {
  const { env, ...rest } = override;
  return { ...group, ...rest, ...(env ? { env: { ...(group.env ?? {}), ...env } } : {}) };
}

const r1 = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);

/** The figures of one trial that the summary compares. */
export function trialFigures(closed, open) {
  return {
    closedSteadyP99: closed.steady.p99,
    closedPhaseP99: closed.reloading.p99,
    closedWindowP99: closed.inReloadWindows.p99,
    closedWindowRatio: closed.inWindowP99Ratio,
    closedThroughputRatio: closed.throughputRatio,
    closedFailed: closed.failed,
    reloadMs: closed.reloads.durationMs.median,
    openRate: open.offeredRps,
    openSteadyP99: open.steady.p99,
    openPhaseP99: open.reloading.p99,
    openWindowP99: open.inReloadWindows.p99,
    openWindowRatio: open.inWindowP99Ratio,
    openServedRatio: open.servedRatio,
    openFailed: open.failed,
    /** By kind (unsent = still queued in the generator: the server did not keep up); not summarized. */
    openFailures: open.failures,
  };
}

export const FIGURES = [
  ['closedSteadyP99', 'saturated: steady p99 ms'],
  ['closedPhaseP99', 'saturated: p99 ms over the reload phase'],
  ['closedWindowP99', 'saturated: p99 ms inside reload windows'],
  ['closedWindowRatio', 'saturated: in-window p99 / steady p99'],
  ['closedThroughputRatio', 'saturated: req/s reloading / steady'],
  ['closedFailed', 'saturated: failed requests'],
  ['reloadMs', 'reload duration ms (median of the trial)'],
  ['openRate', '50% open loop: offered req/s'],
  ['openSteadyP99', '50% open loop: steady p99 ms'],
  ['openPhaseP99', '50% open loop: p99 ms over the reload phase'],
  ['openWindowP99', '50% open loop: p99 ms inside reload windows'],
  ['openWindowRatio', '50% open loop: in-window p99 / steady p99'],
  ['openServedRatio', '50% open loop: served / offered'],
  ['openFailed', '50% open loop: failed requests'],
];

/** Median and range per figure, per keep-alive mode and variant. */
export function summarize(results) {
  const out = {};
  for (const r of results) {
    const mode = r.keepAlive ? 'keep-alive on' : 'keep-alive off';
    out[mode] ??= {};
    out[mode][r.variant] ??= [];
    out[mode][r.variant].push(r.figures);
  }
  const summary = {};
  for (const [mode, variants] of Object.entries(out)) {
    summary[mode] = {};
    for (const [variant, list] of Object.entries(variants)) {
      summary[mode][variant] = Object.fromEntries(FIGURES.map(([k]) => [k, spread(list.map((f) => f[k]).filter(Number.isFinite))]));
    }
  }
  return summary;
}

/** A text table: per mode, each figure as "median (min-max)", one column per variant in the experiment's order. */
export function summaryText(summary) {
  const lines = [];
  const cell = (s) => (s === undefined || s.n === 0 ? '-' : `${r1(s.median)} (${r1(s.min)}-${r1(s.max)})`);
  for (const [mode, variants] of Object.entries(summary)) {
    const names = Object.keys(variants);
    const first = variants[names[0]];
    lines.push(`${mode}: median (min-max) of ${first?.closedSteadyP99.n ?? 0} trials each`);
    lines.push(`  ${'figure'.padEnd(46)} ${names.map((v) => v.padEnd(22)).join(' ').trimEnd()}`);
    for (const [k, label] of FIGURES) lines.push(`  ${label.padEnd(46)} ${names.map((v) => cell(variants[v][k]).padEnd(22)).join(' ').trimEnd()}`);
  }
  return lines.join('\n');
}
