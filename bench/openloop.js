// The open-loop load generator of the benchmark (forked by bench/run.js).
//
// autocannon is closed-loop: each connection sends its next request only after
// the previous answer, so a stall delays the requests that would have been
// sent during it and their latency is never measured (coordinated omission,
// DESIGN §13). This generator sends on a fixed schedule instead — request i is
// due at start + i / rate — whatever the server does, and measures each
// latency from the request's SCHEDULED time to the end of its response. A
// request never waits behind a busy connection: with keep-alive it takes an
// idle connection or opens a new one; without keep-alive every request opens
// its own and sends `Connection: close`. A response with `Connection: close`
// (a draining smoothd/worker) retires its connection, and the server closes
// it first (no TIME_WAIT piles up on the client).
//
// Connections are capped (`maxConnections`, default 512: far more than rate x
// p99 at the benchmark's rates), like a fleet of real clients' pools: when all
// are busy a request waits in a queue for the next free one, and that wait
// counts in its latency (measured from the schedule). Without the cap a stall
// turns into a storm of new connections that costs the server more than the
// requests. Idle keep-alive connections are reused oldest-idle first, so none
// sits idle long enough for a draining worker's idle close to race a request.
//
// Plain HTTP/1.1 GET over node:net on loopback, so that the generator itself
// costs little CPU. Records one entry per request in the format of
// bench/load.js (end time, latency, kind; read with readRecords there).
//
// Protocol (IPC): {type:'start', host, port, rate, keepAlive, timeoutS, maxConnections?} ->
// {type:'started'}; {type:'stop', file} -> stops scheduling, waits up to
// HANG_MS for the requests in flight, counts the rest as hung (and those
// still queued, never sent, as unsent: the server did not keep up), writes the
// records to `file` and answers {type:'stopped', n, totals, scheduled,
// maxLagMs, peakConnections}.
import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { KIND } from './stats.js';

const HANG_MS = 2000;
const now = () => performance.timeOrigin + performance.now();

let cap = 1 << 20;
let n = 0;
let T = new Float64Array(cap);
let L = new Float32Array(cap);
let K = new Uint8Array(cap);

function record(kind, lat) {
  if (n === cap) {
    cap *= 2;
    const grow = (Type, old) => {
      const a = new Type(cap);
      a.set(old);
      return a;
    };
    T = grow(Float64Array, T);
    L = grow(Float32Array, L);
    K = grow(Uint8Array, K);
  }
  T[n] = now();
  L[n] = lat;
  K[n] = kind;
  n += 1;
}

/**
 * Incremental parser of HTTP/1.1 responses on one connection: feed() returns
 * {status, close} once a whole response is in, else null. Handles
 * Content-Length and chunked bodies (enough for the benchmark's apps).
 */
export class ResponseParser {
  constructor() {
    this.buf = '';
    this.head = null; // {status, close, length, chunked, bodyStart}
  }

  feed(chunk) {
    this.buf += chunk;
    if (this.head === null) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return null;
      const lines = this.buf.slice(0, end).split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      let length = 0;
      let chunked = false;
      let close = /^HTTP\/1\.0/.test(lines[0]);
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim().toLowerCase();
        if (k === 'content-length') length = Number(v);
        else if (k === 'transfer-encoding') chunked = v.includes('chunked');
        else if (k === 'connection') close = v.includes('close');
      }
      this.head = { status, close, length, chunked, bodyStart: end + 4 };
    }
    const h = this.head;
    const body = this.buf.length - h.bodyStart;
    let done = -1;
    if (h.chunked) {
      const z = this.buf.indexOf('\r\n0\r\n\r\n', h.bodyStart - 2);
      if (z >= 0) done = z + 7;
    } else if (body >= h.length) done = h.bodyStart + h.length;
    if (done < 0) return null;
    this.buf = this.buf.slice(done);
    this.head = null;
    return { status: h.status, close: h.close };
  }
}

const busy = new Set();
const idle = []; // FIFO: the connection idle longest goes first
const queue = []; // scheduled times of requests waiting for a connection
let queueHead = 0;
let live = 0;
let peakConnections = 0;
let opts = null;
let request = '';
let t0 = 0;
let scheduled = 0;
let stopped = false;
let maxLagMs = 0;
let maxQueued = 0;
let timer = null;

function openConnection() {
  const sock = net.connect({ host: opts.host, port: opts.port, noDelay: true });
  const c = { sock, parser: new ResponseParser(), sched: null, dead: false };
  live += 1;
  peakConnections = Math.max(peakConnections, live);
  sock.setEncoding('latin1');
  sock.on('data', (chunk) => {
    const r = c.parser.feed(chunk);
    if (r === null || c.sched === null) return;
    record(r.status >= 200 && r.status < 300 ? KIND.OK : KIND.NON_2XX, now() - c.sched);
    c.sched = null;
    busy.delete(c);
    if (r.close || !opts.keepAlive) c.dead = true; // the server closes it; never reused
    else if (stopped) sock.destroy();
    else if (queueHead < queue.length) assign(c, takeQueued());
    else idle.push(c);
  });
  const gone = (kind) => {
    if (c.sched !== null) record(kind, NaN);
    c.sched = null;
    busy.delete(c);
    c.dead = true;
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
  };
  sock.on('error', () => gone(KIND.ERROR));
  sock.on('end', () => gone(KIND.DROPPED));
  sock.on('close', () => {
    gone(KIND.DROPPED);
    live -= 1;
    // A slot is free again: the oldest waiting request gets a new connection.
    if (!stopped && queueHead < queue.length) assign(openConnection(), takeQueued());
  });
  return c;
}

function takeQueued() {
  const sched = queue[queueHead++];
  if (queueHead > 4096 && queueHead * 2 > queue.length) {
    queue.splice(0, queueHead);
    queueHead = 0;
  }
  return sched;
}

function assign(c, sched) {
  c.sched = sched;
  busy.add(c);
  c.sock.write(request);
}

function send(sched) {
  let c = null;
  while (idle.length > 0 && c === null) {
    const x = idle.shift();
    if (!x.dead) c = x;
  }
  if (c === null && live < opts.maxConnections) c = openConnection();
  if (c === null) queue.push(sched);
  else assign(c, sched);
}

function tick() {
  if (stopped) return;
  const t = now();
  const due = Math.floor(((t - t0) * opts.rate) / 1000) + 1;
  if (scheduled < due) maxLagMs = Math.max(maxLagMs, t - (t0 + (scheduled * 1000) / opts.rate));
  while (scheduled < due) {
    send(t0 + (scheduled * 1000) / opts.rate);
    scheduled += 1;
  }
  maxQueued = Math.max(maxQueued, queue.length - queueHead);
  const timeoutMs = opts.timeoutS * 1000;
  for (const c of busy) {
    if (t - c.sched > timeoutMs) {
      record(KIND.TIMEOUT, NaN);
      c.sched = null;
      busy.delete(c);
      c.dead = true;
      c.sock.destroy();
    }
  }
  const next = t0 + (scheduled * 1000) / opts.rate;
  timer = setTimeout(tick, Math.max(0, Math.min(next - now(), 5)));
}

function start(msg) {
  opts = { maxConnections: 512, ...msg };
  request = `GET / HTTP/1.1\r\nHost: ${msg.host}:${msg.port}\r\n${msg.keepAlive ? '' : 'Connection: close\r\n'}\r\n`;
  t0 = now();
  tick();
  process.send({ type: 'started' });
}

async function stop(msg) {
  stopped = true;
  clearTimeout(timer);
  const until = now() + HANG_MS;
  while (busy.size > 0 && now() < until) await new Promise((r) => setTimeout(r, 20));
  for (const c of busy) record(KIND.HUNG, NaN);
  for (let i = queueHead; i < queue.length; i++) record(KIND.UNSENT, NaN); // due, but every connection was still busy
  for (const c of [...busy, ...idle]) c.sock.destroy();
  const totals = new Array(7).fill(0);
  for (let i = 0; i < n; i++) totals[K[i]] += 1;
  const header = Buffer.alloc(8);
  header.writeUInt32LE(n, 0);
  const fd = fs.openSync(msg.file, 'w');
  fs.writeSync(fd, header);
  fs.writeSync(fd, Buffer.from(T.buffer, 0, n * 8));
  fs.writeSync(fd, Buffer.from(L.buffer, 0, n * 4));
  fs.writeSync(fd, Buffer.from(K.buffer, 0, n));
  fs.closeSync(fd);
  process.send({ type: 'stopped', n, totals, scheduled, maxLagMs, peakConnections, maxQueued }, () => process.exit(0));
}

if (process.send && process.argv[2] === '--child') {
  process.on('message', (msg) => {
    if (msg.type === 'start') start(msg);
    else if (msg.type === 'stop') void stop(msg);
  });
  process.on('disconnect', () => process.exit(0));
}
