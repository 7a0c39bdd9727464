/**
 * A real Runtime (no control socket, no daemon process) over a YAML config in a
 * fresh temporary folder, started and ready. Every worker it still lists is
 * killed by pid in `cleanup`, with the folder, whatever the test did.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadCheckedConfig } from '../../src/config/load.js';
import { reloadLoader, resolveSpecs } from '../../src/daemon.js';
import { Runtime, type RuntimeOptions } from '../../src/runtime/runtime.js';
import { SocketTable } from '../../src/runtime/sockets.js';

export type Cleanup = Array<() => void | Promise<void>>;

export async function startRuntime(yaml: string, cleanup: Cleanup, extra: Partial<RuntimeOptions> = {}): Promise<Runtime> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-runtime-'));
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'smoothd.yaml');
  fs.writeFileSync(file, yaml);
  const config = await loadCheckedConfig(file);
  const specs = await resolveSpecs(config);
  const runtime = new Runtime({
    config,
    specs,
    sockets: new SocketTable(),
    loadConfig: reloadLoader(file, null),
    logger: pino({ level: 'silent' }),
    version: '0.0.0-test',
    setpriv: null,
    ...extra,
  });
  cleanup.push(() => {
    for (const g of runtime.status().groups) {
      for (const w of g.workers) {
        if (w.pid === null) continue;
        try {
          process.kill(w.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });
  runtime.start();
  await runtime.ready;
  return runtime;
}
