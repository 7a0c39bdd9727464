// How long a fresh worker stays expensive once real load reaches it: starts
// examples/hello/server.js outside smoothd (PORT=0, fallback address), waits
// for it to listen, then drives it with the open-loop generator
// (bench/openloop.js, keep-alive on) at a fixed rate and reads the worker's
// CPU (utime + stime, /proc/PID/stat) every 200 ms. A warm worker's CPU per
// interval is flat; the excess over the last second's level in the first
// intervals is the cold start: V8 runs the request path unoptimized (about
// 4x the CPU per request here, see `--no-opt`) until its optimizing compiler
// has seen enough of it. Rounds of each variant are interleaved.
//
//   npm run build && node bench/cold-worker.mjs [--rate 4000] [--rounds 5] [--seconds 5] \
//     [--variant 'NAME=NODE_FLAGS'] ... [--node PATH]
//
// Without --variant it compares the default with `--no-opt` (the unoptimized
// cost) and V8 tiering up after a quarter of its defaults: on Node 20
// `--interrupt-budget=32768` (only on the command line: NODE_OPTIONS refuses
// it), on Node 22 and later, which have no such flag,
// `--invocation-count-for-maglev=100 --invocation-count-for-turbofan=750`.
// --node runs the workers with another Node binary (e.g. 22 or 24).
import { execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startExampleWorker } from './example-worker.js';
import { cpuTicks, median } from './stats.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
};
const rate = Number(opt('--rate', 4000));
const rounds = Number(opt('--rounds', 5));
const seconds = Number(opt('--seconds', 5));
const nodeBin = opt('--node', process.execPath);
const variants = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] !== '--variant') continue;
  const [name, flags = ''] = args[i + 1].split(/=(.*)/s);
  variants.push({ name, flags: flags.split(' ').filter(Boolean) });
}
if (variants.length === 0) {
  // The tier-up flag of the worker's V8: Node 20 has an interrupt budget, 22 and later count invocations.
  const major = Number(execFileSync(nodeBin, ['-p', 'process.versions.node'], { encoding: 'utf8' }).split('.')[0]);
  const eager = major >= 22 ? ['--invocation-count-for-maglev=100', '--invocation-count-for-turbofan=750'] : ['--interrupt-budget=32768'];
  variants.push({ name: 'default', flags: [] }, { name: '--no-opt', flags: ['--no-opt'] }, { name: eager.join(' '), flags: eager });
}
const INTERVAL_MS = 200;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One round: the worker's CPU ticks per interval under `rate` req/s, and what the generator counted. */
async function round(flags) {
  const { child: w, port, exited } = await startExampleWorker({ node: nodeBin, flags });
  try {
    const stat = () => cpuTicks(fs.readFileSync(`/proc/${w.pid}/stat`, 'utf8'));
    const boot = stat();
    const g = fork(path.join(root, 'bench/openloop.js'), ['--child'], { stdio: 'inherit' });
    try {
      await new Promise((resolve) => {
        g.once('message', resolve);
        g.send({ type: 'start', host: '127.0.0.1', port, rate, keepAlive: true, timeoutS: 10, maxConnections: 128 });
      });
      const ticks = [];
      let prev = stat();
      for (let i = 0; i < (seconds * 1000) / INTERVAL_MS; i++) {
        await sleep(INTERVAL_MS);
        const t = stat();
        ticks.push(t - prev);
        prev = t;
      }
      const done = await new Promise((resolve) => {
        g.on('message', (m) => m.type === 'stopped' && resolve(m));
        g.send({ type: 'stop', file: '/dev/null' });
      });
      return { boot, ticks, ok: done.totals[0], failed: done.n - done.totals[0] };
    } finally {
      g.kill('SIGKILL');
    }
  } finally {
    w.kill('SIGKILL');
    await exited;
  }
}

const results = new Map(variants.map((v) => [v.name, []]));
try {
  for (let r = 0; r < rounds; r++) {
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) results.get(v.name).push(await round(v.flags));
  }
} catch (err) {
  process.stderr.write(`cold-worker: ${err.message} (check the flags of each --variant against ${nodeBin} --v8-options)\n`);
  process.exit(1);
}
const tickMs = 10; // USER_HZ = 100 on Linux
const perSecond = 1000 / INTERVAL_MS;
console.log(`cold worker: examples/hello under ${rate} req/s (open loop, keep-alive, 128 connections), ${rounds} rounds each, Node ${nodeBin === process.execPath ? process.version : nodeBin}`);
console.log(`${'variant'.padEnd(28)} ${'worker CPU ms per 200 ms, medians over rounds'.padEnd(64)} warm level  excess ms  failed`);
for (const v of variants) {
  const list = results.get(v.name);
  const cols = list[0].ticks.map((_, i) => median(list.map((x) => x.ticks[i])) * tickMs);
  // The warm level: the median interval of the last second; the excess: CPU above it before then.
  const warm = median(cols.slice(-perSecond));
  const excess = cols.slice(0, -perSecond).reduce((s, c) => s + Math.max(0, c - warm), 0);
  const failed = list.reduce((s, x) => s + x.failed, 0);
  console.log(`${v.name.padEnd(28)} ${cols.slice(0, 16).join(' ').padEnd(64)} ${String(warm).padEnd(11)} ${String(excess).padEnd(10)} ${failed}`);
}
