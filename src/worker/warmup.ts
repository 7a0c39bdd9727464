/**
 * Warm-up for the worker kit (`listen(server, {warmup})`): before a new
 * worker accepts on the shared socket, send requests through the app's own
 * server, so that the first requests of real clients do not pay for lazy
 * compilation and cold inline caches of Node's HTTP path and the app's
 * handler (a fresh Node HTTP server answers its first request in 7-9 ms, its
 * second in 3-5 ms, then ~1 ms).
 *
 * The requests never touch the shared socket (a connection there could reach
 * another worker): a private listener on 127.0.0.1 port 0 accepts them and
 * hands each connection to the app's server (`server.emit('connection')`).
 * Each request carries `x-smoothd-warmup: 1`. The listener and every
 * connection it made are closed before the kit listens on the real socket.
 * A failure (connection error, timeout, a 5xx) is one warning: warm-up is an
 * optimisation, not a health check.
 */
import http from 'node:http';
import net from 'node:net';

export const WARMUP_HEADER = 'x-smoothd-warmup';

export interface WarmupOptions {
  /** How many requests to send, one after the other; default 10 (the first few requests are the cold ones: 10 gained as much as 50 for a third of the CPU, see README). */
  requests?: number;
  /** Paths to request, in turn; each starts with '/'; default ['/']. */
  paths?: string[];
  /** HTTP method; default 'GET'. */
  method?: string;
  /** Extra request headers (x-smoothd-warmup: 1 is always added). */
  headers?: Record<string, string>;
  /** Bound of the whole warm-up; default 5000 ms. */
  timeoutMs?: number;
}

export interface Warmup {
  requests: number;
  paths: string[];
  method: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

export const DEFAULT_WARMUP: Warmup = { requests: 10, paths: ['/'], method: 'GET', headers: {}, timeoutMs: 5000 };
/** Every this-many-th request goes on a new connection without keep-alive (the connection set-up path warms too). */
export const FRESH_CONNECTION_EVERY = 10;

const MAX_REQUESTS = 10_000;

function bad(what: string, got: unknown, allowed: string): Error {
  return new Error(
    `smoothd/worker: listen() option warmup.${what} is ${JSON.stringify(got) ?? String(got)}; ${allowed}. ` +
      'Fix the warmup option passed to listen() (or pass warmup: true for the defaults).',
  );
}

/** Check the `warmup` option of listen(): null when off, else the settings with defaults filled in. */
export function parseWarmup(value: unknown): Warmup | null {
  if (value === undefined || value === false) return null;
  if (value === true) return { ...DEFAULT_WARMUP, paths: [...DEFAULT_WARMUP.paths] };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(
      `smoothd/worker: listen() option warmup is ${JSON.stringify(value) ?? String(value)}; ` +
        'it must be true, false or an object {requests, paths, method, headers, timeoutMs}.',
    );
  }
  const o = value as Record<string, unknown>;
  const known = new Set(['requests', 'paths', 'method', 'headers', 'timeoutMs']);
  for (const key of Object.keys(o)) {
    if (!known.has(key)) {
      throw new Error(
        `smoothd/worker: listen() option warmup has an unknown key "${key}"; ` +
          'the keys are requests, paths, method, headers and timeoutMs.',
      );
    }
  }
  const requests = o.requests ?? DEFAULT_WARMUP.requests;
  if (typeof requests !== 'number' || !Number.isInteger(requests) || requests < 1 || requests > MAX_REQUESTS) {
    throw bad('requests', o.requests, `it must be a positive integer (1 to ${MAX_REQUESTS})`);
  }
  const paths = o.paths ?? DEFAULT_WARMUP.paths;
  if (!Array.isArray(paths) || paths.length === 0) {
    throw bad('paths', o.paths, "it must be a non-empty array of paths such as ['/', '/api/health']");
  }
  for (const [i, p] of paths.entries()) {
    if (typeof p !== 'string' || !p.startsWith('/')) {
      throw bad(`paths[${i}]`, p, "each path must be a string starting with '/' (e.g. '/' or '/users?id=1')");
    }
  }
  const method = o.method ?? DEFAULT_WARMUP.method;
  if (typeof method !== 'string' || !/^[A-Za-z]+$/.test(method)) {
    throw bad('method', o.method, "it must be an HTTP method name such as 'GET' or 'HEAD'");
  }
  const headers = o.headers ?? {};
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw bad('headers', o.headers, "it must be an object of header names to string values, e.g. {accept: 'text/html'}");
  }
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v !== 'string') throw bad(`headers[${JSON.stringify(k)}]`, v, 'header values must be strings');
  }
  const timeoutMs = o.timeoutMs ?? DEFAULT_WARMUP.timeoutMs;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw bad('timeoutMs', o.timeoutMs, 'it must be a positive number of milliseconds');
  }
  return {
    requests,
    paths: [...(paths as string[])],
    method: method.toUpperCase(),
    headers: { ...(headers as Record<string, string>) },
    timeoutMs,
  };
}

/** Why the kit cannot warm this server up, or null when it can (plain HTTP/1.1 on the connection). */
export function warmupUnsupported(server: net.Server): string | null {
  const s = server as unknown as Record<string, unknown>;
  if (typeof s.setSecureContext === 'function') return 'it is a TLS (https) server';
  if (typeof s.updateSettings === 'function') return 'it is an HTTP/2 server';
  return null;
}

/**
 * Send the warm-up requests through `server` (not listening yet) and close
 * everything they opened. Never throws: a failure is one warning through `log`.
 */
export async function warmUp(server: net.Server, warmup: Warmup, log: (m: string) => void): Promise<void> {
  const why = warmupUnsupported(server);
  if (why !== null) {
    log(`warmup skipped: ${why}; the kit warms up plain HTTP/1.1 servers (http.createServer) only`);
    return;
  }
  const accepted = new Set<net.Socket>();
  const requests = new Set<http.ClientRequest>();
  const listener = net.createServer((socket) => {
    accepted.add(socket);
    socket.once('close', () => accepted.delete(socket));
    server.emit('connection', socket);
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let timer: NodeJS.Timeout | null = null;
  let current = 'listening on 127.0.0.1';
  try {
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      // exclusive: in a node:cluster worker a plain listen goes through the
      // primary, which shares one port-0 handle among the workers and hands
      // the warm-up requests to any of them (one closing its listener resets
      // another's requests), and reports the listener as the worker's 'listening'.
      listener.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    const { port } = listener.address() as net.AddressInfo;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${warmup.timeoutMs} ms (warmup.timeoutMs)`)), warmup.timeoutMs);
    });
    const headers = { ...warmup.headers, [WARMUP_HEADER]: '1' };
    for (let i = 0; i < warmup.requests; i++) {
      const path = warmup.paths[i % warmup.paths.length]!;
      const fresh = i % FRESH_CONNECTION_EVERY === FRESH_CONNECTION_EVERY - 1;
      current = `request ${i + 1} of ${warmup.requests} (${warmup.method} ${path})`;
      const status = await Promise.race([send(port, path, warmup.method, headers, fresh ? false : agent, requests), timedOut]);
      if (status >= 500) throw new Error(`answered ${status}`);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log(`warmup failed at ${current}: ${message}; listening anyway (warm-up is an optimisation, not a health check)`);
  } finally {
    if (timer) clearTimeout(timer);
    for (const req of requests) req.destroy();
    agent.destroy();
    for (const socket of accepted) socket.destroy();
    if (listener.listening) await new Promise<void>((resolve) => listener.close(() => resolve()));
  }
}

function send(
  port: number,
  path: string,
  method: string,
  headers: Record<string, string>,
  agent: http.Agent | false,
  requests: Set<http.ClientRequest>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    requests.add(req);
    req.once('close', () => requests.delete(req));
    req.once('error', reject);
    req.end();
  });
}
