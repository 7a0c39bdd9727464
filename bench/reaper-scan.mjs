// Cost of one init-mode reaper scan (src/runtime/reaper.ts) with n children of
// this process: OWN=1 tracks them as libuv's own (the real case: workers are
// skipped without reading their stat); without it every child's stat is read
// (the worst case: n orphans alive at once). Needs dist/ (npm run build).
// Usage: node bench/reaper-scan.mjs  |  OWN=1 node bench/reaper-scan.mjs
import { spawn } from 'node:child_process';
if (process.env.OWN) (await import('../dist/runtime/own-children.js')).trackOwnChildren();
const m = await import('../dist/runtime/reaper.js');
for (const n of [0, 16, 256]) {
  const kids = Array.from({ length: n }, () => spawn('sleep', ['30'], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 300));
  const addon = m.loadInitAddon();
  const r = new m.Reaper({ addon, ...(process.env.OWN ? {} : { isOwnChild: () => false }) });
  const reps = 200; const t0 = process.hrtime.bigint(); const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) r.scan();
  const wall = Number(process.hrtime.bigint() - t0) / 1e6 / reps; const cpu = process.cpuUsage(c0); 
  console.log(`children ${n}: ${wall.toFixed(3)} ms per scan (cpu ${((cpu.user + cpu.system) / 1000 / reps).toFixed(3)} ms)`);
  for (const k of kids) k.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
}
