// The load generator of the benchmark, run as its own process (forked by
// bench/run.js) so that the orchestrator never steals its event loop.
//
// It drives autocannon (no pipelining) and records every request: its end
// time, its latency and how it ended. Two things autocannon does not do on
// its own, added through its setupClient hook:
//
// - Honour `Connection: close`. autocannon writes the next request on the
//   same connection right after a response, even one that said the server is
//   closing it; every real HTTP client (browsers, curl, Node's http, undici)
//   opens a new connection instead. With keep-alive off we send
//   `Connection: close` on every request, so each request gets a connection
//   of its own.
// - Count a request that was pending when the server closed the connection
//   (autocannon reconnects silently and would not count it): that is exactly
//   the failure a bad drain causes.
//
// Protocol (IPC with the parent): the parent sends {type:'start', url,
// connections, keepAlive, timeoutS}; we answer {type:'started'}; on
// {type:'stop', file} we stop, count requests outstanding longer than the
// hang limit as hung, write the records to `file` and answer {type:'stopped',
// n, totals}.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { KIND } from './stats.js';

const require = createRequire(import.meta.url);
const autocannon = require('autocannon');

const HANG_MS = 2000;

let cap = 1 << 20;
let n = 0;
let T = new Float64Array(cap);
let L = new Float32Array(cap);
let K = new Uint8Array(cap);

const now = () => performance.timeOrigin + performance.now();

function record(kind, lat) {
  if (n === cap) {
    cap *= 2;
    const t = new Float64Array(cap);
    t.set(T);
    T = t;
    const l = new Float32Array(cap);
    l.set(L);
    L = l;
    const k = new Uint8Array(cap);
    k.set(K);
    K = k;
  }
  T[n] = now();
  L[n] = lat;
  K[n] = kind;
  n += 1;
}

const clients = [];

function setupClient(client) {
  clients.push(client);
  client.on('headers', (info) => {
    client._smoothdCloseAfter = info.shouldKeepAlive === false;
  });
  const doRequest = client._doRequest;
  client._doRequest = function patchedDoRequest(...args) {
    if (this._smoothdCloseAfter) {
      // The last response said the server closes the connection: send
      // nothing more on it. The server's FIN follows the response at once,
      // and autocannon's 'end' handler then connects again and sends the next
      // request. (Closing from our side first instead would leave the
      // TIME_WAIT sockets on the client and make every connect() search for
      // a free port: half the rate on this machine.)
      this._smoothdCloseAfter = false;
      return undefined;
    }
    return doRequest.apply(this, args);
  };
  const connect = client._connect;
  client._connect = function patchedConnect(...args) {
    const r = connect.apply(this, args);
    const conn = this.conn;
    // Runs before autocannon's own handlers, which reconnect and send the next request.
    conn.prependListener('end', () => {
      if (this.destroyed) return;
      const pending = this.pipelinedRequests.size();
      for (let i = 0; i < pending; i++) record(KIND.DROPPED, NaN);
      this.pipelinedRequests.clear();
    });
    conn.prependListener('error', () => {
      // autocannon counts the error (reqError below) and reconnects; the request is gone.
      this.pipelinedRequests.clear();
    });
    return r;
  };
}

let instance = null;

function start(msg) {
  instance = autocannon({
    url: msg.url,
    connections: msg.connections,
    pipelining: 1,
    duration: 3600,
    timeout: msg.timeoutS,
    headers: msg.keepAlive ? {} : { connection: 'close' },
    setupClient,
  });
  instance.on('response', (_client, statusCode, _bytes, latencyMs) => {
    record(statusCode >= 200 && statusCode < 300 ? KIND.OK : KIND.NON_2XX, latencyMs);
  });
  instance.on('reqError', (err) => {
    record(err && err.message === 'request timed out' ? KIND.TIMEOUT : KIND.ERROR, NaN);
  });
  process.send({ type: 'started' });
}

function stop(msg) {
  // Requests still outstanding: hung if older than HANG_MS, else just cut by the stop.
  for (const c of clients) {
    for (const p of c.pipelinedRequests.pendingRequests) {
      const [s, ns] = process.hrtime(p.startTime);
      if (s * 1000 + ns / 1e6 > HANG_MS) record(KIND.HUNG, NaN);
    }
  }
  const totals = new Array(7).fill(0);
  for (let i = 0; i < n; i++) totals[K[i]] += 1;
  const done = () => {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(n, 0);
    const fd = fs.openSync(msg.file, 'w');
    fs.writeSync(fd, header);
    fs.writeSync(fd, Buffer.from(T.buffer, 0, n * 8));
    fs.writeSync(fd, Buffer.from(L.buffer, 0, n * 4));
    fs.writeSync(fd, Buffer.from(K.buffer, 0, n));
    fs.closeSync(fd);
    process.send({ type: 'stopped', n, totals }, () => process.exit(0));
  };
  if (!instance) return done();
  instance.on('done', done);
  instance.stop();
  return undefined;
}

/** Reads a file written by stop() (used by run.js). */
export function readRecords(file) {
  const buf = fs.readFileSync(file);
  const count = buf.readUInt32LE(0);
  let off = 8;
  const t = new Float64Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + count * 8));
  off += count * 8;
  const lat = new Float32Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + count * 4));
  off += count * 4;
  const kind = new Uint8Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + count));
  return { n: count, t, lat, kind };
}

if (process.send && process.argv[2] === '--child') {
  process.on('message', (msg) => {
    if (msg.type === 'start') start(msg);
    else if (msg.type === 'stop') stop(msg);
  });
  process.on('disconnect', () => process.exit(0));
}
