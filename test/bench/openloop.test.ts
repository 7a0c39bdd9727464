// The open-loop generator of the benchmark (bench/openloop.js): it sends on a
// schedule and measures from the scheduled time, so a stalled server shows up
// in the latency of the requests that were due during the stall (coordinated
// omission, DESIGN §13). Runs the generator as its own process against small
// in-test HTTP servers on loopback; the generator is ended by pid.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readRecords } from '../../bench/load.js';
import { ResponseParser } from '../../bench/openloop.js';
import { KIND } from '../../bench/stats.js';

const GENERATOR = path.resolve(__dirname, '../../bench/openloop.js');

describe('ResponseParser', () => {
  it('completes a response by Content-Length, across chunks, and keeps what follows', () => {
    const p = new ResponseParser();
    expect(p.feed('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n')).toBeNull();
    expect(p.feed('\r\nhel')).toBeNull();
    expect(p.feed('loHTTP/1.1 503 Busy\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')).toEqual({ status: 200, close: false });
    expect(p.feed('')).toEqual({ status: 503, close: true });
  });

  it('completes a chunked response at its last chunk', () => {
    const p = new ResponseParser();
    expect(p.feed('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')).toBeNull();
    expect(p.feed('0\r\n\r\n')).toEqual({ status: 200, close: false });
  });
});

const children: ChildProcess[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.pid && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(() => r(undefined)))));
});

async function serve(handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  server.unref();
  return (server.address() as net.AddressInfo).port;
}

interface Stopped {
  scheduled: number;
  peakConnections: number;
  totals: number[];
}

/** Runs the generator at `rate` for `ms`, or until `until` settles; returns its records and summary. */
async function generate(port: number, start: Record<string, unknown>, ms: number | Promise<void>) {
  const child = fork(GENERATOR, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  const next = (type: string) => new Promise<Stopped>((resolve) => child.on('message', (m: { type: string }) => m.type === type && resolve(m as unknown as Stopped)));
  const started = next('started');
  child.send({ type: 'start', host: '127.0.0.1', port, timeoutS: 10, ...start });
  await started;
  await (typeof ms === 'number' ? new Promise((r) => setTimeout(r, ms)) : ms);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'openloop-test-')), 'records.bin');
  const stopped = next('stopped');
  child.send({ type: 'stop', file });
  const summary = await stopped;
  const records = readRecords(file);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  return { summary, records };
}

describe('bench/openloop.js', () => {
  it('measures from the scheduled time: requests queued behind a slow server carry their wait', async () => {
    // One connection, 50 ms per answer, 100 requests/s: a closed-loop client would report
    // 50 ms for every request; on a schedule the k-th request has waited ~k x 40 ms more.
    // Stop once the 13th request arrives: on its one connection the generator has then
    // received 12 answers, however slowly a loaded machine ran it (a fixed wait would not say).
    let arrived = 0;
    let thirteenth!: () => void;
    const enough = new Promise<void>((r) => (thirteenth = r));
    const port = await serve((_req, res) => {
      if (++arrived === 13) thirteenth();
      setTimeout(() => res.end('ok'), 50);
    });
    const { summary, records } = await generate(port, { rate: 100, keepAlive: true, maxConnections: 1 }, enough);
    expect(summary.peakConnections).toBe(1);
    const ok = Array.from(records.lat).filter((_, i) => records.kind[i] === KIND.OK);
    expect(ok.length).toBeGreaterThanOrEqual(10);
    expect(Math.min(...ok)).toBeGreaterThanOrEqual(45);
    // 12 answers take >= 0.6 s while one is due every 10 ms: the last answered ones waited well over 300 ms.
    expect(Math.max(...ok)).toBeGreaterThan(300);
    // Requests still queued when the generator stops count as unsent: the server did not keep up.
    expect(summary.totals[KIND.UNSENT]).toBeGreaterThan(0);
    expect(records.n).toBe(summary.scheduled);
  });

  it('keeps the rate with keep-alive off: every request on its own connection, none lost', async () => {
    let connections = 0;
    const port = await serve((req, res) => res.end(req.headers.connection ?? ''));
    servers[0]!.on('connection', () => (connections += 1));
    const { summary, records } = await generate(port, { rate: 200, keepAlive: false }, 500);
    expect(summary.totals[KIND.OK]).toBe(summary.scheduled);
    expect(records.n).toBe(summary.scheduled);
    expect(connections).toBe(summary.scheduled);
  });

  it('counts a request pending on a connection the server closed as dropped', async () => {
    let n = 0;
    const port = await serve((req, res) => {
      n += 1;
      if (n === 3) req.socket.destroy(); // the third request is never answered
      else res.end('ok');
    });
    const { summary } = await generate(port, { rate: 50, keepAlive: true }, 300);
    expect(summary.totals[KIND.DROPPED] + summary.totals[KIND.ERROR]).toBe(1);
    expect(summary.totals[KIND.OK]).toBe(summary.scheduled - 1);
  });
});
