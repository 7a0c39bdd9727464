// Where a reload's daemon time goes, by part, from a `node --cpu-prof` profile of smoothd (issue 15
// item 5). The samples are wall-clock (a thread waiting for a CPU counts where it waits), so on a busy
// machine syscalls weigh more than their CPU: compare shares between builds, and daemon CPU from /proc.
//   node bench/scale-probe.js ROOT 1024 --prof DIR          (prints m0 and m1: the reload's window)
//   node bench/profile-parts.mjs DIR/CPU.*.cpuprofile M0 M1 1024
// Each sample goes to the first part (in the order below) that any frame of its stack belongs to.
import fs from 'node:fs';
const [file, m0s, m1s, workersS] = process.argv.slice(2);
const p = JSON.parse(fs.readFileSync(file, 'utf8'));
const m0 = Number(m0s ?? 0), m1 = Number(m1s ?? Infinity), workers = Number(workersS ?? 1024);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const rules = [
  ['compile cache folder', (f) => /prepareCompileCache|folderFor/.test(f.functionName)],
  ['spawn(): fork+exec (node internals)', (f) => f.functionName === 'spawn' && f.url === 'node:child_process'],
  ['log lines (pino + sink)', (f) => f.functionName === 'LOG' && f.url.includes('pino')],
  ['log sink writes', (f) => f.url.includes('log-sink')],
  ['progress to smoothctl (control)', (f) => f.functionName === 'onProgress' && f.url.includes('daemon.js')],
  ['state machine step', (f) => f.functionName === 'step' && f.url.includes('supervisor/machine')],
  ['metrics observer', (f) => f.url.includes('/metrics/')],
  ['events/history observers', (f) => f.url.includes('/observe/') || f.url.includes('history')],
  ['rss sampler', (f) => f.url.includes('rss-sampler') || f.functionName === 'readRss'],
  ['signals (kill)', (f) => f.functionName === 'kill' && f.url.includes('per_thread')],
  ['child exit (libuv onexit -> JS)', (f) => f.functionName === 'ChildProcess._handle.onexit'],
  ['pipe streams (read/close)', (f) => /streams\/|node:net/.test(f.url)],
  ['garbage collector', (f) => f.functionName === '(garbage collector)'],
];
let t = p.startTime; const cat = new Map(); let total = 0;
for (let i = 0; i < p.samples.length; i++) {
  t += p.timeDeltas[i];
  if (t < m0 || t > m1) continue;
  const dt = p.timeDeltas[i + 1] ?? 0;
  const leaf = byId.get(p.samples[i]);
  if (leaf.callFrame.functionName === '(idle)') continue;
  total += dt;
  const frames = [];
  for (let id = leaf.id; id !== undefined; id = parent.get(id)) frames.push(byId.get(id).callFrame);
  let c = null;
  for (const [name, test] of rules) if (frames.some(test)) { c = name; break; }
  if (!c) { const u = leaf.callFrame.url; c = u.includes('/runtime/') ? 'runtime bookkeeping (other)' : u === '' ? `native ${leaf.callFrame.functionName}` : 'other JS'; }
  cat.set(c, (cat.get(c) ?? 0) + dt);
}
console.log(`sampled ${(total / 1000).toFixed(0)} ms (wall-clock samples while not idle)`);
for (const [k, v] of [...cat].sort((a, b) => b[1] - a[1]).slice(0, 22)) console.log(`${(100 * v / total).toFixed(1).padStart(5)}%  ${(v / 1000 / workers).toFixed(2).padStart(6)} ms/worker  ${k}`);
