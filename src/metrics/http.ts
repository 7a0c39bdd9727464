/**
 * The metrics listener (`metrics: {listen}`, DESIGN §11): `GET /metrics` over
 * node:http and nothing else (404 for other paths, 405 for other methods).
 * Each answer is rendered synchronously from the current state, so a scrape
 * never waits on the supervisor and the supervisor never waits on a scraper;
 * slow or idle clients are cut off by the server's timeouts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsConfig } from '../config/types.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsServer {
  /** The real address, e.g. `127.0.0.1:41234` when the config said port 0. */
  bound: string;
  close(): Promise<void>;
}

/** Binds and listens; rejects with a message an operator can act on (port in use, no such address). */
export function startMetricsServer(config: MetricsConfig, render: () => string): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: smoothd serves only GET /metrics here\n');
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET' }).end('method not allowed: use GET /metrics\n');
      return;
    }
    let body: string;
    try {
      body = render();
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`internal error: ${(err as Error).message}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) }).end(body);
  });
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  server.maxConnections = 64;
  const { host, port } = config.address;
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'the port is in use by another program; free it or choose another metrics.listen'
          : err.code === 'EADDRNOTAVAIL'
            ? 'that address is not on this machine; use one of its addresses or 0.0.0.0'
            : err.code === 'EACCES'
              ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); choose a port above 1023'
              : err.message;
      reject(new Error(`metrics.listen ${JSON.stringify(config.listen)}: cannot listen (${err.code ?? 'error'}): ${why}`));
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      resolve({
        bound: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
