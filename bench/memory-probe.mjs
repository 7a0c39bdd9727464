// Where the daemon's memory goes over many reloads (issue 15 item 6): the set-up
// of the long memory phase (bench/memory.js: 16 `sh` workers that write to
// stdout and stderr, log rings and history at their defaults, metrics on), run
// with `--inspect=127.0.0.1:0` so that, every --every reloads, it can read
// inside the daemon process.memoryUsage() and v8.getHeapSpaceStatistics()
// (no GC forced), next to /proc/PID/smaps split by mapping (the main malloc
// heap, anonymous mappings: V8's pages and malloc's thread arenas, the `node`
// binary, other files).
//
//   node bench/memory-probe.mjs [--reloads 1000] [--every 50] [--out FILE] [--node-arg FLAG]...
//
// The daemon inherits the environment, so allocator experiments run as e.g.
// `MALLOC_ARENA_MAX=2 node bench/memory-probe.mjs`. One JSON line per sample
// goes to --out (default: a file in a fresh temporary folder, printed at the
// start); at the end it prints the anonymous mappings whose private memory
// grew most between the sample after 1/4 of the reloads and the last one.
// Every process it starts is ended by pid (bench/procs.js).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { installCleanup, startSmoothdReady, stopSmoothd } from './procs.js';
import { rpc as rpcCall } from './rpc.js';
import { freePort, memoryConfig } from './memory-setup.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let reloads = 1000;
let every = 50;
let out = null;
const nodeArgs = [];
const argv = process.argv.slice(2);
const usage = 'usage: node bench/memory-probe.mjs [--reloads N] [--every N] [--out FILE] [--node-arg FLAG]...\n';
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--reloads') reloads = Number(argv[++i]);
  else if (argv[i] === '--every') every = Number(argv[++i]);
  else if (argv[i] === '--out') out = argv[++i];
  else if (argv[i] === '--node-arg') nodeArgs.push(argv[++i]);
  else {
    process.stderr.write(usage);
    process.exit(64);
  }
}
if (![reloads, every].every((n) => Number.isInteger(n) && n >= 1)) {
  process.stderr.write(`--reloads and --every take whole numbers >= 1\n${usage}`);
  process.exit(64);
}
installCleanup();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-memprobe-'));
out ??= path.join(dir, 'samples.jsonl');
const rpc = (socket, method, params) => rpcCall(socket, method, params, 120_000);

function scrape(port) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      })
      .on('error', reject);
  });
}

/** /proc/PID/smaps: private kB per kind of mapping, and per anonymous mapping by start address. */
function smaps(pid) {
  const text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const kinds = { heap: 0, anon: 0, node: 0, files: 0, stack: 0, other: 0 };
  const anon = {}; // start -> { sizeKb, privateKb }
  let cur = null;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[3];
      const kind = name === '[heap]' ? 'heap' : name === '' ? 'anon' : name.startsWith('[stack') ? 'stack' : name.startsWith('[') ? 'other' : name === process.execPath || name.endsWith('/node') ? 'node' : 'files';
      cur = { kind, start: head[1], sizeKb: (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1024, privateKb: 0 };
      if (kind === 'anon' || kind === 'heap') anon[cur.start] = cur;
      continue;
    }
    const m = /^Private_(?:Clean|Dirty):\s+(\d+) kB/.exec(line);
    if (m && cur) {
      cur.privateKb += Number(m[1]);
      kinds[cur.kind] += Number(m[1]);
    }
  }
  return { kinds, anon };
}

const clkTck = 100; // sysconf(_SC_CLK_TCK) on Linux
let pidForCpu = 0;
/** The daemon's user + system CPU so far, in ms (/proc/PID/stat). */
function cpuMs() {
  const stat = fs.readFileSync(`/proc/${pidForCpu}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / clkTck;
}

const metricsPort = await freePort();
const config = memoryConfig(metricsPort);
const configPath = path.join(dir, 'smoothd.yaml');
fs.writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
const socket = path.join(dir, 'ctl.sock');
const argvD = ['--inspect=127.0.0.1:0', ...nodeArgs, path.join(ROOT, 'bin/smoothd.js'), '--config', configPath, '--socket', socket, '--log-format', 'json'];
process.stdout.write(`memory probe: ${reloads} reloads, a sample every ${every}; node args ${JSON.stringify(nodeArgs)}; MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '-'} MALLOC_TRIM_THRESHOLD_=${process.env.MALLOC_TRIM_THRESHOLD_ ?? '-'}; samples to ${out}\n`);
const d = await startSmoothdReady('smoothd (memory probe)', argvD, { cwd: dir, timeoutMs: 60_000, workerLabel: 'sh worker' });
let ws = null;
pidForCpu = d.pid;
try {
  const url = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(d.stderr)?.[1];
  if (!url) throw new Error(`no inspector address on smoothd's stderr: ${d.stderr.slice(-300)}`);
  ws = new WebSocket(url);
  const waiting = new Map();
  let nextId = 1;
  ws.on('message', (m) => {
    const r = JSON.parse(m);
    waiting.get(r.id)?.(r);
    waiting.delete(r.id);
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const evaluate = (expression) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, (r) => (r.result?.exceptionDetails ? reject(new Error(JSON.stringify(r.result.exceptionDetails))) : resolve(r.result?.result?.value)));
      ws.send(JSON.stringify({ id, method: 'Runtime.evaluate', params: { expression, returnByValue: true, includeCommandLineAPI: true } }));
    });
  const inside = `JSON.stringify({ mu: process.memoryUsage(), spaces: require('v8').getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size, s.space_used_size, s.physical_space_size]), heap: require('v8').getHeapStatistics() })`;
  const samples = [];
  fs.writeFileSync(out, '');
  const take = async (n) => {
    await rpc(socket, 'status');
    await scrape(metricsPort);
    const js = JSON.parse(await evaluate(inside));
    const sm = smaps(d.pid);
    const kb = (b) => Math.round(b / 1024);
    const s = {
      reloads: n,
      t: Date.now(),
      load: os.loadavg()[0],
      cpuMs: cpuMs(),
      privateKb: Object.values(sm.kinds).reduce((a, b) => a + b, 0),
      kinds: sm.kinds,
      rssKb: kb(js.mu.rss),
      heapTotalKb: kb(js.mu.heapTotal),
      heapUsedKb: kb(js.mu.heapUsed),
      externalKb: kb(js.mu.external),
      arrayBuffersKb: kb(js.mu.arrayBuffers),
      mallocedKb: kb(js.heap.malloced_memory),
      peakMallocedKb: kb(js.heap.peak_malloced_memory),
      spaces: Object.fromEntries(js.spaces.map(([name, size, used, phys]) => [name, { sizeKb: kb(size), usedKb: kb(used), physKb: kb(phys) }])),
    };
    samples.push({ ...s, anon: sm.anon });
    const anonKb = Object.fromEntries(Object.values(sm.anon).filter((m) => m.privateKb > 0).map((m) => [m.start, m.privateKb]));
    fs.appendFileSync(out, `${JSON.stringify({ ...s, anonKb })}\n`);
    const sp = s.spaces;
    process.stdout.write(
      `${n}: private ${(s.privateKb / 1024).toFixed(1)} MB (malloc heap ${(s.kinds.heap / 1024).toFixed(1)}, anon ${(s.kinds.anon / 1024).toFixed(1)}, node ${(s.kinds.node / 1024).toFixed(1)}, files ${(s.kinds.files / 1024).toFixed(1)}); ` +
        `heapTotal ${(s.heapTotalKb / 1024).toFixed(1)} used ${(s.heapUsedKb / 1024).toFixed(1)} external ${(s.externalKb / 1024).toFixed(1)} malloced ${(s.mallocedKb / 1024).toFixed(1)}; ` +
        `old ${(sp.old_space.physKb / 1024).toFixed(1)} new ${(sp.new_space.physKb / 1024).toFixed(1)} code ${(sp.code_space.physKb / 1024).toFixed(1)} lo ${(sp.large_object_space.physKb / 1024).toFixed(1)} MB phys; load ${s.load.toFixed(1)}\n`,
    );
  };
  await take(0);
  const began = Date.now();
  for (let i = 1; i <= reloads; i++) {
    const r = await rpc(socket, 'reload', { wait: true });
    if (r?.state !== 'succeeded') throw new Error(`reload ${i}: ${r?.state}`);
    if (i % every === 0 || i === reloads) await take(i);
  }
  const first = samples.find((x) => x.reloads >= reloads / 4) ?? samples[0];
  const lastS = samples[samples.length - 1];
  process.stdout.write(`${reloads} reloads in ${((Date.now() - began) / 1000).toFixed(0)} s; daemon CPU ${((lastS.cpuMs - first.cpuMs) / Math.max(1, lastS.reloads - first.reloads)).toFixed(1)} ms per reload after ${first.reloads}\n`);
  const from = samples.find((s) => s.reloads >= reloads / 4) ?? samples[0];
  const to = samples[samples.length - 1];
  const grew = Object.keys({ ...from.anon, ...to.anon })
    .map((start) => ({ start, sizeKb: (to.anon[start] ?? from.anon[start]).sizeKb, fromKb: from.anon[start]?.privateKb ?? 0, toKb: to.anon[start]?.privateKb ?? 0 }))
    .map((m) => ({ ...m, deltaKb: m.toKb - m.fromKb }))
    .sort((a, b) => Math.abs(b.deltaKb) - Math.abs(a.deltaKb))
    .slice(0, 15);
  process.stdout.write(`anonymous mappings that changed most from ${from.reloads} to ${to.reloads} reloads (private kB):\n`);
  for (const m of grew) process.stdout.write(`  ${m.start} (${m.sizeKb} kB mapped): ${m.fromKb} -> ${m.toKb} (${m.deltaKb >= 0 ? '+' : ''}${m.deltaKb})\n`);
} finally {
  ws?.close();
  await stopSmoothd(d, 30_000, (cmd) => cmd.startsWith('sh') || cmd.startsWith('sleep'));
}
