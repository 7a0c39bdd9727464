// Heap snapshots of smoothd after N back-to-back reloads (issue 15 item 6), the
// set-up of the long memory phase (bench/memory.js: 16 `sh` workers that write
// to stdout and stderr, metrics on, log rings and history at their defaults):
//
//   node bench/heap-snapshots.mjs [--at 100,400] [--node-arg FLAG]...
//
// Prints where each snapshot went; compare two with bench/heap-diff.mjs. Every
// process it starts is ended by pid (bench/procs.js).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installCleanup, startSmoothdReady, stopSmoothd } from './procs.js';
import { rpc as rpcCall } from './rpc.js';
import { memoryConfig } from './memory-setup.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let at = [100, 400];
const nodeArgs = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--at') at = argv[++i].split(',').map(Number);
  else if (argv[i] === '--node-arg') nodeArgs.push(argv[++i]);
  else {
    process.stderr.write('usage: node bench/heap-snapshots.mjs [--at 100,400] [--node-arg FLAG]...\n');
    process.exit(64);
  }
}
if (at.some((n) => !Number.isInteger(n) || n < 1)) {
  process.stderr.write('--at takes reload counts >= 1, comma-separated (e.g. 100,400)\n');
  process.exit(64);
}
installCleanup();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-heap-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const rpc = (socket, method, params) => rpcCall(socket, method, params, 120_000);

const config = memoryConfig();
const configPath = path.join(dir, 'smoothd.yaml');
fs.writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
const socket = path.join(dir, 'ctl.sock');
const argvD = ['--heapsnapshot-signal=SIGUSR2', ...nodeArgs, path.join(ROOT, 'bin/smoothd.js'), '--config', configPath, '--socket', socket, '--log-format', 'json'];
const d = await startSmoothdReady('smoothd (heap snapshots)', argvD, { cwd: dir, timeoutMs: 60_000, workerLabel: 'sh worker' });
try {
  for (let i = 1; i <= Math.max(...at); i++) {
    const r = await rpc(socket, 'reload', { wait: true });
    if (r?.state !== 'succeeded') throw new Error(`reload ${i}: ${r?.state}`);
    if (!at.includes(i)) continue;
    const before = new Set(fs.readdirSync(dir));
    process.kill(d.pid, 'SIGUSR2');
    // Written by the daemon's main thread: done once the file exists and its size holds still.
    let file = null;
    for (let size = -1; ; await sleep(1000)) {
      await rpc(socket, 'status', {});
      file ??= fs.readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f)) ?? null;
      if (file === null) continue;
      const now = fs.statSync(path.join(dir, file)).size;
      if (now === size) break;
      size = now;
    }
    const to = path.join(dir, `after-${i}-reloads.heapsnapshot`);
    fs.renameSync(path.join(dir, file), to);
    process.stdout.write(`${to}\n`);
  }
} finally {
  await stopSmoothd(d, 30_000, (cmd) => cmd.startsWith('sh') || cmd.startsWith('sleep'));
}
