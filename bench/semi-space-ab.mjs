// The daemon's memory and reload CPU under different V8 young-generation caps
// (issue 15 item 6), interleaved so that every arm sees the same load: one
// smoothd per arm, each with the long memory phase's 16 `sh` workers (metrics
// on), reloaded in rounds (every arm once per round, the order rotating each
// round); CPU from /proc/PID/stat and wall time around each reload, private
// memory (smaps_rollup) at start, after the first reload and every --every
// rounds, after a status call and a /metrics scrape.
//
//   node bench/semi-space-ab.mjs [--rounds 200] [--every 25] [--arm NAME=FLAGS]...
//
// FLAGS are node flags for that arm's daemon, space-separated (empty for
// none); `ENV:NAME=VALUE` among them goes to its environment instead. Without
// --arm the arms are: grow (SMOOTHD_YOUNG_GENERATION=grow: V8's default),
// pinned (smoothd's default: bin/smoothd.js holds the young generation at its
// initial size), semi1 (node --max-semi-space-size=1: an own flag, so smoothd
// leaves it), semi2, semi4.
// Prints one line per sample and, at the end, per arm: private MB at start,
// after 1 reload, median of the second and last quarter's samples, at the end;
// median daemon CPU ms and wall ms per reload over the rounds after the first
// quarter. Every process it starts is ended by pid (bench/procs.js).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installCleanup, startSmoothdReady, stopSmoothd } from './procs.js';
import { rpc as rpcCall } from './rpc.js';
import { freePort, memoryConfig } from './memory-setup.js';
import { cpuTicks, procKb } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const usage = 'usage: node bench/semi-space-ab.mjs [--rounds N] [--every N] [--arm NAME=FLAGS]...\n';
let rounds = 200;
let every = 25;
const arms = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--rounds') rounds = Number(argv[++i]);
  else if (argv[i] === '--every') every = Number(argv[++i]);
  else if (argv[i] === '--arm' && /^[\w-]+=/.test(argv[i + 1] ?? '')) {
    const [name, ...rest] = argv[++i].split('=');
    const words = rest.join('=').split(/\s+/).filter(Boolean);
    const env = {};
    const flags = [];
    for (const w of words) {
      if (w.startsWith('ENV:')) {
        const [k, ...v] = w.slice(4).split('=');
        env[k] = v.join('=');
      } else flags.push(w);
    }
    arms.push({ name, flags, env });
  } else {
    process.stderr.write(usage);
    process.exit(64);
  }
}
if (![rounds, every].every((n) => Number.isInteger(n) && n >= 1)) {
  process.stderr.write(`--rounds and --every take whole numbers >= 1\n${usage}`);
  process.exit(64);
}
if (arms.length === 0) {
  arms.push({ name: 'grow', flags: [], env: { SMOOTHD_YOUNG_GENERATION: 'grow' } });
  arms.push({ name: 'pinned', flags: [], env: {} });
  for (const n of [1, 2, 4]) arms.push({ name: `semi${n}`, flags: [`--max-semi-space-size=${n}`], env: {} });
}
installCleanup();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-semiab-'));
const rpc = (socket, method, params) => rpcCall(socket, method, params, 120_000);
const cpuMs = (pid) => cpuTicks(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')) * 10; // clock ticks of 10 ms
const privateMb = (pid) => {
  const kb = procKb(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), ['Private_Clean', 'Private_Dirty']);
  return ((kb.Private_Clean ?? 0) + (kb.Private_Dirty ?? 0)) / 1024;
};
const scrape = (port) =>
  new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      })
      .on('error', reject);
  });
const med = (v) => {
  const s = [...v].sort((x, y) => x - y);
  return s.length === 0 ? NaN : (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};

async function start(arm) {
  arm.port = await freePort();
  const configPath = path.join(dir, `${arm.name}.yaml`);
  fs.writeFileSync(configPath, `${JSON.stringify(memoryConfig(arm.port), null, 2)}\n`);
  arm.socket = path.join(dir, `${arm.name}.sock`);
  const saved = { ...process.env };
  Object.assign(process.env, arm.env); // spawn copies process.env now
  try {
    arm.d = await startSmoothdReady(`smoothd ${arm.name}`, [...arm.flags, path.join(ROOT, 'bin/smoothd.js'), '--config', configPath, '--socket', arm.socket, '--log-format', 'json'], {
      cwd: dir,
      timeoutMs: 60_000,
      workerLabel: 'sh worker',
    });
  } finally {
    for (const k of Object.keys(arm.env)) if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  arm.samples = [];
  arm.cpu = [];
  arm.wall = [];
}

async function sample(arm, n) {
  await rpc(arm.socket, 'status');
  await scrape(arm.port);
  const mb = privateMb(arm.d.pid);
  arm.samples.push({ n, mb });
  return mb;
}

process.stdout.write(`semi-space A/B: ${rounds} rounds, arms ${arms.map((a) => `${a.name}=${JSON.stringify([...a.flags, ...Object.entries(a.env).map(([k, v]) => `${k}=${v}`)])}`).join(' ')}\n`);
try {
  for (const arm of arms) await start(arm);
  const line = async (n) => {
    const parts = [];
    for (const arm of arms) parts.push(`${arm.name} ${(await sample(arm, n)).toFixed(1)}`);
    process.stdout.write(`${n}: private MB ${parts.join(', ')}; load ${os.loadavg()[0].toFixed(1)}\n`);
  };
  await line(0);
  for (let r = 1; r <= rounds; r++) {
    for (let k = 0; k < arms.length; k++) {
      const arm = arms[(k + r) % arms.length];
      const c0 = cpuMs(arm.d.pid);
      const t0 = performance.now();
      const res = await rpc(arm.socket, 'reload', { wait: true });
      if (res?.state !== 'succeeded') throw new Error(`${arm.name} reload ${r}: ${res?.state}`);
      arm.wall.push(performance.now() - t0);
      arm.cpu.push(cpuMs(arm.d.pid) - c0);
    }
    if (r === 1 || r % every === 0 || r === rounds) await line(r);
  }
  const q = Math.floor(rounds / 4);
  process.stdout.write(`summary (${rounds} rounds, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}):\n`);
  for (const arm of arms) {
    const s = arm.samples;
    const inQ = (lo, hi) => s.filter((x) => x.n > lo && x.n <= hi).map((x) => x.mb);
    const cpu = arm.cpu.slice(q);
    process.stdout.write(
      `  ${arm.name.padEnd(10)} private MB start ${s[0].mb.toFixed(1)}, after 1 ${s[1].mb.toFixed(1)}, 2nd quarter ${med(inQ(q, 2 * q)).toFixed(1)}, last quarter ${med(inQ(3 * q, rounds)).toFixed(1)}, end ${s[s.length - 1].mb.toFixed(1)}; ` +
        `CPU ms per reload median ${med(cpu)}, mean ${(cpu.reduce((a, b) => a + b, 0) / cpu.length).toFixed(1)}; wall ms median ${med(arm.wall.slice(q)).toFixed(0)}\n`,
    );
  }
} finally {
  const isWorker = (cmd) => cmd.startsWith('sh') || cmd.startsWith('sleep');
  await Promise.all(arms.filter((a) => a.d).map((a) => stopSmoothd(a.d, 30_000, isWorker)));
}
