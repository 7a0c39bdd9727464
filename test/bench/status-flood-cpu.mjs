// Measures smoothd's own CPU while one worker floods STATUS over IPC.
//   node test/bench/status-flood-cpu.mjs [PER_MS=5] [SECONDS=10]
// Starts dist/ smoothd with one status-flood.mjs worker, waits 2 s, then reads
// /proc/PID/stat utime+stime over SECONDS and prints the share of one core.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const perMs = process.argv[2] ?? '5';
const seconds = Number(process.argv[3] ?? 10);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-flood-'));
const cfg = path.join(dir, 'smoothd.yaml');
fs.writeFileSync(cfg, `groups:\n  web:\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(path.join(root, 'test/fixtures/status-flood.mjs'))}]\n    env: { FLOOD_PER_MS: "${perMs}" }\n    ready: ipc\n`);
const d = spawn(process.execPath, [path.join(root, 'bin/smoothd.js'), '--config', cfg, '--socket', path.join(dir, 'ctl.sock'), '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'inherit'] });
const ticks = () => {
  const f = fs.readFileSync(`/proc/${d.pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime + stime, in clock ticks (100/s)
};
try {
  await new Promise((r) => setTimeout(r, 2000));
  const t0 = ticks();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const used = (ticks() - t0) / 100;
  console.log(`smoothd CPU with ${perMs} STATUS/ms for ${seconds} s: ${used.toFixed(2)} s (${((used / seconds) * 100).toFixed(1)}% of one core)`);
} finally {
  try { d.kill("SIGTERM"); } catch {}
  fs.rmSync(dir, { recursive: true, force: true });
}
