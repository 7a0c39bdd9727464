// What grows in the daemon's JS heap between two heap snapshots of one process
// (issue 15 item 6): objects counted by type and constructor name, the rows
// sorted by bytes gained, then by count gained.
//
//   node --max-old-space-size=4000 bench/heap-diff.mjs A.heapsnapshot B.heapsnapshot [rows]
//
// Snapshots of a running smoothd: start it as
// `node --heapsnapshot-signal=SIGUSR2 bin/smoothd.js ...` and `kill -USR2 PID`
// (V8 runs a full GC first and writes Heap.*.heapsnapshot into smoothd's
// working directory), or let bench/heap-snapshots.mjs do the reloads and take them.
import fs from 'node:fs';

function counts(file) {
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  const f = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const n = f.length;
  const ti = f.indexOf('type');
  const ni = f.indexOf('name');
  const si = f.indexOf('self_size');
  const m = new Map();
  let total = 0;
  for (let i = 0; i < s.nodes.length; i += n) {
    const key = `${types[s.nodes[i + ti]]}:${String(s.strings[s.nodes[i + ni]]).slice(0, 80)}`;
    const e = m.get(key) ?? { c: 0, b: 0 };
    e.c++;
    e.b += s.nodes[i + si];
    total += s.nodes[i + si];
    m.set(key, e);
  }
  return { m, total };
}

const [fa, fb, rowsArg] = process.argv.slice(2);
if (!fa || !fb) {
  process.stderr.write('usage: node bench/heap-diff.mjs A.heapsnapshot B.heapsnapshot [rows]\n');
  process.exit(64);
}
const a = counts(fa);
const b = counts(fb);
const show = Number(rowsArg ?? 30);
process.stdout.write(`live heap (self sizes): ${(a.total / 1048576).toFixed(2)} -> ${(b.total / 1048576).toFixed(2)} MB\n`);
const rows = [];
for (const [k, e] of b.m) {
  const o = a.m.get(k) ?? { c: 0, b: 0 };
  rows.push({ k, countA: o.c, countB: e.c, dc: e.c - o.c, db: e.b - o.b });
}
const print = (title, by) => {
  process.stdout.write(`${title}\n  count  bytes  (A -> B)  type:name\n`);
  for (const r of [...rows].sort((x, y) => y[by] - x[by]).slice(0, show)) process.stdout.write(`  ${r.dc >= 0 ? '+' : ''}${r.dc}  ${r.db >= 0 ? '+' : ''}${r.db}  (${r.countA} -> ${r.countB})  ${r.k}\n`);
};
print('by bytes gained:', 'db');
print('by count gained:', 'dc');
