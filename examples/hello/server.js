// The smoothd example app: a plain HTTP server that takes its socket from
// smoothd, reports ready and drains on stop, all through smoothd/worker.
//
//   under smoothd:  smoothd --config examples/hello/smoothd.yaml
//   on its own:     node examples/hello/server.js   (listens on $PORT or 3000)
//
// Env: HELLO_DELAY_MS delays every answer (default 0), handy for watching a
// reload drain in-flight requests; HELLO_CLOSE_SPREAD_MS spreads the drain's
// Connection: close answers over that window (closeSpreadMs, default 0);
// HELLO_WARMUP=N sends N warm-up requests before listening (warmup, default
// on with the kit's default of 10), HELLO_WARMUP=0 turns it off;
// RELEASE names the code release.
import http from 'node:http';
import { listen } from 'smoothd/worker';

const delayMs = Number(process.env.HELLO_DELAY_MS ?? 0);
if (!Number.isFinite(delayMs) || delayMs < 0) {
  throw new Error(`HELLO_DELAY_MS must be a number of milliseconds, got ${JSON.stringify(process.env.HELLO_DELAY_MS)}`);
}

const closeSpreadMs = Number(process.env.HELLO_CLOSE_SPREAD_MS ?? 0);
if (!Number.isFinite(closeSpreadMs) || closeSpreadMs < 0) {
  throw new Error(`HELLO_CLOSE_SPREAD_MS must be a number of milliseconds, got ${JSON.stringify(process.env.HELLO_CLOSE_SPREAD_MS)}`);
}

const warmupRequests = Number(process.env.HELLO_WARMUP ?? 10);
if (!Number.isInteger(warmupRequests) || warmupRequests < 0) {
  throw new Error(`HELLO_WARMUP must be a number of requests (0 turns warm-up off), got ${JSON.stringify(process.env.HELLO_WARMUP)}`);
}
const warmup = warmupRequests === 0 ? false : { requests: warmupRequests };

const id = process.env.SMOOTHD_WORKER_ID ?? '-';
const generation = process.env.SMOOTHD_GENERATION ?? '-';
const release = process.env.RELEASE || 'dev';
const greeting = `hello from worker ${id} pid ${process.pid} generation ${generation} (release ${release})\n`;

const server = http.createServer((req, res) => {
  const answer = () => {
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.end(greeting);
  };
  // Warm-up requests (marked by the kit) skip the demo delay.
  if (delayMs > 0 && req.headers['x-smoothd-warmup'] !== '1') setTimeout(answer, delayMs);
  else answer();
});

const { fd, name, address } = await listen(server, {
  // Stay below stopTimeout in smoothd.yaml, so the worker ends a stuck drain
  // itself before smoothd has to SIGKILL it.
  drainTimeoutMs: 8000,
  closeSpreadMs,
  // HELLO_WARMUP (10) requests through the server before it takes real ones (see README).
  warmup,
});
const where = fd === null ? `${address.address}:${address.port}` : `inherited fd ${fd} (${name})`;
console.log(`worker ${id} pid ${process.pid} listening on ${where}`);
