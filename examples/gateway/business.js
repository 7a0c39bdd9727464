// The business worker of the gateway example: answers each message the
// gateway forwards (POST / with a JSON body {id, text}) with JSON naming the
// worker and its generation, so clients see the version advance on every
// `smoothctl reload`. The call is an echo: running it twice does no harm,
// which is what lets the gateway retry it (see gateway.js).
//
// It listens on the unix socket smoothd holds (fd 3) through smoothd/worker,
// which also reports ready and drains on stop: responses sent while draining
// carry `Connection: close`, so the gateway's pooled connections move to the
// other workers.
import http from 'node:http';
import { listen } from 'smoothd/worker';

const worker = Number(process.env.SMOOTHD_WORKER_ID ?? 0);
const generation = Number(process.env.SMOOTHD_GENERATION ?? 0);
const MAX_BODY = 64 * 1024;

function answer(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    answer(res, 405, { error: `send messages as POST /, not ${req.method}` });
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return answer(res, 413, { error: `a message may have at most ${MAX_BODY} bytes, got ${size}` });
    let message;
    try {
      message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return answer(res, 400, { error: 'the body is not JSON; send {"id": 1, "text": "hi"}' });
    }
    answer(res, 200, { id: message?.id ?? null, echo: message?.text ?? null, worker, pid: process.pid, generation });
  });
});

await listen(server, { drainTimeoutMs: 8000 });
console.log(`business worker ${worker} pid ${process.pid} generation ${generation} ready`);
