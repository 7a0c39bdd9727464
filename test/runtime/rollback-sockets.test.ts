/**
 * A `smoothctl rollback` queued behind a running reload, to a generation whose
 * listen address no running generation uses any more: smoothd binds that
 * address for the rollback, and must keep it open until the rollback has run
 * (it used to close it at the end of the same dispatch, so the rolled-back
 * workers failed with "listen socket ... is not held"). Real workers, real
 * unix sockets.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadCheckedConfig } from '../../src/config/load.js';
import { reloadLoader, resolveSpecs } from '../../src/daemon.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { SocketTable } from '../../src/runtime/sockets.js';

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/ctl-worker.mjs');

let cleanup: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

describe('listen sockets of a queued rollback', () => {
  it('stay open until the rollback runs, so its workers start', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-rbsock-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'smoothd.yaml');
    const write = (sock: string, rev: string): void =>
      fs.writeFileSync(
        file,
        `groups:\n  web:\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(WORKER)}]\n` +
          `    listen: [${JSON.stringify(`unix:${path.join(dir, sock)}`)}]\n    env: { REV: "${rev}" }\n    ready: ipc\n    stopTimeout: 2s\n`,
      );
    write('a.sock', '1');
    const config = await loadCheckedConfig(file);
    const specs = await resolveSpecs(config);
    const sockets = new SocketTable();
    await sockets.bindAll(config.groups.flatMap((g) => g.listen));
    cleanup.push(() => sockets.closeAll());
    const aKey = config.groups[0]!.listen[0]!.address.key;
    const runtime = new Runtime({
      config,
      specs,
      sockets,
      loadConfig: reloadLoader(file, null),
      logger: pino({ level: 'silent' }),
      version: '0.0.0-test',
      setpriv: null,
    });
    const seen = new Set<number>();
    cleanup.push(() => {
      for (const pid of seen) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    });
    const track = (): void => {
      for (const w of runtime.snapshot.workers) if (w.pid !== null) seen.add(w.pid);
    };
    runtime.start();
    await runtime.ready;
    track();

    // Generation 2 moves to b.sock: once generation 1 is gone, a.sock is closed.
    write('b.sock', '2');
    const second = await runtime.requestReload(null, 'test');
    expect((await runtime.waitForReload(second.id, track)).state).toBe('succeeded');
    expect(sockets.get(aKey)).toBeUndefined();

    // A reload runs (generation 3) and a rollback to generation 1 waits behind it.
    write('b.sock', '3');
    const third = await runtime.requestReload(null, 'test');
    const back = await runtime.requestRollback({ groups: ['web'], to: 1, force: true });
    expect(back.state).toBe('queued');
    expect((await runtime.waitForReload(third.id, track)).state).toBe('succeeded');
    const report = await runtime.waitForReload(back.id, track);
    track();
    expect({ state: report.state, error: report.error }).toEqual({ state: 'succeeded', error: null });
    const g = runtime.status().groups[0]!;
    expect(g.workers.map((w) => [w.generation, w.state])).toEqual([[1, 'ready']]);
    expect(sockets.get(aKey)).toBeDefined();

    await runtime.stop();
    expect(await runtime.exited).toBe(0);
  });
});
