// The gateway worker of the gateway example: holds the WebSocket clients on
// the TCP socket smoothd passes down, and forwards every message to the
// business group over a few long-lived connections to the unix socket smoothd
// holds for it. Its group is `reloadable: false`: a reload never touches it,
// so clients stay connected while the business workers roll.
//
// Client protocol: a client sends JSON text {"id": 1, "text": "hi"}; it gets
// one answer per message: the business worker's JSON ({id, echo, worker, pid,
// generation}) or {id, error}. The gateway does not parse messages: it passes
// the text through (JSON whitespace newlines are compacted away first) and
// passes the answer back.
//
// Business protocol (see README.md), newline-framed, many calls in flight on
// each connection:
//   gateway -> business   `<n> <message JSON>\n`   n numbers the calls of one connection
//   business -> gateway   `<n> <answer JSON>\n`    one per call
//   business -> gateway   `D\n`                    the worker drains: send nothing more here
// Every message gets exactly one answer:
//   - a call is written to exactly one connection and answered from it;
//   - on `D` the gateway sends no new call on that connection, moves the calls
//     it had not written yet to another connection (a new one replaces it),
//     waits for the answers to the calls it did write (the worker answers all
//     it reads) and then ends the connection; the worker closes it;
//   - a call is sent again only if it was never written (its connection
//     failed to connect, or said `D` first); a connection that breaks after a
//     call was written answers that call with an error, never twice (the
//     worker may have run it);
//   - a call unanswered after 10 s is answered with an error (a late answer is dropped).
//
// On stop (`smoothctl restart gateway`, or smoothd stopping), each client is
// closed with code 1001 ("going away") once its pending messages are
// answered; clients reconnect, and smoothd's socket accepts them meanwhile.
import http from 'node:http';
import net from 'node:net';
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
const CONNECTIONS = Number(process.env.BUSINESS_CONNECTIONS || 4);
if (!Number.isInteger(CONNECTIONS) || CONNECTIONS < 1 || CONNECTIONS > 256) {
  console.error(`gateway: BUSINESS_CONNECTIONS must be a whole number from 1 to 256, got ${JSON.stringify(process.env.BUSINESS_CONNECTIONS)}`);
  process.exit(1);
}
const TIMEOUT_MS = 10_000;
const MAX_MESSAGE = 64 * 1024;
const RECONNECT_MS = 100;

/** A call: one client message on its way to the business group. */
class Call {
  constructor(ws, text) {
    this.ws = ws;
    this.text = text;
    this.at = Date.now();
  }
}

/** The id of a message for an error answer (parsed only then: the common path never parses). */
function idOf(text) {
  try {
    return JSON.parse(text)?.id ?? null;
  } catch {
    return null;
  }
}

/** One connection to the business group (whichever worker accepts it). */
class Upstream {
  constructor() {
    this.nextId = 1;
    /** Calls written and not answered yet, by number, oldest first. */
    this.written = new Map();
    /** Calls assigned here and not written yet. */
    this.unsent = [];
    this.connected = false;
    /** Said `D` (or is being ended): takes no new call. */
    this.closing = false;
    this.flushing = false;
    this.buffered = '';
    upstreams.add(this);
    this.socket = net.connect(socketPath);
    this.socket.setEncoding('utf8');
    this.socket.on('connect', () => {
      this.connected = true;
      this.flush();
    });
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', (err) => (this.error = err));
    this.socket.on('close', () => onUpstreamClosed(this));
  }

  take(call) {
    this.unsent.push(call);
    if (this.connected && !this.flushing) {
      // Everything assigned in this turn of the event loop goes out in one write.
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  flush() {
    this.flushing = false;
    if (!this.connected || this.closing || this.unsent.length === 0) return;
    let out = '';
    for (const call of this.unsent) {
      const n = this.nextId++;
      this.written.set(n, call);
      out += n + ' ' + call.text + '\n';
    }
    this.unsent = [];
    this.socket.write(out);
  }

  onData(chunk) {
    this.buffered += chunk;
    let start = 0;
    let nl;
    while ((nl = this.buffered.indexOf('\n', start)) !== -1) {
      const space = this.buffered.indexOf(' ', start);
      if (space === -1 || space > nl) {
        if (nl - start === 1 && this.buffered[start] === 'D') this.drainRequested();
        else console.error(`gateway: the business group sent a line that is neither "<n> <JSON>" nor "D"; ignored`);
      } else {
        const n = Number(this.buffered.slice(start, space));
        const call = this.written.get(n);
        if (call !== undefined) {
          this.written.delete(n);
          answered(call, this.buffered.slice(space + 1, nl));
        }
      }
      start = nl + 1;
    }
    this.buffered = start === 0 ? this.buffered : this.buffered.slice(start);
    this.endIfDone();
  }

  /** The worker drains: no new calls here; unsent ones go elsewhere; end once the written ones are answered. */
  drainRequested() {
    if (this.closing) return;
    this.closing = true;
    pool.delete(this);
    fillPool();
    const moved = this.unsent;
    this.unsent = [];
    for (const call of moved) dispatch(call);
  }

  endIfDone() {
    if (this.closing && this.written.size === 0 && this.unsent.length === 0) this.socket.end();
  }
}

/** Every connection to the business group, also those ending. */
const upstreams = new Set();
/** Open connections (and those still connecting) that take new calls. */
const pool = new Set();
/** Calls waiting for a connection (none could be opened). */
let waiting = [];
let reconnectTimer = null;
let rr = [];
let rrIndex = 0;
let stopping = false;

function fillPool() {
  if (stopping) return;
  while (pool.size < CONNECTIONS) pool.add(new Upstream());
  rr = [...pool];
  const calls = waiting;
  waiting = [];
  for (const call of calls) dispatch(call);
}

function dispatch(call) {
  if (rr.length === 0) {
    waiting.push(call);
    return;
  }
  // Round robin over the connections; one still connecting queues the call.
  rrIndex = (rrIndex + 1) % rr.length;
  rr[rrIndex].take(call);
}

function onUpstreamClosed(up) {
  upstreams.delete(up);
  const wasInPool = pool.delete(up);
  rr = [...pool];
  // Never written: safe to send elsewhere.
  const unsent = up.unsent;
  up.unsent = [];
  // Written: the worker may have run them; answer with an error, never twice.
  const why = up.error ? `${up.error.code ?? ''} ${up.error.message}`.trim() : 'the connection closed';
  for (const call of up.written.values()) fail(call, `the business group did not answer: ${why}`);
  up.written.clear();
  for (const call of unsent) dispatch(call);
  if (!up.connected || wasInPool) {
    // It never connected (no socket, or a full queue), or broke unasked: open another soon.
    if (!reconnectTimer && !stopping) {
      reconnectTimer = setTimeout(() => {
        reconnectTimer = null;
        fillPool();
      }, RECONNECT_MS);
    }
  }
}

function answered(call, json) {
  if (call.ws.readyState === call.ws.OPEN) call.ws.send(json);
  done(call.ws);
}

function fail(call, error) {
  reply(call.ws, { id: idOf(call.text), error });
  done(call.ws);
}

// Calls unanswered for TIMEOUT_MS get an error answer; a late answer finds no call and is dropped.
const sweep = setInterval(() => {
  const oldest = Date.now() - TIMEOUT_MS;
  const message = `the business group did not answer: ETIMEDOUT no answer within ${TIMEOUT_MS} ms`;
  const fresh = (call) => (call.at > oldest ? true : (fail(call, message), false));
  for (const up of upstreams) {
    for (const [n, call] of up.written) {
      if (call.at > oldest) break;
      up.written.delete(n);
      fail(call, message);
    }
    up.unsent = up.unsent.filter(fresh);
    up.endIfDone();
  }
  waiting = waiting.filter(fresh);
}, 1000);
sweep.unref();

// ---------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', upgrade: 'websocket' });
  res.end('this is a WebSocket gateway: connect with ws://HOST:PORT/ and send {"id": 1, "text": "hi"}\n');
});
const wss = new WebSocketServer({ server, maxPayload: MAX_MESSAGE });
let draining = false;

/** Per client: messages forwarded and not yet answered (`ws.calls`); close once none is left while draining. */
function closeIfDone(ws) {
  if (draining && ws.calls === 0) ws.close(1001, 'gateway restarting: reconnect');
}

function done(ws) {
  ws.calls--;
  if (draining) closeIfDone(ws);
}

function reply(ws, value) {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(value));
}

const NOT_JSON = 'a message is JSON text such as {"id": 1, "text": "hi"}';

wss.on('connection', (ws) => {
  ws.calls = 0;
  ws.on('error', () => ws.terminate());
  if (draining) return closeIfDone(ws);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return reply(ws, { id: null, error: NOT_JSON });
    let text = data.toString('utf8');
    if (text.includes('\n')) {
      // Newlines frame the business protocol: compact the JSON (its strings cannot hold a raw newline).
      try {
        text = JSON.stringify(JSON.parse(text));
      } catch {
        return reply(ws, { id: null, error: NOT_JSON });
      }
    }
    ws.calls++;
    dispatch(new Call(ws, text));
  });
});

fillPool();

const { fd, address } = await listen(server, {
  // Stay below stopTimeout in smoothd.yaml.
  drainTimeoutMs: 8000,
  onDrainStart() {
    draining = true;
    console.log(`gateway pid ${process.pid} draining: closing ${wss.clients.size} client(s) once their answers are sent`);
    for (const ws of wss.clients) closeIfDone(ws);
  },
  onDrain() {
    stopping = true;
    for (const up of upstreams) up.socket.end();
    console.log(`gateway pid ${process.pid} drained`);
  },
});
const where = fd === null ? `${address.address}:${address.port}` : `inherited fd ${fd}`;
console.log(`gateway pid ${process.pid} listening on ${where}, business group at ${socketPath} (${CONNECTIONS} connections)`);
