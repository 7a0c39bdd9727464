// The gateway worker of the gateway example: holds the WebSocket clients on
// the TCP socket smoothd passes down, and forwards every message to the
// business group over HTTP on the unix socket smoothd holds for it, with a
// keep-alive agent. Its group is `reloadable: false`: a reload never touches
// it, so clients stay connected while the business workers roll.
//
// Protocol: a client sends JSON text {"id": 1, "text": "hi"}; it gets one
// answer per message: the business worker's JSON ({id, echo, worker, pid,
// generation}) or {id, error}.
//
// Every message gets exactly one answer, also while business workers drain.
// A draining worker answers with `Connection: close`, so the agent stops
// using that connection; but a pooled connection the worker closes as idle at
// the moment the agent reuses it fails with ECONNRESET or EPIPE. The rule:
// a call is retried once, on a fresh connection, only when the business
// worker provably did not get it:
//   - connect() failed (ECONNREFUSED, ENOENT, EAGAIN): nothing was sent; or
//   - it went out on a reused pooled connection that failed with ECONNRESET or
//     EPIPE before any byte of the response. smoothd/worker closes only
//     connections that have received nothing since they went idle, so the
//     worker never read it. (A worker that crashes while handling it looks the
//     same, so the retry is only for idempotent calls, like this echo.)
// Anything else (a timeout, a connection cut after the response started, a
// fresh connection reset) is answered with an error and never retried.
//
// On stop (`smoothctl restart gateway`, or smoothd stopping), each client is
// closed with code 1001 ("going away") once its pending messages are
// answered; clients reconnect, and smoothd's socket accepts them meanwhile.
import http from 'node:http';
import { listen } from 'smoothd/worker';

let WebSocketServer;
try {
  ({ WebSocketServer } = await import('ws'));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  console.error('gateway: the "ws" package is not installed; run `npm install ws` in the folder that holds this example (or its project)');
  process.exit(1);
}

const socketPath = process.env.BUSINESS_SOCKET || 'business.sock';
const TIMEOUT_MS = 10_000;
const MAX_MESSAGE = 64 * 1024;
// At most 64 connections to the business group; more calls wait in the agent.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOENT', 'EAGAIN']);
const RESET = new Set(['ECONNRESET', 'EPIPE']);

/** One POST to the business group; `fresh` uses a new connection of its own. */
function post(body, fresh) {
  return new Promise((resolve, reject) => {
    let responded = false;
    const fail = (err) => reject(Object.assign(err, { reused: req.reusedSocket, responded }));
    const req = http.request(
      {
        socketPath,
        method: 'POST',
        path: '/',
        agent: fresh ? false : agent,
        timeout: TIMEOUT_MS,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        responded = true;
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', fail);
      },
    );
    req.on('timeout', () => {
      req.destroy(Object.assign(new Error(`no answer from the business group within ${TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

function safeToRetry(err) {
  if (err.responded) return false;
  if (NEVER_CONNECTED.has(err.code)) return true;
  return err.reused === true && RESET.has(err.code);
}

let retries = 0;

async function forward(body) {
  try {
    return await post(body, false);
  } catch (err) {
    if (!safeToRetry(err)) throw err;
    retries++;
    return await post(body, true);
  }
}

// ---------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', upgrade: 'websocket' });
  res.end('this is a WebSocket gateway: connect with ws://HOST:PORT/ and send {"id": 1, "text": "hi"}\n');
});
const wss = new WebSocketServer({ server, maxPayload: MAX_MESSAGE });
let draining = false;

/** Per client: messages forwarded and not yet answered; close once none is left while draining. */
const pending = new Map();

function closeIfDone(ws) {
  if (draining && (pending.get(ws) ?? 0) === 0) ws.close(1001, 'gateway restarting: reconnect');
}

function reply(ws, value) {
  if (ws.readyState === ws.OPEN) ws.send(typeof value === 'string' ? value : JSON.stringify(value));
}

wss.on('connection', (ws) => {
  pending.set(ws, 0);
  ws.on('close', () => pending.delete(ws));
  ws.on('error', () => ws.terminate());
  if (draining) return closeIfDone(ws);
  ws.on('message', async (data, isBinary) => {
    const text = isBinary ? null : data.toString('utf8');
    let id = null;
    try {
      id = JSON.parse(text).id ?? null;
    } catch {
      return reply(ws, { id: null, error: 'a message is JSON text such as {"id": 1, "text": "hi"}' });
    }
    pending.set(ws, (pending.get(ws) ?? 0) + 1);
    try {
      const answer = await forward(text);
      if (answer.status === 200) reply(ws, answer.body);
      else reply(ws, { id, error: `the business group answered HTTP ${answer.status}: ${answer.body}` });
    } catch (err) {
      reply(ws, { id, error: `the business group did not answer: ${err.code ?? ''} ${err.message}`.trim() });
    } finally {
      if (pending.has(ws)) pending.set(ws, pending.get(ws) - 1);
      closeIfDone(ws);
    }
  });
});

const { fd, address } = await listen(server, {
  // Stay below stopTimeout in smoothd.yaml.
  drainTimeoutMs: 8000,
  onDrainStart() {
    draining = true;
    console.log(`gateway pid ${process.pid} draining: closing ${wss.clients.size} client(s) once their answers are sent`);
    for (const ws of wss.clients) closeIfDone(ws);
  },
  onDrain() {
    agent.destroy();
    console.log(`gateway pid ${process.pid} drained (${retries} call(s) retried on a fresh connection)`);
  },
});
const where = fd === null ? `${address.address}:${address.port}` : `inherited fd ${fd}`;
console.log(`gateway pid ${process.pid} listening on ${where}, business group at ${socketPath}`);
