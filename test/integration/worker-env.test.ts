/**
 * What a real worker finds in its environment (DESIGN §4): SMOOTHD_GROUP,
 * SMOOTHD_WORKER_ID, SMOOTHD_WORKER_SLOT, SMOOTHD_GENERATION and SMOOTHD_READY,
 * as each worker process itself reports them, before and after a reload.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { boundPort, cleanup, type Daemon, FIXTURES, get, smoothctl, startDaemon, track, waitFor } from './harness.js';

let daemon: Daemon | null = null;

afterEach(async () => {
  await cleanup();
  daemon = null;
});

interface Seen {
  pid: number;
  env: Record<string, string | null>;
}

/** Asks the shared socket until every one of `pids` has answered once; returns each worker's own view. */
async function askEvery(port: number, pids: number[]): Promise<Map<number, Seen['env']>> {
  const seen = new Map<number, Seen['env']>();
  await waitFor(`an answer from each of the workers ${pids.join(', ')}`, async () => {
    const r = JSON.parse((await get(port)).body) as Seen;
    if (pids.includes(r.pid)) seen.set(r.pid, r.env);
    return pids.every((p) => seen.has(p));
  }, 20_000, 0);
  return seen;
}

describe('the environment of a real worker', () => {
  it('SMOOTHD_GROUP, SMOOTHD_WORKER_ID, SMOOTHD_WORKER_SLOT and SMOOTHD_GENERATION match status, before and after a reload', async () => {
    daemon = await startDaemon(`groups:
  api:
    command: [node, ${path.join(FIXTURES, 'env-app.mjs')}]
    count: 3
    listen: ["127.0.0.1:0"]
    ready: ipc
`);
    const port = await boundPort(daemon);
    const check = async (generation: number): Promise<number[]> => {
      const workers = (await daemon!.status()).groups[0].workers as Array<{ id: number; pid: number; slot: number; generation: number }>;
      expect(workers).toHaveLength(3);
      workers.forEach((w) => track(w.pid));
      const seen = await askEvery(port, workers.map((w) => w.pid));
      for (const w of workers) {
        expect(w.generation).toBe(generation);
        expect(seen.get(w.pid), `worker pid ${w.pid}`).toMatchObject({
          SMOOTHD_GROUP: 'api',
          SMOOTHD_WORKER_ID: String(w.id),
          SMOOTHD_WORKER_SLOT: String(w.slot),
          SMOOTHD_GENERATION: String(generation),
          SMOOTHD_READY: 'ipc',
          LISTEN_PID: String(w.pid),
        });
      }
      expect(workers.map((w) => w.slot).sort()).toEqual([0, 1, 2]);
      return workers.map((w) => w.id);
    };
    const before = await check(1);
    const r = await smoothctl(daemon.socket, ['reload']);
    expect(r.code, r.stderr).toBe(0);
    const after = await check(2);
    // Ids are unique and increasing: every new worker got an id above every old one.
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
  });

  it("NODE_COMPILE_CACHE: the group's own folder next to the control socket, unless compileCache: false or the group sets it", async () => {
    const app = path.join(FIXTURES, 'env-app.mjs');
    daemon = await startDaemon(`groups:
  web:
    command: [node, ${app}]
    listen: ["127.0.0.1:0"]
    ready: ipc
  plain:
    command: [node, ${app}]
    listen: ["127.0.0.1:0"]
    ready: ipc
    compileCache: false
  own:
    command: [node, ${app}]
    listen: ["127.0.0.1:0"]
    ready: ipc
    env: { NODE_COMPILE_CACHE: /srv/own-cache }
`);
    const seen = async (group: string) => {
      const [pid] = await daemon!.workerPids(group);
      return (await askEvery(await boundPort(daemon!, group), [pid!])).get(pid!)!.NODE_COMPILE_CACHE;
    };
    const folder = path.join(path.dirname(daemon.socket), 'compile-cache', 'web');
    expect(await seen('web')).toBe(folder);
    expect(fs.statSync(folder).isDirectory()).toBe(true);
    expect(fs.statSync(folder).mode & 0o777).toBe(0o700);
    expect(await seen('plain')).toBeNull();
    expect(await seen('own')).toBe('/srv/own-cache');
    expect(fs.existsSync(path.join(path.dirname(daemon.socket), 'compile-cache', 'plain'))).toBe(false);
  });
});
