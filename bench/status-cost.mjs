#!/usr/bin/env node
// Where the time of `smoothctl status --json` goes, against a running smoothd:
//
//   node bench/status-cost.mjs --socket PATH [--pid DAEMON_PID] [-n N]
//
// Daemon side: N status requests from a raw socket client, one after another:
// the round trip (connect, request, whole reply line) and, with --pid, the
// daemon's CPU per request (utime+stime from /proc/PID/stat). Client side:
// smoothctl's own share in this process (importing it, then the call, parse
// and print to /dev/null), as CPU and wall time. Medians. CPU figures hold up
// on a loaded machine far better than wall times; quote both with the load average.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const socket = opt('--socket');
const pid = opt('--pid');
const n = Number(opt('-n') ?? 40);
if (!socket || !Number.isInteger(n) || n < 1) {
  process.stderr.write('usage: node bench/status-cost.mjs --socket PATH [--pid DAEMON_PID] [-n N]\n');
  process.exit(64);
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return Math.round((s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) * 10) / 10;
};
const cpuMs = (p) => {
  const s = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
};

function rawStatus() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.createConnection({ path: socket });
    let bytes = 0;
    s.on('connect', () => s.write('{"jsonrpc":"2.0","id":1,"method":"status","params":{}}\n'));
    s.on('data', (c) => {
      bytes += c.length;
      if (c[c.length - 1] === 10) {
        s.destroy();
        resolve({ ms: performance.now() - t0, bytes });
      }
    });
    s.on('error', reject);
  });
}

await rawStatus(); // warm-up
const c0 = pid ? cpuMs(pid) : 0;
const rtt = [];
let replyBytes = 0;
for (let i = 0; i < n; i++) {
  const r = await rawStatus();
  rtt.push(r.ms);
  replyBytes = r.bytes;
}
const daemonCpuPerStatus = pid ? Math.round(((cpuMs(pid) - c0) / n) * 10) / 10 : null;

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const i0 = cpu();
const w0 = performance.now();
const { main } = await import(path.join(ROOT, 'dist/cli/smoothctl.js'));
const importMs = performance.now() - w0;
const importCpuMs = cpu() - i0;
const devnull = fs.openSync('/dev/null', 'w');
const call = [];
const callCpu = [];
for (let i = 0; i < Math.min(n, 20); i++) {
  const a = cpu();
  const t = performance.now();
  await main(['--socket', socket, 'status', '--json'], { stdout: { write: (s) => fs.writeSync(devnull, s) } });
  call.push(performance.now() - t);
  callCpu.push(cpu() - a);
}
process.stdout.write(
  `${JSON.stringify({
    n,
    replyBytes,
    daemon: { roundTripMedianMs: median(rtt), cpuPerStatusMs: daemonCpuPerStatus },
    smoothctl: { importMs: Math.round(importMs * 10) / 10, importCpuMs: Math.round(importCpuMs * 10) / 10, callAndPrintMedianMs: median(call), callAndPrintCpuMedianMs: median(callCpu) },
    loadavg: os.loadavg().map((x) => Math.round(x * 10) / 10),
  })}\n`,
);
