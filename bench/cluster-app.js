// The baseline of the benchmark: the same example workers
// (examples/hello/server.js, unchanged) under Node's own `cluster` module, no
// smoothd. Outside smoothd the kit listens on $PORT, which in a cluster worker
// goes through the primary (Node's default round-robin scheduling on Linux).
//
//   node bench/cluster-app.js PORT [WORKERS]
//
// Prints one JSON line {"ready":true,"workers":[pids]} once every worker
// listens; on SIGTERM/SIGINT it disconnects the workers (the kit drains) and exits.
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';

const port = Number(process.argv[2]);
const count = Number(process.argv[3] ?? 4);
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(count) || count <= 0) {
  process.stderr.write('usage: node bench/cluster-app.js PORT [WORKERS]\n');
  process.exit(64);
}

cluster.setupPrimary({
  exec: fileURLToPath(new URL('../examples/hello/server.js', import.meta.url)),
  stdio: ['ignore', 'ignore', 'inherit', 'ipc'], // their "listening" lines stay out of the output
});

let listening = 0;
const workers = [];
for (let i = 0; i < count; i++) {
  const w = cluster.fork({ PORT: String(port) });
  workers.push(w);
  w.on('listening', () => {
    listening += 1;
    if (listening === count) process.stdout.write(`${JSON.stringify({ ready: true, workers: workers.map((x) => x.process.pid) })}\n`);
  });
  w.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`cluster-app: worker ${w.process.pid} exited (${signal ?? code})\n`);
      process.exitCode = 1;
    }
  });
}

let stopping = false;
const stop = () => {
  if (stopping) {
    for (const w of workers) w.process.kill('SIGKILL');
    process.exit(1);
  }
  stopping = true;
  cluster.disconnect(() => process.exit(0));
  setTimeout(() => {
    for (const w of workers) w.process.kill('SIGKILL');
    process.exit(0);
  }, 5000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
