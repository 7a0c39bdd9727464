// The scaling phase of the benchmark (`node bench/run.js --only scale`; issue 15 item 5).
//
// For 16, 64, 256 and 1024 workers (1024 = the config's maximum) it starts the
// compiled smoothd with `sleep` workers (ready: 50ms, rolling: {surge: 16}, no
// listen socket: what is measured is smoothd's own cost per worker, not an
// app's start-up), and for each count does one reload and measures:
//   - the reload's wall time (`smoothctl reload --json`, client side) and the
//     daemon's durationMs;
//   - the daemon's CPU over the reload (/proc/PID/stat utime+stime before and
//     after), per replaced worker;
//   - the daemon's RSS and private memory after start-up, for the growth per worker;
// and at the largest count, `smoothctl status --json` against `node -e 0`,
// run in turn (A B A B ...) so a drifting machine slows both alike; the medians.
//
// Every process it starts is ended by pid (bench/procs.js), workers included.
import fs from 'node:fs';
import path from 'node:path';
import { startSmoothdReady, stopSmoothd } from './procs.js';
import { percentile, procKb, sortedCopy, cpuTicks } from './stats.js';

export const SCALE_COUNTS = [16, 64, 256, 1024];
export const SCALE_SURGE = 16;

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const round = (x, d = 0) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);
const mb = (kb) => (Number.isFinite(kb) ? round(kb / 1024, 1) : null);

function sample(pid, clkTck) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const status = procKb(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), ['VmRSS', 'VmHWM']);
    let rollup = {};
    try {
      rollup = procKb(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), ['Pss', 'Private_Clean', 'Private_Dirty']);
    } catch {
      // older kernels
    }
    const priv = Number.isFinite(rollup.Private_Clean) ? rollup.Private_Clean + rollup.Private_Dirty : null;
    return { cpuMs: (cpuTicks(stat) * 1000) / clkTck, rssKb: status.VmRSS, hwmKb: status.VmHWM, pssKb: rollup.Pss ?? null, privateKb: priv };
  } catch {
    return null;
  }
}

function sleepConfig(count) {
  return {
    groups: {
      sleepers: {
        command: ['sleep', 'infinity'],
        count,
        ready: '50ms',
        readyTimeout: '30s',
        stopTimeout: '5s',
        rolling: { surge: Math.min(SCALE_SURGE, count) },
      },
    },
  };
}

async function startSleepers(ctx, tmp, count) {
  const configPath = path.join(tmp, `smoothd-scale-${count}.yaml`);
  fs.writeFileSync(configPath, `${JSON.stringify(sleepConfig(count), null, 2)}\n`); // JSON is valid YAML
  const socket = path.join(tmp, `ctl-scale-${count}.sock`);
  const started = Date.now();
  const d = await startSmoothdReady(`smoothd (scale ${count})`, [ctx.smoothd, '--config', configPath, '--socket', socket, '--log-format', 'json'], {
    cwd: ctx.root,
    timeoutMs: 120_000,
    workerLabel: 'sleep worker',
  });
  d.socket = socket;
  d.startupMs = Date.now() - started;
  return d;
}

async function stopSleepers(d) {
  await stopSmoothd(d, 30_000, (cmd) => cmd.startsWith('sleep'));
}

/** A in turn with B, n times each after one of each not counted: medians and the median of the pairwise differences. */
async function interleaved(n, a, b) {
  await a();
  await b();
  const as = [];
  const bs = [];
  const diffs = [];
  for (let i = 0; i < n; i++) {
    const x = await a();
    const y = await b();
    as.push(x);
    bs.push(y);
    diffs.push(x - y);
  }
  const med = (v) => round(percentile(sortedCopy(v), 50), 1);
  return { n, aMedian: med(as), bMedian: med(bs), diffMedian: med(diffs), aP95: round(percentile(sortedCopy(as), 95), 1) };
}

/**
 * ctx: { root, smoothd, smoothctl, run(name, file, args, opts) -> {code, stdout, stderr, ms}, clkTck, log, statusN, counts? }
 */
export async function scaleRun(tmp, ctx) {
  const counts = ctx.counts ?? SCALE_COUNTS;
  const rows = [];
  let status = null;
  for (const count of counts) {
    ctx.log(`scale: ${count} sleep workers, surge ${Math.min(SCALE_SURGE, count)}: start, one reload`);
    const d = await startSleepers(ctx, tmp, count);
    try {
      await sleep(500);
      const atStart = sample(d.pid, ctx.clkTck);
      const before = sample(d.pid, ctx.clkTck);
      const r = await ctx.run('smoothctl', process.execPath, [ctx.smoothctl, '--socket', d.socket, 'reload', '--json'], { cwd: ctx.root });
      const after = sample(d.pid, ctx.clkTck);
      let report = null;
      try {
        report = JSON.parse(r.stdout);
      } catch {
        // a refusal prints to stderr only
      }
      if (r.code !== 0) ctx.log(`scale ${count}: reload exited ${r.code}: ${r.stderr.slice(-300)}`);
      const cpuMs = before && after ? after.cpuMs - before.cpuMs : null;
      rows.push({
        workers: count,
        startupMs: d.startupMs,
        reloadCode: r.code,
        reloadWallMs: round(r.ms),
        reloadDurationMs: report?.durationMs ?? null,
        daemonCpuMs: round(cpuMs),
        cpuPerWorkerMs: round(cpuMs / count, 2),
        rssAtStartMb: mb(atStart?.rssKb),
        privateAtStartMb: mb(atStart?.privateKb),
        pssAtStartMb: mb(atStart?.pssKb),
        rssAfterReloadMb: mb(after?.rssKb),
        privateAfterReloadMb: mb(after?.privateKb),
        hwmMb: mb(after?.hwmKb),
      });
      if (count === counts[counts.length - 1]) {
        const st = await interleaved(
          ctx.statusN,
          async () => (await ctx.run('smoothctl', process.execPath, [ctx.smoothctl, '--socket', d.socket, 'status', '--json'], { cwd: ctx.root })).ms,
          async () => (await ctx.run('node -e 0', process.execPath, ['-e', '0'])).ms,
        );
        status = { workers: count, statusMedianMs: st.aMedian, statusP95Ms: st.aP95, bareNodeMedianMs: st.bMedian, overBareNodeMs: st.diffMedian, n: st.n };
      }
    } finally {
      await stopSleepers(d);
    }
  }
  const first = rows[0];
  const last = rows[rows.length - 1];
  const span = last.workers - first.workers;
  return {
    surge: SCALE_SURGE,
    rows,
    status,
    cpuRatio: round(last.cpuPerWorkerMs / first.cpuPerWorkerMs, 2),
    rssPerWorkerKb: span > 0 ? round(((last.rssAtStartMb - first.rssAtStartMb) * 1024) / span, 1) : null,
    privatePerWorkerKb: span > 0 && last.privateAtStartMb !== null ? round(((last.privateAtStartMb - first.privateAtStartMb) * 1024) / span, 1) : null,
  };
}

export function evaluateScale(s, targets, add) {
  const first = s.rows[0];
  const last = s.rows[s.rows.length - 1];
  add(
    `daemon CPU per replaced worker within ${targets.scaleCpuRatio}x from ${first.workers} to ${last.workers} workers`,
    Number.isFinite(s.cpuRatio) && s.cpuRatio <= targets.scaleCpuRatio,
    `${first.cpuPerWorkerMs} ms at ${first.workers}, ${last.cpuPerWorkerMs} ms at ${last.workers} (${s.cpuRatio}x)`,
  );
  add(
    `a reload of ${last.workers} sleep workers < ${targets.scaleReloadMs / 1000} s`,
    last.reloadCode === 0 && last.reloadWallMs < targets.scaleReloadMs,
    `${last.reloadWallMs} ms (exit ${last.reloadCode}), ${last.daemonCpuMs} ms daemon CPU`,
  );
  if (s.status) {
    add(
      `smoothctl status --json < ${targets.scaleStatusMs} ms over node -e 0 at ${s.status.workers} workers`,
      Number.isFinite(s.status.overBareNodeMs) && s.status.overBareNodeMs < targets.scaleStatusMs,
      `+${s.status.overBareNodeMs} ms (status median ${s.status.statusMedianMs} ms, node -e 0 ${s.status.bareNodeMedianMs} ms, in turn, n=${s.status.n})`,
    );
  }
}

export function scaleTable(s) {
  const head = ['workers', 'start ms', 'reload ms', 'daemon CPU ms', 'CPU ms/worker', 'RSS MB', 'private MB', 'RSS after reload'];
  const lines = [head];
  for (const r of s.rows) {
    lines.push([r.workers, r.startupMs, r.reloadWallMs, r.daemonCpuMs, r.cpuPerWorkerMs, r.rssAtStartMb, r.privateAtStartMb, r.rssAfterReloadMb].map(String));
  }
  const w = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const out = lines.map((l) => l.map((c, i) => c.padStart(w[i])).join('  '));
  out.unshift(`scaling: sleep workers, ready: 50ms, rolling: {surge: ${s.surge}}, one reload each`);
  out.push(`growth per worker (${s.rows[0].workers} -> ${s.rows[s.rows.length - 1].workers}): RSS ${s.rssPerWorkerKb} KB, private ${s.privatePerWorkerKb} KB`);
  if (s.status) out.push(`smoothctl status --json at ${s.status.workers}: median ${s.status.statusMedianMs} ms, node -e 0 ${s.status.bareNodeMedianMs} ms, difference ${s.status.overBareNodeMs} ms (in turn, n=${s.status.n})`);
  return out.join('\n');
}
