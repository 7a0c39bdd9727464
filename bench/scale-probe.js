// One reload of COUNT `sleep` workers (the scaling phase's config: ready 50ms, surge 16) against
// the smoothd in ROOT (a folder with bin/ and dist/, e.g. a copy of an older build), for comparing
// builds in turn on a busy machine (issue 15 item 5). Prints one JSON line: start and reload wall
// time, the daemon's CPU over the reload (utime+stime from /proc) and per worker, RSS, load average,
// and where the daemon's log of the reload was kept.
//   node bench/scale-probe.js ROOT COUNT [--prof DIR]   (--prof: the daemon runs with --cpu-prof)
//   PERF=FILE NODE_OPTIONS=--perf-basic-prof node bench/scale-probe.js ROOT COUNT
//     (perf record of the daemon over the reload; `perf report -i FILE --sort pid,sym`)
//   PSTAT=FILE node bench/scale-probe.js ROOT COUNT
//     (perf stat of the daemon over the reload: wait4, clone, SIGCHLD deliveries, write syscalls)
//   NODE_ARGS='--max-semi-space-size=1' node bench/scale-probe.js ROOT COUNT   (node flags for the daemon only)
// The JSON line also gives the daemon's minor page faults over the reload (minflt, from /proc).
// Ends the daemon by pid and then, by pid, any worker it left whose /proc cmdline is still `sleep`.
// usage: node probe.mjs ROOT COUNT [--prof DIR] ; prints JSON line with reload ms, cpu ms, per-worker
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
const [root, countS, ...rest] = process.argv.slice(2);
const count = Number(countS);
const prof = rest[0] === '--prof' ? rest[1] : null;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-probe-'));
const cfg = { groups: { sleepers: { command: ['sleep', 'infinity'], count, ready: '50ms', readyTimeout: '30s', stopTimeout: '5s', rolling: { surge: Math.min(16, count) } } } };
fs.writeFileSync(path.join(tmp, 'c.yaml'), JSON.stringify(cfg));
const sock = path.join(tmp, 's.sock');
const nodeArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : (process.env.NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
const child = spawn(process.execPath, [...nodeArgs, path.join(root, 'bin/smoothd.js'), '--config', path.join(tmp, 'c.yaml'), '--socket', sock, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
const pids = new Set();
const lines = [];
let buf = '';
let readyRes;
const ready = new Promise((r) => (readyRes = r));
child.stdout.setEncoding('utf8');
child.stdout.on('data', (c) => {
  buf += c;
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const l = buf.slice(0, nl); buf = buf.slice(nl + 1);
    lines.push(l);
    if (l.includes('"worker started"')) { try { pids.add(JSON.parse(l).pid); } catch {} }
    if (l.includes('every worker is ready')) readyRes();
  }
});
let err = ''; child.stderr.on('data', (b) => (err += b));
const tick = () => { const s = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
const t0 = Date.now();
const to = setTimeout(() => { console.error('timeout', err.slice(-500)); cleanup(1); }, 180000);
await ready;
const startMs = Date.now() - t0;
await new Promise((r) => setTimeout(r, 500));
let perf = null;
if (process.env.PERF) { perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '999', '-g', '-o', process.env.PERF, '-p', String(child.pid)], { stdio: 'ignore' }); await new Promise((r) => setTimeout(r, 1000)); }
const minflt = () => { const s = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[7]); };
let pstat = null;
if (process.env.PSTAT) {
  const events = 'syscalls:sys_enter_wait4,syscalls:sys_enter_clone,signal:signal_deliver,syscalls:sys_enter_write';
  pstat = spawn('perf', ['stat', '-e', events, '-o', process.env.PSTAT, '-p', String(child.pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000));
}
const f0 = minflt();
const c0 = tick();
const cpuStart = c0;
const r0 = Date.now(); const m0 = Number(process.hrtime.bigint() / 1000n);
const mark = lines.length;
const rl = spawn(process.execPath, [path.join(root, 'bin/smoothctl.js'), '--socket', sock, 'reload', '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
let out = ''; rl.stdout.on('data', (b) => (out += b));
const code = await new Promise((r) => rl.on('exit', r));
const reloadMs = Date.now() - r0; const m1 = Number(process.hrtime.bigint() / 1000n);
const c1 = tick();
const f1 = minflt();
if (pstat) { pstat.kill('SIGINT'); await new Promise((r) => pstat.on('exit', r)); }
if (perf) { perf.kill('SIGINT'); await new Promise((r) => perf.on('exit', r)); }
const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]);
let rep = {}; try { rep = JSON.parse(out); } catch {}
const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
fs.writeFileSync(path.join(tmp, 'reload.log'), lines.slice(mark).join('\n'));
console.log(JSON.stringify({ root, count, code, startMs, reloadMs, durationMs: rep.durationMs, cpuMs: c1 - c0, minflt: f1 - f0, perWorker: +((c1 - c0) / count).toFixed(2), rssMb: +(rss / 1024).toFixed(1), load, m0, m1, log: path.join(tmp, 'reload.log') }));
clearTimeout(to);
cleanup(0);
async function cleanup(rc) {
  try { process.kill(child.pid, 'SIGTERM'); } catch {}
  await new Promise((r) => { if (child.exitCode !== null) r(); else child.on('exit', r); setTimeout(r, 30000); });
  for (const p of pids) { try { const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'); if (cmd.startsWith('sleep')) process.kill(p, 'SIGKILL'); } catch {} }
  process.exit(rc);
}
