#!/usr/bin/env node
// The zero-downtime benchmark of smoothd (`npm run bench`; README "Measured numbers").
//
//   node bench/run.js [--quick] [--reloads N] [--connections N] [--interval SECONDS]
//   node bench/run.js --experiment bootnice|bootnicelevels|warmup|spreadnice|surge|tierup|closespread [--trials N]   (A/B, bench/experiment.js)
//   (or BENCH_QUICK=1, BENCH_RELOADS=N, BENCH_CONNECTIONS=N, BENCH_INTERVAL=S)
//
// For keep-alive off and on: starts the compiled smoothd with the example app
// (examples/hello, 4 workers, 127.0.0.1 on a free port), drives load with
// autocannon (bench/load.js), measures a steady phase, then a phase of reloads
// (`smoothctl reload --json`, one every --interval seconds), then runs the same
// workers under Node's cluster module (bench/cluster-app.js) with the same load.
// A last phase starts smoothd with 16 workers (metrics on) for its memory, one
// reload of 16, and the latency of `smoothctl status --json`; then the long
// memory phase (bench/memory.js: 200 reloads of 16 `sh` workers in a full run,
// `--only memory --reloads N` for N). The scaling phase (bench/scale.js;
// alone: --only scale) rolls 16, 64, 256 and 1024 `sleep` workers. Prints a table, the targets of
// issue 4 as PASS/MISS and one JSON line; writes bench/out/results.json and
// bench/out/deploy.svg (a full run also refreshes docs/deploy.svg and the
// generated block of README.md's "Measured numbers").
//
// Loopback only. Every process it starts is ended by pid at the end, on an
// error and on SIGINT/SIGTERM.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { renderChart } from './chart.js';
import { applyVariant, EXPERIMENTS, summarize, summaryText, trialFigures, trialPlan } from './experiment.js';
import { evaluateScale, scaleRun, scaleTable } from './scale.js';
import { evaluateMemoryLong, memoryLongLines, memoryLongRun } from './memory.js';
import { readRecords } from './load.js';
import { freePort } from './memory-setup.js';
import { alive, exited, forkTracked, installCleanup, onJsonLines, spawnTracked, stopAll, stopPid, track } from './procs.js';
import { alignedProfile, buckets, childTicks, cpuTicks, KIND_NAMES, machineTicks, percentile, procKb, reloadOverhead, sortedCopy, spread, windowStats } from './stats.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = path.join(ROOT, 'bench', 'out');
const EXAMPLE = path.join(ROOT, 'examples', 'hello');
const SMOOTHD = path.join(ROOT, 'bin', 'smoothd.js');
const SMOOTHCTL = path.join(ROOT, 'bin', 'smoothctl.js');

const TARGETS = {
  failed: 0,
  p99Ratio: 2,
  throughputRatio: 0.85,
  clusterRatio: 0.95,
  reloadMs: 1000,
  overheadMs: 20,
  rssMb: 50,
  privateMb: 20,
  openP99Ratio: 1.5,
  servedRatio: 0.99,
  scaleCpuRatio: 1.5,
  scaleReloadMs: 10_000,
  scaleStatusMs: 50,
};

// ---------------------------------------------------------------- options

function parseOptions(argv, env) {
  const o = {
    quick: env.BENCH_QUICK === '1',
    reloads: env.BENCH_RELOADS ? Number(env.BENCH_RELOADS) : null,
    connections: env.BENCH_CONNECTIONS ? Number(env.BENCH_CONNECTIONS) : 64,
    interval: env.BENCH_INTERVAL ? Number(env.BENCH_INTERVAL) : 3,
    openInterval: env.BENCH_OPEN_INTERVAL ? Number(env.BENCH_OPEN_INTERVAL) : null,
    surge: env.BENCH_SURGE ? Number(env.BENCH_SURGE) : null,
    openRate: env.BENCH_OPEN_RATE ? Number(env.BENCH_OPEN_RATE) : null,
    only: env.BENCH_ONLY ? parsePhases(env.BENCH_ONLY, 'BENCH_ONLY') : null,
    experiment: null,
    trials: 3,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? a.split(/=(.*)/s) : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || !(Number(v) > 0)) throw new Error(`${flag} needs a positive number`);
      return Number(v);
    };
    if (flag === '--quick') o.quick = true;
    else if (flag === '--reloads') o.reloads = Math.round(value());
    else if (flag === '--connections') o.connections = Math.round(value());
    else if (flag === '--interval') o.interval = value();
    else if (flag === '--open-interval') o.openInterval = value();
    else if (flag === '--surge') o.surge = Math.round(value());
    else if (flag === '--open-rate') o.openRate = Math.round(value());
    else if (flag === '--only') o.only = parsePhases(inline ?? argv[++i], '--only');
    else if (flag === '--experiment') o.experiment = inline ?? argv[++i];
    else if (flag === '--trials') o.trials = Math.round(value());
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write('usage: node bench/run.js [--quick] [--reloads N] [--connections N] [--interval SECONDS] [--surge N] [--only closed,open,memory,scale] [--open-rate RPS] [--open-interval SECONDS] [--experiment bootnice|bootnicelevels|warmup|spreadnice|surge|tierup|closespread [--trials N]]\n');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (o.experiment !== null) trialPlan(o.experiment, 1); // refuses an unknown name
  const plan = o.experiment !== null && !o.quick
    ? { warmupS: 2, steadyS: 6, reloads: 4, tailS: 1.5, clusterSteadyS: 0, statusN: 0 }
    : o.quick
    ? { warmupS: 1, steadyS: 3, reloads: 3, tailS: 1.5, clusterSteadyS: 3, statusN: 6 }
    : { warmupS: 3, steadyS: 15, reloads: 10, tailS: 3, clusterSteadyS: 15, statusN: 30 };
  if (o.reloads !== null) plan.reloads = o.reloads;
  // The open loop's reloads are spaced wider than the closed loop's: a reload
  // window delays requests, and the next window must not start before the
  // queue of what the last one delayed has drained (deploys are minutes apart,
  // not seconds). Default twice --interval (6 s in a full run).
  plan.openInterval = o.openInterval ?? 2 * o.interval;
  // The long memory phase: --reloads N with --only memory sets its length; a full run does 200.
  plan.memoryReloads = o.only?.includes('memory') && o.reloads !== null ? o.reloads : !o.quick && o.only === null && o.experiment === null ? 200 : 0;
  return { ...o, ...plan, full: !o.quick && plan.reloads >= 10 && o.connections >= 64 && o.interval === 3 && o.surge === null && o.only === null && o.openRate === null && o.openInterval === null && o.experiment === null };
}

const PHASES = ['closed', 'open', 'memory', 'scale'];

function parsePhases(text, flag) {
  const list = String(text ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const bad = list.filter((p) => !PHASES.includes(p));
  if (list.length === 0 || bad.length > 0) throw new Error(`${flag} takes a comma-separated list of ${PHASES.join(', ')}; got ${JSON.stringify(text ?? '')}`);
  return list;
}

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const sleepUntil = (t) => sleep(t - Date.now());
const round = (x, d = 0) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);
const log = (s) => process.stderr.write(`bench: ${s}\n`);

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function procSample(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const status = procKb(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), ['VmRSS', 'VmHWM', 'RssAnon', 'RssFile']);
    let rollup = {};
    try {
      rollup = procKb(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), ['Pss', 'Private_Clean', 'Private_Dirty']);
    } catch {
      // older kernels
    }
    return { cpuMs: (cpuTicks(stat) * 1000) / CLK_TCK, ...status, ...rollup, at: Date.now() };
  } catch {
    return null;
  }
}

/**
 * CPU time (ms) so far of: the daemon itself, its workers (live ones plus the
 * exited ones, which the daemon's cutime holds once reaped), the load
 * generator, this process with the children it reaped (smoothctl), and the
 * whole machine. Differences of two snapshots split a phase's CPU.
 */
function cpuSnapshot(d, loadPid) {
  const read = (pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return null;
    }
  };
  const ms = (ticks) => (ticks * 1000) / CLK_TCK;
  const ds = read(d.pid);
  let workers = ds ? childTicks(ds) : 0;
  for (const pid of d.workerPids) {
    const st = read(pid);
    if (st) workers += cpuTicks(st);
  }
  const ls = loadPid ? read(loadPid) : null;
  const self = read('self');
  const m = machineTicks(fs.readFileSync('/proc/stat', 'utf8'));
  return {
    at: Date.now(),
    daemon: ds ? ms(cpuTicks(ds)) : 0,
    workers: ms(workers),
    load: ls ? ms(cpuTicks(ls)) : 0,
    bench: self ? ms(cpuTicks(self) + childTicks(self)) : 0,
    machineBusy: ms(m.busy),
    machineTotal: ms(m.total),
  };
}

/** How a phase's CPU was spent, per request and as a share of the machine. */
function cpuSplit(a, b, requests) {
  const d = (k) => b[k] - a[k];
  const ours = d('daemon') + d('workers') + d('load') + d('bench');
  const perReqUs = (k) => (requests > 0 ? round((d(k) * 1000) / requests, 1) : null);
  const pct = (v) => round((v / d('machineTotal')) * 100, 1);
  return {
    workersUsPerRequest: perReqUs('workers'),
    loadUsPerRequest: perReqUs('load'),
    machineBusyPct: pct(d('machineBusy')),
    workersPct: pct(d('workers')),
    loadPct: pct(d('load')),
    daemonPct: pct(d('daemon')),
    benchAndCtlPct: pct(d('bench')),
    othersPct: pct(Math.max(0, d('machineBusy') - ours)),
  };
}

/** Runs a command to completion: {code, stdout, stderr, ms}. */
function run(name, file, args, opts = {}) {
  const started = process.hrtime.bigint();
  const child = spawnTracked(name, file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b) => (stdout += b));
  child.stderr.on('data', (b) => (stderr += b));
  return new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: -1, stdout, stderr: String(err), ms: 0 }));
    child.once('close', (code, signal) => resolve({ code: code ?? signal, stdout, stderr, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
  });
}

let surgeOverride = null;
/** An experiment variant's change to the example's group (bench/experiment.js). */
let groupOverride = {};

function exampleConfig(port, count) {
  const doc = YAML.parse(fs.readFileSync(path.join(EXAMPLE, 'smoothd.yaml'), 'utf8'));
  const groups = Object.entries(doc.groups);
  if (groups.length !== 1) throw new Error('bench: expected one group in examples/hello/smoothd.yaml');
  const [name, g] = groups[0];
  // The example's own settings (readiness, timeouts, rolling policy) are kept;
  // only where it listens, its folder and the number of workers change.
  const rolling = surgeOverride === null ? g.rolling : { ...(g.rolling ?? {}), surge: surgeOverride };
  const group = applyVariant({ ...g, cwd: EXAMPLE, listen: [`127.0.0.1:${port}`], count, ...(rolling ? { rolling } : {}) }, groupOverride);
  return { ...doc, groups: { [name]: group } };
}

// ---------------------------------------------------------------- smoothd

async function startDaemon(tmp, { port, count, tag, extra = {} }) {
  const configPath = path.join(tmp, `smoothd-${tag}.yaml`);
  const config = { ...exampleConfig(port, count), ...extra };
  fs.writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`); // JSON is valid YAML
  const socket = path.join(tmp, `ctl-${tag}.sock`);
  const child = spawnTracked(`smoothd (${tag})`, process.execPath, [SMOOTHD, '--config', configPath, '--socket', socket, '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: ROOT,
  });
  const d = { child, pid: child.pid, socket, config, logs: [], stderr: '', workerPids: new Set(), waiters: [] };
  onJsonLines(child.stdout, (e) => {
    d.logs.push(e);
    if (e.msg === 'worker started' && e.pid) {
      d.workerPids.add(e.pid);
      track(e.pid, `worker ${e.workerId} (${tag})`);
    }
    for (const w of [...d.waiters]) {
      if (w.match(e)) {
        d.waiters.splice(d.waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  child.stderr.on('data', (b) => (d.stderr += b));
  d.waitFor = (match, ms, what) =>
    new Promise((resolve, reject) => {
      const found = d.logs.find(match);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`smoothd (${tag}): no "${what}" within ${ms} ms; stderr: ${d.stderr.slice(-500)}`)), ms);
      d.waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      child.once('exit', (code) => reject(new Error(`smoothd (${tag}) exited with ${code} before "${what}"; stderr: ${d.stderr.slice(-500)}`)));
    });
  await d.waitFor((e) => e.msg === 'every worker is ready', 30_000, 'every worker is ready');
  return d;
}

async function stopDaemon(d) {
  await stopPid(d.pid, 15_000);
  await exited(d.child);
  // Its workers drain and exit with it; whatever is left (smoothd killed) goes by pid.
  for (const pid of d.workerPids) {
    if (alive(pid)) {
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmd.includes('server.js')) await stopPid(pid, 3000);
    }
  }
}

function smoothctl(d, args) {
  return run('smoothctl', process.execPath, [SMOOTHCTL, '--socket', d.socket, ...args], { cwd: ROOT });
}

async function reload(d) {
  const requested = Date.now();
  const r = await smoothctl(d, ['reload', '--json']);
  let report = null;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    // a refusal prints to stderr only
  }
  return { requested, code: r.code, wallMs: r.ms, report, stderr: r.code === 0 ? '' : r.stderr.slice(-400) };
}

// ---------------------------------------------------------------- load

async function startLoad({ port, connections, keepAlive }) {
  return startGenerator('load generator', 'load.js', { type: 'start', url: `http://127.0.0.1:${port}/`, connections, keepAlive, timeoutS: 10 });
}

/** The open-loop generator (bench/openloop.js): `rate` requests/s on a fixed schedule. */
async function startOpenLoad({ port, rate, keepAlive }) {
  return startGenerator('open-loop generator', 'openloop.js', { type: 'start', host: '127.0.0.1', port, rate, keepAlive, timeoutS: 10 });
}

async function startGenerator(name, script, startMsg) {
  const child = forkTracked(name, path.join(ROOT, 'bench', script), ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages = [];
  let waiter = null;
  child.on('message', (m) => {
    messages.push(m);
    if (waiter && waiter.type === m.type) {
      const w = waiter;
      waiter = null;
      w.resolve(m);
    }
  });
  const next = (type, ms) =>
    new Promise((resolve, reject) => {
      const found = messages.find((m) => m.type === type);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`${name}: no "${type}" within ${ms} ms`)), ms);
      waiter = { type, resolve: (m) => (clearTimeout(timer), resolve(m)) };
    });
  child.send(startMsg);
  await next('started', 10_000);
  const startedAt = Date.now();
  return {
    startedAt,
    pid: child.pid,
    async stop(file) {
      child.send({ type: 'stop', file });
      const m = await next('stopped', 30_000);
      await exited(child);
      return { stoppedAt: Date.now(), records: readRecords(file), totals: m.totals, summary: m };
    },
  };
}

// ---------------------------------------------------------------- phases

async function smoothdRun(tmp, opts, keepAlive) {
  const mode = keepAlive ? 'on' : 'off';
  const port = await freePort();
  log(`keep-alive ${mode}: smoothd with 4 workers on 127.0.0.1:${port}`);
  const d = await startDaemon(tmp, { port, count: 4, tag: `ka-${mode}` });
  const load = await startLoad({ port, connections: opts.connections, keepAlive });
  await sleep(opts.warmupS * 1000);
  const steady = { from: Date.now() };
  const cpu0 = procSample(d.pid);
  const snap0 = cpuSnapshot(d, load.pid);
  await sleep(opts.steadyS * 1000);
  steady.to = Date.now();
  const cpu1 = procSample(d.pid);
  const snap1 = cpuSnapshot(d, load.pid);
  log(`keep-alive ${mode}: ${opts.reloads} reloads, one every ${opts.interval} s`);
  const phase = { from: Date.now() };
  const pending = [];
  for (let i = 0; i < opts.reloads; i++) {
    await sleepUntil(phase.from + i * opts.interval * 1000);
    pending.push(reload(d));
  }
  await sleepUntil(phase.from + opts.reloads * opts.interval * 1000);
  phase.to = Date.now();
  const cpu2 = procSample(d.pid);
  const snap2 = cpuSnapshot(d, load.pid);
  const reloads = await Promise.all(pending);
  await sleep(opts.tailS * 1000);
  const file = path.join(tmp, `records-${mode}.bin`);
  const { stoppedAt, records } = await load.stop(file);
  const mem = procSample(d.pid);
  await stopDaemon(d);
  fs.writeFileSync(path.join(OUT, `smoothd-keepalive-${mode}.log`), d.logs.map((e) => JSON.stringify(e)).join('\n') + '\n');

  const windows = reloads.filter((r) => r.report?.startedAt && r.report?.finishedAt).map((r) => ({ from: Date.parse(r.report.startedAt), to: Date.parse(r.report.finishedAt) }));
  const overhead = reloads.map((r) => (r.report?.state === 'succeeded' ? reloadOverhead(d.logs, Date.parse(r.report.startedAt), Date.parse(r.report.finishedAt), r.report.id) : null));
  const all = windowStats(records, load.startedAt - 1000, stoppedAt + 1000);
  const st = windowStats(records, steady.from, steady.to);
  const rl = windowStats(records, phase.from, phase.to);
  const inWin = windowStats(records, phase.from, phase.to, windows);
  const okOverhead = overhead.filter(Boolean);
  return {
    mode,
    port,
    requests: all.requests,
    failed: all.failed,
    failures: all.failures,
    steady: pick(st),
    reloading: pick(rl),
    inReloadWindows: pick(inWin),
    throughputRatio: rl.rps / st.rps,
    inWindowThroughputRatio: inWin.rps / st.rps,
    p99Ratio: rl.p99 / st.p99,
    inWindowP99Ratio: inWin.p99 / st.p99,
    reloads: {
      count: reloads.length,
      succeeded: reloads.filter((r) => r.code === 0 && r.report?.state === 'succeeded').length,
      failures: reloads.filter((r) => r.code !== 0).map((r) => ({ code: r.code, stderr: r.stderr })),
      durationMs: spread(reloads.map((r) => r.report?.durationMs).filter(Number.isFinite)),
      readyMs: spread(reloads.map((r) => r.report?.readyMs).filter(Number.isFinite)),
      smoothctlWallMs: spread(reloads.map((r) => r.wallMs)),
      overheadPerWorkerMs: spread(okOverhead.map((o) => o.overheadPerWorkerMs)),
      overheadPerReloadMs: spread(okOverhead.map((o) => o.overheadMs)),
      overheadInclSpawnPerWorkerMs: spread(okOverhead.map((o) => o.overheadInclSpawnPerWorkerMs)),
      configMs: spread(okOverhead.map((o) => o.configMs)),
      spawnCallMs: spread(okOverhead.flatMap((o) => o.spawnMs)),
      workerPathMs: spread(okOverhead.map((o) => o.workerMs)),
      startupMs: spread(
        d.logs.filter((e) => e.msg === 'worker ready' && Date.parse(e.time) >= phase.from && Date.parse(e.time) <= phase.to + 5000).map((e) => e.startupMs),
      ),
      criticalPathExample: okOverhead[Math.floor(okOverhead.length / 2)]?.path ?? null,
      perReload: overhead.map((o) =>
        o ? { durationMs: o.durationMs, overheadMs: o.overheadMs, configMs: o.configMs, spawnMs: o.spawnMs, gaps: o.path.filter((p) => p.smoothdMs > 0).map((p) => `${p.smoothdMs}: ${p.from} -> ${p.to}`) } : null,
      ),
    },
    cpu: { steady: cpuSplit(snap0, snap1, st.requests), reloading: cpuSplit(snap1, snap2, rl.requests) },
    daemon: {
      cpuSteadyPct: cpuPct(cpu0, cpu1),
      cpuReloadingPct: cpuPct(cpu1, cpu2),
      cpuMsPerReload: cpu1 && cpu2 ? (cpu2.cpuMs - cpu1.cpuMs) / opts.reloads : null,
      rssMb: mem ? mem.VmRSS / 1024 : null,
      hwmMb: mem ? mem.VmHWM / 1024 : null,
      pssMb: mem && Number.isFinite(mem.Pss) ? mem.Pss / 1024 : null,
      privateMb: mem && Number.isFinite(mem.Private_Clean) ? (mem.Private_Clean + mem.Private_Dirty) / 1024 : null,
    },
    chart: {
      label: `keep-alive ${mode}: smoothd, 4 workers, ${opts.connections} connections, ${opts.reloads} reloads`,
      from: load.startedAt,
      to: stoppedAt,
      windows,
      phases: [
        { from: load.startedAt, to: steady.from, label: 'warm-up' },
        { from: steady.from, to: steady.to, label: 'steady' },
        { from: phase.from, to: phase.to, label: `${opts.reloads} reloads, one every ${opts.interval} s` },
        { from: phase.to, to: stoppedAt, label: '' },
      ],
      records,
    },
  };
}

function pick(w) {
  return { requests: w.requests, failed: w.failed, seconds: round(w.seconds, 2), rps: round(w.rps), p50: round(w.p50, 2), p99: round(w.p99, 2), max: round(w.max, 1) };
}

function cpuPct(a, b) {
  if (!a || !b || b.at <= a.at) return null;
  return ((b.cpuMs - a.cpuMs) / (b.at - a.at)) * 100;
}

/**
 * The open-loop phase (issue 15): smoothd with 4 workers under a fixed rate
 * (half the closed-loop steady capacity of this mode), a steady phase, then
 * the same reloads; latency from each request's scheduled time.
 */
async function openLoopRun(tmp, opts, keepAlive, capacityRps) {
  const mode = keepAlive ? 'on' : 'off';
  const port = await freePort();
  const d = await startDaemon(tmp, { port, count: 4, tag: `open-${mode}` });
  let capacity = capacityRps;
  if (!Number.isFinite(capacity)) {
    // No closed-loop phase in this run: measure this mode's capacity on the same daemon.
    log(`open loop, keep-alive ${mode}: measuring the steady capacity (closed loop, ${opts.connections} connections, ${opts.steadyS} s)`);
    const probe = await startLoad({ port, connections: opts.connections, keepAlive });
    await sleep(opts.warmupS * 1000);
    const from = Date.now();
    await sleep(opts.steadyS * 1000);
    const to = Date.now();
    const { records } = await probe.stop(path.join(tmp, `records-capacity-${mode}.bin`));
    capacity = windowStats(records, from, to).rps;
  }
  const rate = Math.max(1, Math.round(opts.openRate ?? capacity * 0.5));
  log(`open loop, keep-alive ${mode}: ${rate} req/s (${opts.openRate ? 'fixed' : `half of ${round(capacity)} req/s`}) on 127.0.0.1:${port}, then ${opts.reloads} reloads, one every ${opts.openInterval} s`);
  const load = await startOpenLoad({ port, rate, keepAlive });
  await sleep(opts.warmupS * 1000);
  const steady = { from: Date.now() };
  await sleep(opts.steadyS * 1000);
  steady.to = Date.now();
  const phase = { from: Date.now() };
  const pending = [];
  for (let i = 0; i < opts.reloads; i++) {
    await sleepUntil(phase.from + i * opts.openInterval * 1000);
    pending.push(reload(d));
  }
  await sleepUntil(phase.from + opts.reloads * opts.openInterval * 1000);
  phase.to = Date.now();
  const reloads = await Promise.all(pending);
  await sleep(opts.tailS * 1000);
  const { stoppedAt, records, summary } = await load.stop(path.join(tmp, `records-open-${mode}.bin`));
  await stopDaemon(d);
  fs.writeFileSync(path.join(OUT, `smoothd-open-keepalive-${mode}.log`), d.logs.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const windows = reloads.filter((r) => r.report?.startedAt && r.report?.finishedAt).map((r) => ({ from: Date.parse(r.report.startedAt), to: Date.parse(r.report.finishedAt) }));
  const all = windowStats(records, load.startedAt - 1000, stoppedAt + 1000);
  const st = windowStats(records, steady.from, steady.to);
  const rl = windowStats(records, phase.from, phase.to);
  const inWin = windowStats(records, phase.from, phase.to, windows);
  const measured = windowStats(records, steady.from, phase.to);
  // Where inside the reloads the slow requests fall: around each reload's
  // start, each new worker's 'worker ready' and each old worker's 'stopping
  // worker' (times from smoothd's log, within the reload phase).
  const inPhase = (msg) =>
    d.logs.filter((e) => e.msg === msg && typeof e.time === 'string').map((e) => Date.parse(e.time)).filter((t) => t >= phase.from && t < phase.to);
  const profile = {
    reloadStart: alignedProfile(records, windows.map((w) => w.from), -200, 1600, 100),
    workerReady: alignedProfile(records, inPhase('worker ready'), -300, 600, 50),
    stopping: alignedProfile(records, inPhase('stopping worker'), -100, 600, 50),
  };
  return {
    mode,
    profile,
    capacityRps: round(capacity),
    offeredRps: rate,
    servedRps: round(measured.rps),
    servedRatio: measured.rps / rate,
    scheduled: summary.scheduled,
    requests: all.requests,
    failed: all.failed,
    failures: all.failures,
    generatorMaxLagMs: round(summary.maxLagMs, 1),
    peakConnections: summary.peakConnections,
    maxQueued: summary.maxQueued,
    steady: pick(st),
    reloading: pick(rl),
    inReloadWindows: pick(inWin),
    inWindowP99Ratio: inWin.p99 / st.p99,
    reloads: {
      count: reloads.length,
      succeeded: reloads.filter((r) => r.code === 0 && r.report?.state === 'succeeded').length,
      durationMs: spread(reloads.map((r) => r.report?.durationMs).filter(Number.isFinite)),
    },
  };
}

async function clusterRun(tmp, opts, keepAlive) {
  const mode = keepAlive ? 'on' : 'off';
  const port = await freePort();
  log(`keep-alive ${mode}: the same workers under node:cluster on 127.0.0.1:${port}`);
  const child = spawnTracked('cluster primary', process.execPath, [path.join(ROOT, 'bench', 'cluster-app.js'), String(port), '4'], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
  const ready = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('cluster-app: not ready within 20 s')), 20_000);
    child.stdout.on('data', (b) => {
      buf += b;
      const line = buf.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
    child.once('exit', (code) => reject(new Error(`cluster-app exited with ${code}`)));
  });
  for (const pid of ready.workers) track(pid, 'cluster worker');
  const load = await startLoad({ port, connections: opts.connections, keepAlive });
  await sleep(opts.warmupS * 1000);
  const from = Date.now();
  const pseudo = { pid: child.pid, workerPids: new Set(ready.workers) };
  const snap0 = cpuSnapshot(pseudo, load.pid);
  await sleep(opts.clusterSteadyS * 1000);
  const to = Date.now();
  const snap1 = cpuSnapshot(pseudo, load.pid);
  const { records } = await load.stop(path.join(tmp, `records-cluster-${mode}.bin`));
  await stopPid(child.pid, 8000);
  for (const pid of ready.workers) await stopPid(pid, 3000);
  const st = windowStats(records, from, to);
  // Here "daemon" is the cluster primary (in the data path: it accepts and hands out connections).
  return { mode, steady: pick(st), cpu: cpuSplit(snap0, snap1, st.requests) };
}

async function memoryAndStatusRun(tmp, opts) {
  const port = await freePort();
  log('16 workers (metrics on, log rings and history at their defaults): daemon memory, a reload of 16, smoothctl status latency');
  const d = await startDaemon(tmp, { port, count: 16, tag: 'w16', extra: { metrics: { listen: `127.0.0.1:${await freePort()}` } } });
  await sleep(1000);
  const atStart = procSample(d.pid);

  const timeN = async (fn) => {
    const ms = [];
    for (let i = 0; i < opts.statusN; i++) ms.push(await fn());
    const s = sortedCopy(ms);
    return { n: s.length, median: round(percentile(s, 50), 1), p95: round(percentile(s, 95), 1), min: round(s[0], 1) };
  };
  let statusOk = true;
  const statusCli = await timeN(async () => {
    const r = await smoothctl(d, ['status', '--json']);
    if (r.code !== 0) statusOk = false;
    return r.ms;
  });
  const bareNode = await timeN(async () => (await run('node -e 0', process.execPath, ['-e', '0'])).ms);
  const rpc = await timeN(() => statusRpc(d.socket));

  const r = await reload(d);
  await sleep(1500);
  const after = procSample(d.pid);
  let statusDoc = null;
  try {
    statusDoc = JSON.parse((await smoothctl(d, ['status', '--json'])).stdout);
  } catch {
    // reported as null
  }
  await stopDaemon(d);
  const mb = (kb) => (Number.isFinite(kb) ? round(kb / 1024, 1) : null);
  return {
    workers: 16,
    rssAtStartMb: mb(atStart?.VmRSS),
    rssMb: mb(after?.VmRSS),
    hwmMb: mb(after?.VmHWM),
    rssAnonMb: mb(after?.RssAnon),
    rssFileMb: mb(after?.RssFile),
    pssMb: mb(after?.Pss),
    privateMb: after && Number.isFinite(after.Private_Clean) ? mb(after.Private_Clean + after.Private_Dirty) : null,
    statusWorkers: statusDoc?.groups?.[0]?.workers?.length ?? null,
    reload16: { code: r.code, durationMs: r.report?.durationMs ?? null, readyMs: r.report?.readyMs ?? null },
    statusCli: { ...statusCli, ok: statusOk },
    bareNode,
    statusRpc: rpc,
  };
}

/** One `status` JSON-RPC call on a fresh connection, in this process: ms. */
function statusRpc(socket) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = net.connect(socket);
    let buf = '';
    c.setEncoding('utf8');
    c.on('connect', () => c.write('{"jsonrpc":"2.0","id":1,"method":"status"}\n'));
    c.on('data', (s) => {
      buf += s;
      if (buf.includes('\n')) {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        c.destroy();
        try {
          if (JSON.parse(buf.slice(0, buf.indexOf('\n'))).result?.version !== 1) return reject(new Error('status: unexpected answer'));
        } catch (err) {
          return reject(err);
        }
        resolve(ms);
      }
    });
    c.on('error', reject);
  });
}

// ---------------------------------------------------------------- report

function machine() {
  let autocannonVersion = null;
  try {
    autocannonVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'autocannon', 'package.json'), 'utf8')).version;
  } catch {
    // not installed?
  }
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model?.trim() ?? null,
    memGb: round(os.totalmem() / 2 ** 30, 1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    autocannon: autocannonVersion,
  };
}

function evaluate(res) {
  const t = [];
  const add = (name, pass, detail) => t.push({ name, pass, detail });
  if (res.modes) evaluateClosed(res, add);
  if (res.open) evaluateOpen(res, add);
  if (res.memory) evaluateMemory(res, add);
  if (res.memoryLong) evaluateMemoryLong(res.memoryLong, add);
  if (res.scale) evaluateScale(res.scale, TARGETS, add);
  return t;
}

function evaluateOpen(res, add) {
  const [on, off] = [res.open.on, res.open.off];
  const d = (m) => `keep-alive ${m.mode}`;
  add(
    `open loop at 50% of capacity: 0 failed requests over ${res.options.reloads} reloads, both modes`,
    on.failed === 0 && off.failed === 0 && on.reloads.succeeded === on.reloads.count && off.reloads.succeeded === off.reloads.count,
    `${d(on)} ${on.failed} of ${on.requests}, off ${off.failed} of ${off.requests}; reloads succeeded ${on.reloads.succeeded + off.reloads.succeeded}/${on.reloads.count + off.reloads.count}`,
  );
  add(
    `open loop: p99 inside reload windows <= ${TARGETS.openP99Ratio}x steady p99`,
    on.inWindowP99Ratio <= TARGETS.openP99Ratio && off.inWindowP99Ratio <= TARGETS.openP99Ratio,
    `on ${fx(on.inWindowP99Ratio)}x (${on.inReloadWindows.p99} vs ${on.steady.p99} ms), off ${fx(off.inWindowP99Ratio)}x (${off.inReloadWindows.p99} vs ${off.steady.p99} ms)`,
  );
  add(
    `open loop: served rate = offered rate (>= ${TARGETS.servedRatio}x)`,
    on.servedRatio >= TARGETS.servedRatio && off.servedRatio >= TARGETS.servedRatio,
    `on ${on.servedRps} of ${on.offeredRps} req/s (${fx(on.servedRatio, 3)}x), off ${off.servedRps} of ${off.offeredRps} req/s (${fx(off.servedRatio, 3)}x)`,
  );
}

function evaluateClosed(res, add) {
  const [on, off] = [res.modes.on, res.modes.off];
  const both = (f) => [f(on), f(off)];
  add(`0 failed requests over ${res.options.reloads} reloads at ${res.options.connections} connections, both modes`, on.failed === 0 && off.failed === 0 && on.reloads.succeeded === on.reloads.count && off.reloads.succeeded === off.reloads.count, `keep-alive on ${on.failed} of ${on.requests}, off ${off.failed} of ${off.requests}; reloads succeeded ${on.reloads.succeeded + off.reloads.succeeded}/${on.reloads.count + off.reloads.count}`);
  add(`p99 while reloading <= ${TARGETS.p99Ratio}x steady`, both((m) => m.p99Ratio <= TARGETS.p99Ratio).every(Boolean), `on ${fx(on.p99Ratio)}x (${on.reloading.p99} vs ${on.steady.p99} ms), off ${fx(off.p99Ratio)}x (${off.reloading.p99} vs ${off.steady.p99} ms)`);
  add(`throughput while reloading >= ${TARGETS.throughputRatio}x steady`, both((m) => m.throughputRatio >= TARGETS.throughputRatio).every(Boolean), `on ${fx(on.throughputRatio)}x, off ${fx(off.throughputRatio)}x`);
  const cr = res.cluster;
  add(`steady throughput >= ${TARGETS.clusterRatio}x node:cluster`, cr.on.ratio >= TARGETS.clusterRatio && cr.off.ratio >= TARGETS.clusterRatio, `on ${fx(cr.on.ratio)}x (${on.steady.rps} vs ${cr.on.steady.rps} req/s), off ${fx(cr.off.ratio)}x (${off.steady.rps} vs ${cr.off.steady.rps} req/s)`);
  const maxReload = Math.max(on.reloads.durationMs.max, off.reloads.durationMs.max);
  add(`a reload of 4 workers <= ${TARGETS.reloadMs} ms (every reload)`, maxReload <= TARGETS.reloadMs, `max ${round(maxReload)} ms; median on ${round(on.reloads.durationMs.median)} ms, off ${round(off.reloads.durationMs.median)} ms`);
  const maxOv = Math.max(on.reloads.overheadPerWorkerMs.max, off.reloads.overheadPerWorkerMs.max);
  add(`smoothd's own overhead <= ${TARGETS.overheadMs} ms per replaced worker (every reload)`, maxOv <= TARGETS.overheadMs, `max ${fx(maxOv, 1)} ms; median on ${fx(on.reloads.overheadPerWorkerMs.median, 1)} ms, off ${fx(off.reloads.overheadPerWorkerMs.median, 1)} ms`);
}

function evaluateMemory(res, add) {
  const m = res.memory;
  const mem = `RSS ${m.rssMb} MB, PSS ${m.pssMb} MB, private ${m.privateMb} MB (RSS peak ${m.hwmMb}; anon ${m.rssAnonMb}, file-backed ${m.rssFileMb})`;
  add(`daemon RSS <= ${TARGETS.rssMb} MB with 16 workers`, m.rssMb !== null && m.rssMb <= TARGETS.rssMb, mem);
  add(`daemon private memory <= ${TARGETS.privateMb} MB with 16 workers`, m.privateMb !== null && m.privateMb <= TARGETS.privateMb, mem);
}

function fx(x, d = 2) {
  return Number.isFinite(x) ? x.toFixed(d) : 'n/a';
}

function table(res) {
  const parts = [];
  if (res.modes) parts.push(closedTable(res));
  if (res.open) parts.push(openTable(res));
  if (res.memory) parts.push(memoryLines(res));
  if (res.memoryLong) parts.push(memoryLongLines(res.memoryLong));
  if (res.scale) parts.push(scaleTable(res.scale));
  return parts.join('\n\n');
}

function columns(rows) {
  const w = Math.max(...rows.map((r) => r[0].length));
  const c1 = Math.max(...rows.map((r) => r[1].length));
  return rows.map((r) => `${r[0].padEnd(w)}  ${r[1].padEnd(c1)}  ${r[2]}`);
}

function openTable(res) {
  const [on, off] = [res.open.on, res.open.off];
  const rows = [];
  const row = (label, a, b) => rows.push([label, String(a), String(b)]);
  const lat = (w) => `${w.p50} / ${w.p99} / ${w.max}`;
  row(`open loop (latency from the scheduled time; a reload every ${res.options.openIntervalS} s)`, 'keep-alive on', 'keep-alive off');
  row('offered req/s (50% of capacity)', `${on.offeredRps} (of ${on.capacityRps})`, `${off.offeredRps} (of ${off.capacityRps})`);
  row('served req/s (steady + reload phase)', `${on.servedRps} (${fx(on.servedRatio, 3)}x)`, `${off.servedRps} (${fx(off.servedRatio, 3)}x)`);
  const failed = (m) => `${m.requests} / ${m.failed}${m.failures.unsent ? ` (${m.failures.unsent} never sent)` : ''}`;
  row('requests / failed', failed(on), failed(off));
  row('p50 / p99 / max ms steady', lat(on.steady), lat(off.steady));
  row('p50 / p99 / max ms inside reload windows', lat(on.inReloadWindows), lat(off.inReloadWindows));
  row('p99 inside reload windows / steady', `${fx(on.inWindowP99Ratio)}x`, `${fx(off.inWindowP99Ratio)}x`);
  row('p50 / p99 / max ms reload phase', lat(on.reloading), lat(off.reloading));
  row('reloads succeeded, median ms', `${on.reloads.succeeded}/${on.reloads.count}, ${fx(on.reloads.durationMs.median, 0)}`, `${off.reloads.succeeded}/${off.reloads.count}, ${fx(off.reloads.durationMs.median, 0)}`);
  const gen = (m) => `${m.generatorMaxLagMs} / ${m.peakConnections} / ${m.maxQueued}`;
  row('generator: max lag ms / peak conns / max queued', gen(on), gen(off));
  return [...columns(rows), ...profileLines(res.open)].join('\n');
}

/** The open loop's p99 around reload events, one line per anchor and mode (bins with no request show '-'). */
function profileLines(open) {
  const lines = [];
  const anchors = [
    ['reloadStart', 'reload start', 100],
    ['workerReady', "a new worker's ready", 50],
    ['stopping', "an old worker's stop", 50],
  ];
  for (const [key, label, bin] of anchors) {
    for (const m of [open.on, open.off]) {
      const bins = m.profile?.[key];
      if (!bins) continue;
      const cells = bins.map((b) => `${b.offsetMs}:${b.requests > 0 ? fx(b.p99, 1) : '-'}`).join(' ');
      lines.push(`p99 ms by ms since ${label} (${bin} ms bins), keep-alive ${m.mode}: ${cells}`);
    }
  }
  return lines;
}

function memoryLines(res) {
  const m = res.memory;
  return [
    `16 workers: daemon RSS ${m.rssMb} MB, PSS ${m.pssMb} MB, private ${m.privateMb} MB (RSS peak ${m.hwmMb}, anon ${m.rssAnonMb}, file-backed ${m.rssFileMb}); reload of 16: ${m.reload16.durationMs} ms`,
    `smoothctl status --json: median ${m.statusCli.median} ms, p95 ${m.statusCli.p95} ms (node -e 0: median ${m.bareNode.median} ms, p95 ${m.bareNode.p95} ms; status RPC alone: median ${m.statusRpc.median} ms), n=${m.statusCli.n}`,
  ].join('\n');
}

function closedTable(res) {
  const on = res.modes.on;
  const off = res.modes.off;
  const rows = [];
  const row = (label, a, b) => rows.push([label, String(a), String(b)]);
  const sp = (s, d = 0) => (s && s.n > 0 ? `${fx(s.min, d)} / ${fx(s.median, d)} / ${fx(s.max, d)}` : 'n/a');
  row('', 'keep-alive on', 'keep-alive off');
  row('requests (whole run)', on.requests, off.requests);
  row('failed (non-2xx+errors+timeouts+dropped+hung)', on.failed, off.failed);
  row('req/s steady', on.steady.rps, off.steady.rps);
  row('req/s while reloading (phase)', `${on.reloading.rps} (${fx(on.throughputRatio)}x)`, `${off.reloading.rps} (${fx(off.throughputRatio)}x)`);
  row('req/s inside reload windows', `${on.inReloadWindows.rps} (${fx(on.inWindowThroughputRatio)}x)`, `${off.inReloadWindows.rps} (${fx(off.inWindowThroughputRatio)}x)`);
  row('p50 ms steady / reloading', `${on.steady.p50} / ${on.reloading.p50}`, `${off.steady.p50} / ${off.reloading.p50}`);
  row('p99 ms steady / reloading', `${on.steady.p99} / ${on.reloading.p99} (${fx(on.p99Ratio)}x)`, `${off.steady.p99} / ${off.reloading.p99} (${fx(off.p99Ratio)}x)`);
  row('p99 ms inside reload windows', `${on.inReloadWindows.p99} (${fx(on.inWindowP99Ratio)}x)`, `${off.inReloadWindows.p99} (${fx(off.inWindowP99Ratio)}x)`);
  row('node:cluster req/s steady', res.cluster.on.steady.rps, res.cluster.off.steady.rps);
  row('smoothd / cluster (steady)', `${fx(res.cluster.on.ratio)}x`, `${fx(res.cluster.off.ratio)}x`);
  row('reloads succeeded', `${on.reloads.succeeded}/${on.reloads.count}`, `${off.reloads.succeeded}/${off.reloads.count}`);
  row('reload ms min / median / max', sp(on.reloads.durationMs), sp(off.reloads.durationMs));
  row('  all new ready ms (median)', fx(on.reloads.readyMs.median, 0), fx(off.reloads.readyMs.median, 0));
  row('  worker start-to-ready ms (median)', fx(on.reloads.startupMs.median, 0), fx(off.reloads.startupMs.median, 0));
  row('smoothd overhead ms/worker min/med/max', sp(on.reloads.overheadPerWorkerMs, 1), sp(off.reloads.overheadPerWorkerMs, 1));
  row('  of which reading the config ms (median)', fx(on.reloads.configMs.median, 0), fx(off.reloads.configMs.median, 0));
  row('  counting spawn() calls too, ms/worker', sp(on.reloads.overheadInclSpawnPerWorkerMs, 1), sp(off.reloads.overheadInclSpawnPerWorkerMs, 1));
  row("spawn: decision to 'worker started' ms (med/max)", `${fx(on.reloads.spawnCallMs.median, 0)} / ${fx(on.reloads.spawnCallMs.max, 0)}`, `${fx(off.reloads.spawnCallMs.median, 0)} / ${fx(off.reloads.spawnCallMs.max, 0)}`);
  const cs = (m) => `${fx(m.cpu.steady.workersUsPerRequest, 0)} / ${fx(m.cpu.reloading.workersUsPerRequest, 0)}`;
  row('worker CPU us/request steady / reloading', cs(on), cs(off));
  row('  node:cluster workers us/request', fx(res.cluster.on.cpu.workersUsPerRequest, 0), fx(res.cluster.off.cpu.workersUsPerRequest, 0));
  row('  node:cluster primary CPU %', fx(res.cluster.on.cpu.daemonPct, 1), fx(res.cluster.off.cpu.daemonPct, 1));
  const mb = (m) => `${fx(m.cpu.steady.machineBusyPct, 0)} / ${fx(m.cpu.reloading.machineBusyPct, 0)}`;
  row('machine CPU busy % steady / reloading', mb(on), mb(off));
  const ot = (m) => `${fx(m.cpu.steady.othersPct, 0)} / ${fx(m.cpu.reloading.othersPct, 0)}`;
  row('  of it other processes %', ot(on), ot(off));
  row('daemon CPU % steady / reloading', `${fx(on.daemon.cpuSteadyPct, 1)} / ${fx(on.daemon.cpuReloadingPct, 1)}`, `${fx(off.daemon.cpuSteadyPct, 1)} / ${fx(off.daemon.cpuReloadingPct, 1)}`);
  row('daemon CPU ms per reload', fx(on.daemon.cpuMsPerReload, 0), fx(off.daemon.cpuMsPerReload, 0));
  const mem = (m) => `${fx(m.daemon.rssMb, 1)} / ${fx(m.daemon.pssMb, 1)} / ${fx(m.daemon.privateMb, 1)}`;
  row('daemon RSS / PSS / private MB (4 workers, after reloads)', mem(on), mem(off));
  return columns(rows).join('\n');
}

function targetsText(targets) {
  return targets.map((t) => `${t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.detail}`).join('\n');
}

function updateReadme(text) {
  const file = path.join(ROOT, 'README.md');
  let readme;
  try {
    readme = fs.readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  const start = '<!-- bench:results:start -->';
  const end = '<!-- bench:results:end -->';
  const a = readme.indexOf(start);
  const b = readme.indexOf(end);
  if (a < 0 || b < a) return false;
  fs.writeFileSync(file, `${readme.slice(0, a + start.length)}\n${text}\n${readme.slice(b)}`);
  return true;
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseOptions(process.argv.slice(2), process.env);
  surgeOverride = opts.surge;
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'smoothd.js'))) throw new Error('dist/ is missing: run `npm run bench` (it builds first) or `npx tsc -p tsconfig.json`');
  fs.mkdirSync(OUT, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-bench-'));
  cleanupTmp = () => fs.rmSync(tmp, { recursive: true, force: true });
  const began = Date.now();
  const load0 = os.loadavg()[0];
  if (load0 > 1.5) log(`warning: load average ${load0.toFixed(1)} on ${os.cpus().length} cores before the run: other processes compete for the CPU and the numbers will be noisy`);
  log(`${opts.quick ? 'quick' : 'full'} run: ${opts.connections} connections, ${opts.reloads} reloads every ${opts.interval} s, steady ${opts.steadyS} s`);
  try {
    if (opts.experiment !== null) return await experimentRun(tmp, opts);
    const want = (phase) => opts.only === null || opts.only.includes(phase);
    let modes = null;
    let cluster = null;
    if (want('closed')) {
      modes = {};
      cluster = {};
      for (const keepAlive of [true, false]) {
        const m = await smoothdRun(tmp, opts, keepAlive);
        modes[m.mode] = m;
        const c = await clusterRun(tmp, opts, keepAlive);
        cluster[c.mode] = { steady: c.steady, ratio: m.steady.rps / c.steady.rps, cpu: c.cpu };
      }
    }
    let open = null;
    if (want('open')) {
      open = {};
      for (const keepAlive of [true, false]) {
        const m = await openLoopRun(tmp, opts, keepAlive, modes?.[keepAlive ? 'on' : 'off']?.steady.rps);
        open[m.mode] = m;
      }
    }
    const memory = want('memory') ? await memoryAndStatusRun(tmp, opts) : null;
    const memoryLong = want('memory') && opts.memoryReloads > 0 ? await memoryLongRun(tmp, { root: ROOT, smoothd: SMOOTHD, clkTck: CLK_TCK, log, reloads: opts.memoryReloads }) : null;
    const scale = want('scale') ? await scaleRun(tmp, { root: ROOT, smoothd: SMOOTHD, smoothctl: SMOOTHCTL, run, clkTck: CLK_TCK, log, statusN: opts.statusN }) : null;

    const bucketMs = 250;
    const svg = modes && renderChart({
      title: 'smoothd: a deploy under load',
      subtitle: `examples/hello, 4 workers, ${opts.connections} connections (autocannon), ${opts.reloads} x smoothctl reload; ${os.cpus().length} cores, Node ${process.version}; ${bucketMs} ms buckets`,
      bucketMs,
      runs: ['on', 'off'].map((k) => {
        const c = modes[k].chart;
        return {
          label: c.label,
          buckets: buckets(c.records, c.from, c.from + Math.floor((c.to - c.from) / bucketMs) * bucketMs, bucketMs),
          windows: c.windows.map((w) => ({ from: w.from - c.from, to: w.to - c.from })),
          phases: c.phases.map((p) => ({ ...p, from: p.from - c.from, to: p.to - c.from })),
        };
      }),
    });
    for (const k of Object.keys(modes ?? {})) delete modes[k].chart;

    const res = {
      version: 1,
      at: new Date(began).toISOString(),
      quick: opts.quick,
      options: { connections: opts.connections, reloads: opts.reloads, intervalS: opts.interval, openIntervalS: opts.openInterval, steadyS: opts.steadyS, warmupS: opts.warmupS, clusterSteadyS: opts.clusterSteadyS },
      machine: machine(),
      rolling: Object.values(exampleConfig(1, 4).groups)[0].rolling ?? null,
      modes,
      cluster,
      open,
      memory,
      memoryLong,
      scale,
      runSeconds: round((Date.now() - began) / 1000, 1),
      loadAverage: { before: round(load0, 2), after: round(os.loadavg()[0], 2) },
    };
    res.targets = evaluate(res);

    const tbl = table(res);
    const tgt = targetsText(res.targets);
    const mc = res.machine;
    const head = `smoothd benchmark (${opts.quick ? 'quick' : 'full'}): examples/hello, 4 workers, ${opts.connections} connections, ${opts.reloads} reloads one every ${opts.interval} s\n${mc.cpus} cores (${mc.cpuModel}), ${mc.memGb} GB, ${mc.kernel}, Node ${mc.node}, autocannon ${mc.autocannon}; run ${res.runSeconds} s, load average ${res.loadAverage.before} before / ${res.loadAverage.after} after`;
    process.stdout.write(`\n${head}\n\n${tbl}\n\nTargets (issues 4 and 15):\n${tgt}\n\n`);
    process.stdout.write(`${JSON.stringify(res)}\n`);

    fs.writeFileSync(path.join(OUT, 'results.json'), `${JSON.stringify(res, null, 2)}\n`);
    if (svg) fs.writeFileSync(path.join(OUT, 'deploy.svg'), svg);
    if (opts.full) {
      fs.mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, 'docs', 'deploy.svg'), svg);
      const md = `\`\`\`\n${head}\n\n${tbl}\n\`\`\`\n\n${res.targets.map((t) => `- **${t.pass ? 'PASS' : 'MISS'}** ${t.name}: ${t.detail}`).join('\n')}`;
      if (updateReadme(md)) log('README.md: refreshed the generated block of "Measured numbers"');
      log('wrote bench/out/results.json, bench/out/deploy.svg and docs/deploy.svg');
    } else {
      log('wrote bench/out/results.json and bench/out/deploy.svg (docs/ and README.md change only on a full run)');
    }
    return 0; // a MISS is a result, not an error
  } finally {
    await stopAll();
    cleanupTmp();
  }
}

/**
 * `--experiment NAME`: trials of the option off and on, interleaved (A B A B
 * ...), each a closed-loop run at saturation and an open-loop run at half of
 * the capacity that trial measured; prints medians and ranges, writes
 * bench/out/experiment-NAME.json.
 */
async function experimentRun(tmp, opts) {
  const e = EXPERIMENTS[opts.experiment];
  const plan = trialPlan(opts.experiment, opts.trials);
  log(`experiment ${opts.experiment}: ${e.title}; ${plan.length} trials (${opts.connections} connections, ${opts.reloads} reloads every ${opts.interval} s, steady ${opts.steadyS} s)`);
  const results = [];
  for (const [i, t] of plan.entries()) {
    groupOverride = e.variants[t.variant];
    log(`trial ${i + 1}/${plan.length}: ${t.variant}, keep-alive ${t.keepAlive ? 'on' : 'off'}`);
    const closed = await smoothdRun(tmp, opts, t.keepAlive);
    const open = await openLoopRun(tmp, opts, t.keepAlive, closed.steady.rps);
    results.push({ ...t, figures: trialFigures(closed, open), loadAverage: round(os.loadavg()[0], 2) });
  }
  groupOverride = {};
  const summary = summarize(results);
  const text = summaryText(summary);
  const mc = machine();
  process.stdout.write(`
experiment ${opts.experiment}: ${e.title}
${mc.cpus} cores, Node ${mc.node}; examples/hello, 4 workers; per trial ${opts.steadyS} s steady + ${opts.reloads} reloads every ${opts.interval} s (open loop: every ${opts.openInterval} s)

${text}
`);
  fs.writeFileSync(path.join(OUT, `experiment-${opts.experiment}.json`), `${JSON.stringify({ experiment: opts.experiment, title: e.title, at: new Date().toISOString(), machine: mc, options: { connections: opts.connections, reloads: opts.reloads, intervalS: opts.interval, steadyS: opts.steadyS, trials: opts.trials }, summary, results }, null, 2)}
`);
  log(`wrote bench/out/experiment-${opts.experiment}.json`);
  return 0;
}

let cleanupTmp = () => undefined;
installCleanup(() => cleanupTmp());
main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err) => {
    process.stderr.write(`bench: ${err.stack ?? err}\n`);
    await stopAll();
    process.exitCode = 1;
  },
);
