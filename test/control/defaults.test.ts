/**
 * The limits a control server enforces when nobody overrides them — what every
 * smoothd ships with. The other control tests shrink limits to keep runs short;
 * these use a server built with the defaults, check the README table against
 * them, and exercise the ones that are cheap to reach for real.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ExtraMethod } from '../../src/control/server.js';
import { eventually, fakeHandlers, Harness, LineClient, sleep } from './helpers.js';

let h: Harness;
beforeEach(() => {
  h = new Harness();
});
afterEach(async () => {
  await h.cleanup();
});

const echo: ExtraMethod[] = [
  { spec: { name: 'echo', summary: 'test', help: 'test', params: 'any', result: 'ok', errors: [], notifications: [] }, handler: () => 'ok' },
];

/** README "Limits": value cell of the row whose first cell starts with `name`, parsed to a number. */
function readmeLimit(name: string): number {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const row = readme.split('\n').find((l) => l.startsWith(`| ${name} |`));
  if (!row) throw new Error(`README has no Limits row "${name}"`);
  const m = /^([\d ]+)\s*(MiB|KiB|s|levels|requests)?/.exec(row.split('|')[2]!.trim());
  if (!m) throw new Error(`README Limits row "${name}" has no number: ${row}`);
  const n = Number(m[1]!.replace(/ /g, ''));
  const unit = { MiB: 1024 * 1024, KiB: 1024, s: 1000 }[m[2] as string] ?? 1;
  return n * unit;
}

describe('control server defaults', () => {
  it('are the values README documents', async () => {
    const server = await h.server();
    expect(server.limits).toEqual({
      maxLineBytes: readmeLimit('request line'),
      maxDepth: readmeLimit('JSON nesting'),
      maxBatch: readmeLimit('batch'),
      maxConnections: readmeLimit('connections'),
      maxInFlightPerConnection: readmeLimit('requests in flight per connection'),
      readPauseBytes: readmeLimit('replies the client has not read'),
      maxWriteBufferBytes: readmeLimit('notifications the client has not read'),
      idleTimeoutMs: readmeLimit('idle connection'),
    });
    // The numbers themselves are part of the contract (DESIGN §5: at least 1 024 connections).
    expect(server.limits).toEqual({
      maxLineBytes: 1024 * 1024,
      maxDepth: 64,
      maxBatch: 1024,
      maxConnections: 2048,
      maxInFlightPerConnection: 32,
      readPauseBytes: 256 * 1024,
      maxWriteBufferBytes: 16 * 1024 * 1024,
      idleTimeoutMs: 60_000,
    });
  });

  it('accept 64 levels of nesting and refuse 65', async () => {
    const server = await h.server({ extraMethods: echo });
    const c = await h.client(server.path);
    const nested = (levels: number) => `{"jsonrpc":"2.0","method":"echo","params":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)},"id":1}`;
    expect(await c.call(nested(64))).toEqual({ jsonrpc: '2.0', result: 'ok', id: 1 });
    expect(await c.call(nested(65))).toMatchObject({ error: { code: -32600, message: expect.stringMatching(/deeper than 64/) }, id: null });
  });

  it('answer a batch of 1 024 and refuse 1 025', async () => {
    const server = await h.server({ extraMethods: echo });
    const c = await h.client(server.path);
    const batch = (n: number) => Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', method: 'echo', id: i }));
    expect(await c.call(batch(1024), 10_000)).toHaveLength(1024);
    expect(await c.call(batch(1025), 10_000)).toMatchObject({ error: { code: -32600, message: expect.stringMatching(/limit of 1024/) } });
  });

  it('run 32 requests of one connection at once and hold the 33rd until one ends', async () => {
    const releases: Array<() => void> = [];
    const server = await h.server({
      handlers: fakeHandlers({ status: () => new Promise((resolve) => releases.push(() => resolve({ version: 1 }))) }),
    });
    const c = await h.client(server.path);
    for (let i = 1; i <= 40; i++) c.send({ jsonrpc: '2.0', method: 'status', id: i });
    await eventually(() => releases.length === 32, 5000, '32 requests in flight');
    await sleep(100); // give a 33rd the chance to start if the limit were not held
    expect(releases.length).toBe(32);
    releases[0]!();
    expect(await c.next()).toMatchObject({ id: 1 });
    await eventually(() => releases.length === 33, 5000, 'the 33rd request to start');
  });

  it('hold 2 048 connections and close the oldest idle one for the 2 049th', async () => {
    const server = await h.server();
    const clients: LineClient[] = [];
    for (let i = 0; i < 2048; i++) clients.push(await h.client(server.path));
    await eventually(() => server.connectionCount === 2048, 10_000, '2 048 connections accepted');
    expect(clients.some((c) => c.isClosed)).toBe(false);
    const extra = await h.client(server.path);
    await clients[0]!.closed; // the oldest idle one makes room
    expect(await extra.call({ jsonrpc: '2.0', method: 'status', id: 1 })).toMatchObject({ id: 1, result: { version: 1 } });
    expect(clients.slice(1).some((c) => c.isClosed)).toBe(false);
  }, 60_000);
});
