// The long memory phase of the benchmark (`node bench/run.js --only memory
// --reloads 1000`; issue 15 item 6): is the daemon's memory flat over many reloads?
//
// It starts the compiled smoothd with 16 `sh` workers (each prints a line to
// stdout and one to stderr, then sleeps: the log rings fill and wrap), metrics
// on (a /metrics listener, scraped at every sample), log rings and release
// history at their defaults, and does N reloads one after the other over the
// control socket (RPC `reload` with `wait`, in this process: no `node` start-up
// per reload). Every N/50 reloads it samples the daemon's private memory, PSS
// and RSS (/proc/PID/smaps_rollup), after a `status` call and a scrape.
// Back to back, V8 grows its heap over the first ~100 reloads (19 -> ~64 MB
// private on Node 20 while the live JS heap stays ~10 MB: heap snapshots), so
// "flat" compares after that warm-up: the median private memory of the last
// quarter of the samples is within MEMORY_FLAT_MB of the second quarter's.
// The first quarter's median is reported too.
//
// Every process it starts is ended by pid (bench/procs.js), workers included.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startSmoothdReady, stopSmoothd } from './procs.js';
import { cpuTicks, percentile, procKb, sortedCopy } from './stats.js';
import { rpc } from './rpc.js';
import { freePort, memoryConfig, MEMORY_WORKERS } from './memory-setup.js';

export { MEMORY_WORKERS };
export const MEMORY_FLAT_MB = 2;

const round = (x, d = 0) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);
const mb = (kb) => (Number.isFinite(kb) ? round(kb / 1024, 2) : null);

function memSample(pid) {
  const r = procKb(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), ['Rss', 'Pss', 'Private_Clean', 'Private_Dirty']);
  return { rssKb: r.Rss, pssKb: r.Pss, privateKb: r.Private_Clean + r.Private_Dirty };
}

function scrape(port) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let n = 0;
        res.on('data', (b) => (n += b.length));
        res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`/metrics: HTTP ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

/**
 * ctx: { root, smoothd, clkTck, log, reloads }
 */
export async function memoryLongRun(tmp, ctx) {
  const reloads = ctx.reloads;
  const metricsPort = await freePort();
  const config = memoryConfig(metricsPort);
  const configPath = path.join(tmp, 'smoothd-memory-long.yaml');
  fs.writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`); // JSON is valid YAML
  const socket = path.join(tmp, 'ctl-memory-long.sock');
  ctx.log(`memory: ${MEMORY_WORKERS} sh workers, metrics on, log rings and history at their defaults; ${reloads} reloads`);
  const daemon = await startSmoothdReady('smoothd (memory long)', [...(ctx.nodeArgs ?? []), ctx.smoothd, '--config', configPath, '--socket', socket, '--log-format', 'json'], {
    cwd: ctx.root,
    timeoutMs: 60_000,
    workerLabel: 'sh worker',
  });
  try {
    const every = Math.max(1, Math.floor(reloads / 50));
    const samples = [];
    const cpu = () => (cpuTicks(fs.readFileSync(`/proc/${daemon.pid}/stat`, 'utf8')) * 1000) / ctx.clkTck;
    const take = async (done) => {
      await rpc(socket, 'status');
      const metricsBytes = await scrape(metricsPort);
      samples.push({ reloads: done, ...memSample(daemon.pid), metricsBytes });
    };
    await take(0);
    const began = Date.now();
    const cpu0 = cpu();
    let failed = 0;
    for (let i = 1; i <= reloads; i++) {
      const report = await rpc(socket, 'reload', { wait: true });
      if (report?.state !== 'succeeded') failed++;
      if (i % every === 0 || i === reloads) await take(i);
      if (i % Math.max(1, Math.floor(reloads / 10)) === 0) ctx.log(`memory: ${i}/${reloads} reloads, private ${mb(samples[samples.length - 1].privateKb)} MB`);
    }
    const cpuMs = cpu() - cpu0;
    const wallS = (Date.now() - began) / 1000;
    const status = await rpc(socket, 'status');
    const priv = samples.slice(1).map((s) => s.privateKb); // after the first reload's allocations
    const q = Math.max(1, Math.floor(priv.length / 4));
    const med = (v) => percentile(sortedCopy(v), 50);
    const firstQ = med(priv.slice(0, q));
    const secondQ = med(priv.slice(q, 2 * q));
    const lastQ = med(priv.slice(-q));
    return {
      workers: MEMORY_WORKERS,
      reloads,
      failedReloads: failed,
      wallS: round(wallS, 1),
      cpuMsPerReload: round(cpuMs / reloads, 1),
      historyEntries: status.groups[0].history.length,
      atStart: { rssMb: mb(samples[0].rssKb), pssMb: mb(samples[0].pssKb), privateMb: mb(samples[0].privateKb) },
      firstQuarterPrivateMb: mb(firstQ),
      secondQuarterPrivateMb: mb(secondQ),
      lastQuarterPrivateMb: mb(lastQ),
      maxPrivateMb: mb(Math.max(...priv)),
      growthMb: mb(lastQ - secondQ),
      last: { rssMb: mb(samples[samples.length - 1].rssKb), pssMb: mb(samples[samples.length - 1].pssKb), privateMb: mb(samples[samples.length - 1].privateKb) },
      samples: samples.map((s) => ({ reloads: s.reloads, privateMb: mb(s.privateKb), pssMb: mb(s.pssKb), rssMb: mb(s.rssKb) })),
    };
  } finally {
    await stopSmoothd(daemon, 30_000, (cmd) => cmd.startsWith('sh') || cmd.startsWith('sleep'));
  }
}

export function evaluateMemoryLong(m, add) {
  add(
    `daemon private memory flat over ${m.reloads} reloads (16 workers, metrics, log rings, history; last quarter within ${MEMORY_FLAT_MB} MB of the second)`,
    m.failedReloads === 0 && Number.isFinite(m.growthMb) && m.growthMb <= MEMORY_FLAT_MB,
    `private ${m.secondQuarterPrivateMb} -> ${m.lastQuarterPrivateMb} MB (medians of the second and last quarter; first quarter ${m.firstQuarterPrivateMb}, at start ${m.atStart.privateMb}, max ${m.maxPrivateMb}); at the end RSS ${m.last.rssMb} MB, PSS ${m.last.pssMb} MB; ${m.failedReloads} reloads failed`,
  );
}

export function memoryLongLines(m) {
  const pick = m.samples.filter((_, i) => i % Math.max(1, Math.ceil(m.samples.length / 10)) === 0 || i === m.samples.length - 1);
  return [
    `memory over ${m.reloads} reloads (16 sh workers, metrics, log rings, history ${m.historyEntries}): ${m.wallS} s, ${m.cpuMsPerReload} ms daemon CPU per reload, ${m.failedReloads} failed`,
    `  private MB after N reloads: ${pick.map((s) => `${s.reloads}: ${s.privateMb}`).join(', ')}`,
    `  median private MB first / second / last quarter ${m.firstQuarterPrivateMb} / ${m.secondQuarterPrivateMb} / ${m.lastQuarterPrivateMb} (last - second ${m.growthMb}); at the end RSS ${m.last.rssMb}, PSS ${m.last.pssMb}`,
  ].join('\n');
}
