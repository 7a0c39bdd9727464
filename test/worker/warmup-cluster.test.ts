import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('../fixtures/warmup-cluster.mjs', import.meta.url));

let child: ReturnType<typeof spawn> | null = null;
afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = null;
});

describe('kit warm-up in a node:cluster worker', () => {
  it("keeps its private listener out of the cluster: the primary sees only the app's listen, and no warm-up request goes astray", async () => {
    child = spawn(process.execPath, [FIXTURE], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child!.once('exit', (c) => resolve(c)));
    expect(err).not.toContain('warmup failed');
    expect(code).toBe(0);
    const workers = JSON.parse(out.trim()) as { listening: number[]; app: number }[];
    expect(workers).toHaveLength(2);
    // A shared (non-exclusive) warm-up listen goes through the primary: it shows
    // here as a second 'listening' event, and the primary may hand the warm-up
    // requests to the other worker, which closes that listener under them.
    for (const w of workers) expect(w.listening).toEqual([w.app]);
  });
});
