/**
 * Test helpers for the control plane: temp folders, a capturing pino logger,
 * fake handlers, and a raw line client that talks JSON-RPC by hand.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { startControlServer, type ControlHandlers, type ControlServer, type ControlServerOptions } from '../../src/control/server.js';

export interface LogCapture {
  logger: Logger;
  entries: Array<Record<string, unknown>>;
}

export function captureLogger(): LogCapture {
  const entries: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(s: string) {
        entries.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  );
  return { logger, entries };
}

/** A short temp folder (socket paths must stay under 107 bytes). */
export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sdctl-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function fakeHandlers(overrides: Partial<ControlHandlers> = {}): ControlHandlers {
  return {
    reload: async () => ({ id: 1, state: 'running' }),
    restart: async () => ({ id: 1, state: 'running' }),
    rollback: async () => ({ id: 1, state: 'running' }),
    status: async () => ({ version: 1 }),
    stop: async () => ({ pid: process.pid, state: 'stopping' }),
    ...overrides,
  };
}

/** Tracks servers and clients so afterEach can clean up even when a test fails. */
export class Harness {
  private readonly servers: ControlServer[] = [];
  private readonly clients: LineClient[] = [];
  private readonly dirs: Array<{ cleanup(): void }> = [];
  readonly log = captureLogger();

  dir(): string {
    const d = tempDir();
    this.dirs.push(d);
    return d.dir;
  }

  async server(opts: Partial<ControlServerOptions> & { path?: string } = {}): Promise<ControlServer> {
    const server = await startControlServer({
      path: opts.path ?? join(this.dir(), 'c.sock'),
      mode: 0o600,
      handlers: fakeHandlers(),
      logger: this.log.logger,
      ...opts,
    });
    this.servers.push(server);
    return server;
  }

  async client(path: string): Promise<LineClient> {
    const c = await LineClient.connect(path);
    this.clients.push(c);
    return c;
  }

  async cleanup(): Promise<void> {
    for (const c of this.clients) c.close();
    await Promise.all(this.servers.map((s) => s.close()));
    for (const d of this.dirs) d.cleanup();
  }
}

/** A raw client: writes lines, reads lines, parses each as JSON. */
export class LineClient {
  private buffer = '';
  private readonly queue: string[] = [];
  private waiters: Array<(line: string | null) => void> = [];
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) !== -1) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.queue.push(line);
      }
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        for (const w of this.waiters.splice(0)) w(null);
        resolve();
      }),
    );
  }

  static connect(path: string): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ path });
      s.once('connect', () => resolve(new LineClient(s)));
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.ended;
  }

  write(text: string): void {
    this.socket.write(text);
  }

  send(value: unknown): void {
    this.write(JSON.stringify(value) + '\n');
  }

  /** The next line, or null if the connection closed first. Fails after timeoutMs. */
  nextLine(timeoutMs = 3000): Promise<string | null> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no line within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (line: string | null) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiters.push(waiter);
    });
  }

  async next(timeoutMs = 3000): Promise<unknown> {
    const line = await this.nextLine(timeoutMs);
    if (line === null) throw new Error('connection closed before a line arrived');
    return JSON.parse(line) as unknown;
  }

  /** Send one line and wait for one reply. */
  async call(line: string | object, timeoutMs = 3000): Promise<unknown> {
    if (typeof line === 'string') this.write(line.endsWith('\n') ? line : line + '\n');
    else this.send(line);
    return this.next(timeoutMs);
  }

  /** Resolve if no line arrives within ms and the connection stays open; fail otherwise. */
  async expectSilence(ms: number): Promise<void> {
    const line = await this.nextLine(ms).catch(() => undefined);
    if (line === null) throw new Error('expected no reply, but the connection was closed');
    if (line !== undefined) throw new Error(`expected no reply, got ${line}`);
  }

  close(): void {
    this.socket.destroy();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll until `check` is true or fail after timeoutMs. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
