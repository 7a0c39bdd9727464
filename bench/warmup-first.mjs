// Micro-benchmark of smoothd/worker's `warmup`: how long the first requests
// of a fresh worker take, warm-up off vs on. Insensitive to machine load as
// far as one can be: each round starts examples/hello/server.js outside
// smoothd (fallback address, PORT=0), waits for it to listen, then times its
// first 20 requests from one client, one after the other; off and on are
// interleaved (the order alternates per round). Prints the medians of
// request 1, 2, 3 and of requests 4-20, of start-to-listening, and of the
// CPU the worker used up to listening (utime + stime from /proc/PID/stat).
//
//   npm run build && node bench/warmup-first.mjs [--rounds 20] [--requests 20] [--warmup 10] [--keepalive]
//
// --warmup N is the number of warm-up requests when on (HELLO_WARMUP=N).
//
// Without --keepalive every request opens a new connection (a client with
// keep-alive off, or one reconnecting after a drain); with it they share one.
import fs from 'node:fs';
import http from 'node:http';
import { startExampleWorker } from './example-worker.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const rounds = arg('--rounds', 20);
const requests = arg('--requests', 20);
const keepAlive = process.argv.includes('--keepalive');
const warmupRequests = arg('--warmup', 10);

function get(port, agent) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
  });
}

async function one(warmup) {
  const t0 = performance.now();
  const { child, port, exited } = await startExampleWorker({ env: { HELLO_WARMUP: warmup ? String(warmupRequests) : '0' } });
  try {
    const startMs = performance.now() - t0;
    const stat = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const cpuMs = ((Number(stat[11]) + Number(stat[12])) * 1000) / 100; // clock ticks, USER_HZ 100
    const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
    const times = [];
    for (let i = 0; i < requests; i++) times.push(await get(port, agent));
    if (agent) agent.destroy();
    return { startMs, cpuMs, times };
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    await exited;
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const results = { off: [], on: [] };
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? [false, true] : [true, false];
  for (const w of order) results[w ? 'on' : 'off'].push(await one(w));
}
const f = (x) => x.toFixed(2).padStart(6);
console.log(`warmup micro-benchmark: ${rounds} rounds x ${requests} requests, keep-alive ${keepAlive ? 'on' : 'off'}, warm-up ${warmupRequests} requests when on, node ${process.version}`);
console.log(`warmup   start->listening ms   CPU to listening ms   req1 ms   req2 ms   req3 ms   req4-${requests} ms (medians)`);
for (const [name, rs] of Object.entries(results)) {
  const at = (i) => median(rs.map((x) => x.times[i]));
  const rest = median(rs.flatMap((x) => x.times.slice(3)));
  console.log(`${name.padEnd(6)}   ${f(median(rs.map((x) => x.startMs)))}                ${f(median(rs.map((x) => x.cpuMs)))}                ${f(at(0))}    ${f(at(1))}    ${f(at(2))}    ${f(rest)}`);
}
