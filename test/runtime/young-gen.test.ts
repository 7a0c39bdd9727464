/**
 * smoothd holds its own V8 young generation at its initial size and leaves its
 * workers' alone (src/runtime/young-gen.ts): the choice from node's arguments
 * and the environment, then real daemons started as an operator starts them
 * (the `smoothd` bin executed through its `#!/usr/bin/env node` line, as npm's
 * link, the unit's ExecStart= and a container's entrypoint do), each with a
 * probe (test/fixtures/young-gen-probe.mjs) that loads V8's young generation
 * and reports how large new space got: in the daemon at its exit, in a worker
 * at its start.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PIN_FLAG, youngGenerationChoice, YOUNG_GENERATION_ENV } from '../../src/runtime/young-gen.js';
import { cleanup, FIXTURES, SMOOTHD, tempDir, track, waitFor } from '../integration/harness.js';

afterEach(cleanup);

describe('youngGenerationChoice', () => {
  it('pins by default, also with unrelated node flags and NODE_OPTIONS', () => {
    expect(youngGenerationChoice([], {})).toEqual({ pin: true });
    expect(youngGenerationChoice(['--enable-source-maps', '--max-old-space-size=512'], { NODE_OPTIONS: '--import=x.mjs' })).toEqual({ pin: true });
    expect(youngGenerationChoice([], { [YOUNG_GENERATION_ENV]: 'pin' })).toEqual({ pin: true });
    expect(PIN_FLAG).toBe('--semi-space-growth-factor=1');
  });

  it(`leaves V8's default with ${YOUNG_GENERATION_ENV}=grow`, () => {
    expect(youngGenerationChoice([], { [YOUNG_GENERATION_ENV]: 'grow' })).toEqual({ pin: false, why: `${YOUNG_GENERATION_ENV}=grow` });
  });

  it(`refuses a ${YOUNG_GENERATION_ENV} value it does not know, saying what is allowed`, () => {
    const c = youngGenerationChoice([], { [YOUNG_GENERATION_ENV]: 'grwo' });
    expect(c).toMatchObject({ pin: false });
    expect('error' in c && c.error).toContain('is "grwo"');
    expect('error' in c && c.error).toContain('allowed: grow');
    expect(youngGenerationChoice([], { [YOUNG_GENERATION_ENV]: '' })).toEqual({ pin: true });
  });

  it("leaves it to the operator's own young-generation flag, on node's command line or in NODE_OPTIONS, '-' or '_'", () => {
    for (const flag of ['--max-semi-space-size=8', '--max_semi_space_size=8', '--min-semi-space-size=4', '--semi-space-growth-factor=4', '--max-semi-space-size']) {
      expect(youngGenerationChoice([flag], {})).toEqual({ pin: false, why: `node was given ${flag}` });
      expect(youngGenerationChoice([], { NODE_OPTIONS: `--enable-source-maps ${flag}` })).toEqual({ pin: false, why: `node was given ${flag}` });
    }
    // Only whole flag names count.
    expect(youngGenerationChoice(['--max-semi-space-sizes=8', '--no-max-semi-space-size'], {})).toEqual({ pin: true });
  });
});

interface Report {
  who: 'daemon' | 'worker';
  pid: number;
  newSpaceBytes: number;
  execArgv: string[];
  nodeOptions: string | null;
  youngEnv: string | null;
}

const MiB = 1024 * 1024;
const PROBE = path.join(FIXTURES, 'young-gen-probe.mjs');

/**
 * Starts `command...` (ending in the smoothd bin) with one worker running the
 * probe, waits for the worker's report, stops the daemon with SIGTERM and
 * returns both reports.
 */
async function run(command: string[], env: NodeJS.ProcessEnv): Promise<{ daemon: Report; worker: Report }> {
  const dir = tempDir('smoothd-young-gen-');
  const out = path.join(dir, 'reports.jsonl');
  fs.writeFileSync(
    path.join(dir, 'smoothd.yaml'),
    `groups:\n  probe:\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(PROBE)}]\n    count: 1\n    ready: 50ms\n    stopTimeout: 5s\n`,
  );
  const args = ['--config', path.join(dir, 'smoothd.yaml'), '--socket', path.join(dir, 'ctl.sock'), '--log-format', 'json'];
  // The worker inherits the environment (NODE_OPTIONS and YOUNG_GEN_OUT too), less smoothd's private variables.
  const proc = spawn(command[0]!, [...command.slice(1), ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: `--import=${PROBE}`, YOUNG_GEN_OUT: out, ...env } });
  track(proc.pid);
  let stderr = '';
  proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  let buf = '';
  proc.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const pid = /"msg":"worker started"/.test(line) ? (JSON.parse(line) as { pid?: number }).pid : undefined;
      if (pid) track(pid);
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const reports = (): Report[] => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Report) : []);
  await waitFor(`the worker's report (smoothd stderr: ${stderr})`, () => reports().some((r) => r.who === 'worker'), 20_000);
  proc.kill('SIGTERM');
  expect(await exited).toBe(0);
  const daemon = reports().find((r) => r.who === 'daemon');
  const worker = reports().find((r) => r.who === 'worker');
  expect(daemon?.pid).toBe(proc.pid);
  return { daemon: daemon!, worker: worker! };
}

describe('a daemon started through the smoothd bin', () => {
  it(`exits 78 on a ${YOUNG_GENERATION_ENV} value it does not know, before it starts any worker`, async () => {
    const proc = spawn(SMOOTHD, ['--config', '/nonexistent/smoothd.yaml'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, [YOUNG_GENERATION_ENV]: 'big' } });
    track(proc.pid);
    let stderr = '';
    proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
    expect(code).toBe(78);
    expect(stderr).toBe(`smoothd: ${YOUNG_GENERATION_ENV} is "big" in smoothd's environment; allowed: grow (V8's default young generation) or pin (held at its initial size, the default when unset). Fix or unset it (systemd: systemctl edit smoothd), then start smoothd again.\n`);
  });

  it("keeps its own new space at 2 MiB; its worker's grows, and no flag or variable of it reaches the worker", async () => {
    const { daemon, worker } = await run([SMOOTHD], { [YOUNG_GENERATION_ENV]: 'pin' });
    expect(daemon.newSpaceBytes).toBeLessThanOrEqual(2 * MiB);
    expect(worker.newSpaceBytes).toBeGreaterThan(4 * MiB);
    expect(worker.execArgv).toEqual([]);
    expect(worker.nodeOptions).toBe(`--import=${PROBE}`);
    expect(worker.youngEnv).toBeNull();
  }, 60_000);

  it(`grows like V8's default with ${YOUNG_GENERATION_ENV}=grow`, async () => {
    const { daemon } = await run([SMOOTHD], { [YOUNG_GENERATION_ENV]: 'grow' });
    expect(daemon.newSpaceBytes).toBeGreaterThan(4 * MiB);
  }, 60_000);

  it("follows the operator's own node flag: node --max-semi-space-size=4 smoothd", async () => {
    const { daemon } = await run([process.execPath, '--max-semi-space-size=4', SMOOTHD], {});
    expect(daemon.newSpaceBytes).toBeGreaterThan(2 * MiB);
    expect(daemon.newSpaceBytes).toBeLessThanOrEqual(8 * MiB);
  }, 60_000);
});
