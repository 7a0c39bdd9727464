/**
 * Coalesced reloads end to end (DESIGN §5): reloads requested while one runs
 * all join the single queued follow-up; every caller that joined gets the
 * `queued` progress event and then that follow-up's own result, whether it is
 * a raw JSON-RPC client or a real `smoothctl reload` process.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, type Daemon, FIXTURES, rpc, SMOOTHCTL, startDaemon, tempDir, track, waitFor } from './harness.js';

let daemon: Daemon | null = null;

afterEach(async () => {
  await cleanup();
  daemon = null;
});

interface Caller {
  notes: any[];
  result: Promise<{ ok: boolean; value: any }>;
}

/** A raw client: `reload` with `wait: true`, keeping every progress notification it gets. */
function rawReload(socket: string): Caller {
  const notes: any[] = [];
  const result = rpc(socket, 'reload', { wait: true }, (n) => notes.push(n.params), 60_000).then(
    (value) => ({ ok: true, value }),
    (value) => ({ ok: false, value }),
  );
  return { notes, result };
}

/** A real `smoothctl reload --json`, its stderr (one progress line per step) read as it comes. */
function ctlReload(socket: string): { stderr: () => string; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [SMOOTHCTL, '--socket', socket, 'reload', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child.pid);
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout: out, stderr: err })),
  );
  return { stderr: () => err, done };
}

describe('coalesced follow-up reload', () => {
  it('every caller that joined gets the queued event and the follow-up\'s result; exactly two rolls run', async () => {
    // Workers of generation 2 and later are ready only once HOLD_DIR/ready exists: the first reload
    // runs until the test has every other caller queued behind it.
    const hold = tempDir();
    fs.writeFileSync(path.join(hold, 'stop'), '');
    daemon = await startDaemon(`groups:
  web:
    command: [node, ${path.join(FIXTURES, 'ctl-worker.mjs')}]
    count: 2
    env: { HOLD_DIR: "${hold}" }
    ready: ipc
    readyTimeout: 60s
`);
    const d = daemon;
    const first = rawReload(d.socket);
    await waitFor('the first reload to start its new workers', () => first.notes.some((n) => n.event === 'worker.started'));

    const raws = [rawReload(d.socket), rawReload(d.socket), rawReload(d.socket)];
    const ctls = [ctlReload(d.socket), ctlReload(d.socket)];
    for (const [i, c] of raws.entries()) await waitFor(`raw caller ${i} to get the queued event`, () => c.notes.some((n) => n.event === 'queued'), 20_000);
    for (const [i, c] of ctls.entries()) await waitFor(`smoothctl ${i} to print the queued step`, () => c.stderr().includes('queued behind the running reload'), 20_000);

    const during = await d.status();
    expect(during.reload).toMatchObject({ id: 1, state: 'running', queued: 2 });
    fs.writeFileSync(path.join(hold, 'ready'), '');

    const a = await first.result;
    expect(a.ok, JSON.stringify(a.value)).toBe(true);
    expect(a.value).toMatchObject({ id: 1, state: 'succeeded' });
    expect(first.notes.some((n) => n.event === 'queued')).toBe(false);

    const results = await Promise.all(raws.map((c) => c.result));
    for (const [i, r] of results.entries()) {
      expect(r.ok, `raw caller ${i}: ${JSON.stringify(r.value)}`).toBe(true);
      expect(r.value).toMatchObject({ id: 2, state: 'succeeded', groups: [expect.objectContaining({ name: 'web', state: 'rolled' })] });
      // The same report for every caller that joined.
      expect(r.value).toEqual(results[0]!.value);
      const queued = raws[i]!.notes.filter((n) => n.event === 'queued');
      expect(queued).toEqual([expect.objectContaining({ id: 2, group: null })]);
      // ...then the follow-up's own steps, all under its id.
      expect(raws[i]!.notes.filter((n) => n.event === 'worker.ready').map((n) => n.id)).toEqual([2, 2]);
    }
    for (const [i, c] of ctls.entries()) {
      const r = await c.done;
      expect(r.code, `smoothctl ${i}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual(results[0]!.value);
    }

    const after = await d.status();
    expect(after.reload).toMatchObject({ id: 2, state: 'succeeded', queued: null });
    expect(after.groups[0].generation).toBe(3);
    expect(after.groups[0].workers.map((w: any) => w.generation)).toEqual([3, 3]);
  });
});
