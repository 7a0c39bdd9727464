// Daemon CPU per reload with and without an allocator setting in smoothd's
// environment (issue 15 item 6), interleaved so that both see the same load:
// two smoothd, each with the long memory phase's 16 `sh` workers (metrics on),
// reloaded in turns A B A B ...; CPU from /proc/PID/stat around each reload.
//
//   node bench/malloc-ab.mjs [--pairs 100] [--env NAME=VALUE]...
//
// A runs with the environment as it is, B with the --env settings added
// (default MALLOC_TRIM_THRESHOLD_=131072). Prints the median and mean CPU per
// reload of each, the median of the pairwise differences, and private memory
// (smaps_rollup) of both at the end. Every process it starts is ended by pid.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installCleanup, startSmoothdReady, stopSmoothd } from './procs.js';
import { rpc as rpcCall } from './rpc.js';
import { freePort, memoryConfig } from './memory-setup.js';
import { cpuTicks, procKb } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let pairs = 100;
const extra = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--pairs') pairs = Number(argv[++i]);
  else if (argv[i] === '--env' && /^[A-Za-z_][A-Za-z0-9_]*=/.test(argv[i + 1] ?? '')) {
    const [k, ...v] = argv[++i].split('=');
    extra[k] = v.join('=');
  } else {
    process.stderr.write('usage: node bench/malloc-ab.mjs [--pairs N] [--env NAME=VALUE]...\n');
    process.exit(64);
  }
}
if (!Number.isInteger(pairs) || pairs < 1) {
  process.stderr.write('--pairs takes a whole number >= 1\n');
  process.exit(64);
}
if (Object.keys(extra).length === 0) extra.MALLOC_TRIM_THRESHOLD_ = '131072';
installCleanup();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-mallocab-'));
const rpc = (socket, method, params) => rpcCall(socket, method, params, 120_000);
const cpuMs = (pid) => cpuTicks(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')) * 10; // clock ticks of 10 ms
const privateMb = (pid) => {
  const kb = procKb(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), ['Private_Clean', 'Private_Dirty']);
  return ((kb.Private_Clean ?? 0) + (kb.Private_Dirty ?? 0)) / 1024;
};

async function start(tag, env) {
  const port = await freePort();
  const config = memoryConfig(port);
  const configPath = path.join(dir, `${tag}.yaml`);
  fs.writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const socket = path.join(dir, `${tag}.sock`);
  const saved = { ...process.env };
  Object.assign(process.env, env); // spawn copies process.env now
  try {
    const d = await startSmoothdReady(`smoothd ${tag}`, [path.join(ROOT, 'bin/smoothd.js'), '--config', configPath, '--socket', socket, '--log-format', 'json'], { cwd: dir, timeoutMs: 60_000, workerLabel: 'sh worker' });
    return { d, socket };
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
}

const A = await start('a', {});
const B = await start('b', extra);
const med = (v) => {
  const s = [...v].sort((x, y) => x - y);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};
try {
  const one = async (x) => {
    const c0 = cpuMs(x.d.pid);
    const r = await rpc(x.socket, 'reload', { wait: true });
    if (r?.state !== 'succeeded') throw new Error(`reload: ${r?.state}`);
    return cpuMs(x.d.pid) - c0;
  };
  for (let i = 0; i < 20; i++) await Promise.all([one(A), one(B)]); // past V8's warm-up
  const a = [];
  const b = [];
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      a.push(await one(A));
      b.push(await one(B));
    } else {
      b.push(await one(B));
      a.push(await one(A));
    }
  }
  const mean = (v) => v.reduce((s, x) => s + x, 0) / v.length;
  const diffs = a.map((x, i) => b[i] - x);
  process.stdout.write(
    `${pairs} pairs, load ${os.loadavg()[0].toFixed(1)}: A (as is) ${med(a)} ms median, ${mean(a).toFixed(1)} mean; B (${JSON.stringify(extra)}) ${med(b)} ms median, ${mean(b).toFixed(1)} mean; ` +
      `B - A median ${med(diffs)} ms, mean ${mean(diffs).toFixed(1)} ms; private MB at the end A ${privateMb(A.d.pid).toFixed(1)}, B ${privateMb(B.d.pid).toFixed(1)}\n`,
  );
} finally {
  const isWorker = (cmd) => cmd.startsWith('sh') || cmd.startsWith('sleep');
  await Promise.all([stopSmoothd(A.d, 30_000, isWorker), stopSmoothd(B.d, 30_000, isWorker)]);
}
