/**
 * The workers' log ring (DESIGN §11): `smoothctl logs [GROUP] [-n N] [-f]
 * [--json]` with a real smoothd and real workers — tags, JSON lines, the
 * line and byte bounds per group, following across a reload, and the end
 * on Ctrl-C and when smoothd stops.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { adopt, cleanup, type Daemon, FIXTURES, smoothctl, SMOOTHCTL, startDaemon, tempDir, waitFor } from './harness.js';

afterEach(cleanup);

/** A worker that writes one stderr line, then 30 stdout lines and a JSON line, then sleeps. */
const CHATTY = `'echo "err from $SMOOTHD_WORKER_ID" >&2; sleep 0.2; for i in $(seq 1 30); do echo "out $i gen $SMOOTHD_GENERATION"; done; echo "{\\"level\\":30,\\"msg\\":\\"hello $SMOOTHD_GENERATION\\"}"; exec sleep 1000'`;

function yaml(extra = ''): string {
  return `groups:
  web:
    command: [sh, -c, ${CHATTY}]
    ready: 500ms
${extra}  other:
    command: [sh, -c, 'echo "other says hi"; exec sleep 1000']
    ready: 500ms
`;
}

async function linesOf(d: Daemon, group: string, n: number): Promise<any[]> {
  await waitFor(`${group} to have written ${n} lines`, async () => {
    const r = await smoothctl(d.socket, ['logs', group, '-n', String(n), '--json']);
    return r.stdout.trim().split('\n').filter(Boolean).length >= n;
  });
  const r = await smoothctl(d.socket, ['logs', group, '-n', String(n), '--json']);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
}

describe('smoothctl logs', () => {
  it('prints the last N lines of a group, tagged with worker id, pid, generation and stream; a JSON line stays JSON', async () => {
    const d = await startDaemon(yaml(), { dir: tempDir() });
    const [pid] = await d.workerPids('web');
    await waitFor('the JSON line', async () => (await smoothctl(d.socket, ['logs', 'web', '-n', '1'])).stdout.includes('hello'));
    const text = await smoothctl(d.socket, ['logs', 'web', '-n', '5']);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines.slice(0, 4)).toEqual(['web 1 out | out 27 gen 1', 'web 1 out | out 28 gen 1', 'web 1 out | out 29 gen 1', 'web 1 out | out 30 gen 1']);
    expect(lines[4]).toBe('web 1 out | {"level":30,"msg":"hello 1"}');
    const json = await linesOf(d, 'web', 32);
    expect(json[0]).toMatchObject({ group: 'web', workerId: 1, pid, generation: 1, stream: 'stderr', line: 'err from 1' });
    expect(json.at(-1)!.line).toEqual({ level: 30, msg: 'hello 1' });
    expect(Date.parse(json.at(-1)!.at)).toBeGreaterThan(0);
    // Without GROUP: every group's lines; the default is the last 20.
    expect((await smoothctl(d.socket, ['logs'])).stdout.trimEnd().split('\n')).toHaveLength(20);
    const all = await smoothctl(d.socket, ['logs', '-n', '100']);
    expect(all.stdout.trimEnd().split('\n')).toHaveLength(33);
    expect(all.stdout).toContain('other 2 out | other says hi\n');
    const unknown = await smoothctl(d.socket, ['logs', 'nope']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no group "nope"; groups: web, other/);
  }, 30_000);

  it('keeps at most logs.lines lines and logs.bytes bytes per group', async () => {
    const d = await startDaemon(yaml('    logs: { lines: 10, bytes: 1MiB }\n'), { dir: tempDir() });
    await waitFor('the JSON line', async () => (await smoothctl(d.socket, ['logs', 'web', '-n', '1'])).stdout.includes('hello'));
    const kept = (await smoothctl(d.socket, ['logs', 'web', '-n', '1000', '--json'])).stdout.trim().split('\n');
    expect(kept).toHaveLength(10);
    expect(JSON.parse(kept[0]!).line).toBe('out 22 gen 1');
    const d2 = await startDaemon(yaml('    logs: { bytes: 1KiB }\n').replace('seq 1 30', 'seq 1 100').replace('out $i gen', 'out $i padding-padding-padding-padding-padding-padding-padding-padding gen'), { dir: tempDir() });
    await waitFor('the JSON line', async () => (await smoothctl(d2.socket, ['logs', 'web', '-n', '1'])).stdout.includes('hello'));
    const small = (await smoothctl(d2.socket, ['logs', 'web', '-n', '1000', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
    const bytes = small.reduce((n, r) => n + Buffer.byteLength(typeof r.line === 'string' ? r.line : JSON.stringify(r.line)), 0);
    expect(bytes).toBeLessThanOrEqual(1024);
    expect(small.length).toBeGreaterThan(5);
    expect(small.length).toBeLessThan(20);
  }, 30_000);

  it('-f prints the tail, then new lines (a reload\'s new worker), and exits 0 on Ctrl-C and when smoothd stops', async () => {
    const d = await startDaemon(yaml(), { dir: tempDir() });
    await waitFor('the JSON line', async () => (await smoothctl(d.socket, ['logs', 'web', '-n', '1'])).stdout.includes('hello'));
    const follow = (args: string[]): { child: ChildProcess; out: string[]; err: string[]; exit: Promise<number | null> } => {
      const child = spawn(process.execPath, [SMOOTHCTL, '--socket', d.socket, 'logs', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      adopt(child);
      const f = { child, out: [] as string[], err: [] as string[], exit: new Promise<number | null>((r) => child.once('exit', (c) => r(c))) };
      child.stdout!.on('data', (b: Buffer) => f.out.push(b.toString()));
      child.stderr!.on('data', (b: Buffer) => f.err.push(b.toString()));
      return f;
    };
    const a = follow(['web', '-n', '2', '-f']);
    const b = follow(['web', '-n', '1', '-f', '--json']);
    await waitFor('the tail', () => a.out.join('').includes('hello 1'));
    expect(a.out.join('')).toBe('web 1 out | out 30 gen 1\nweb 1 out | {"level":30,"msg":"hello 1"}\n');
    // smoothd sends the tail and registers the follower in the same turn: once the tail is here, nothing new is missed.
    await waitFor('the tail of b', () => b.out.join('').includes('hello 1'));
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    await waitFor('the new worker\'s lines', () => a.out.join('').includes('hello 2'));
    expect(a.out.join('')).toContain('web 3 out | out 1 gen 2\n');
    a.child.kill('SIGINT');
    expect(await a.exit).toBe(0);
    expect(a.err.join('')).toBe(''); // Ctrl-C is a clean end: no error, no stack trace
    await waitFor('b to see the new worker', () => b.out.join('').includes('hello 2'));
    const bl = b.out.join('').trim().split('\n').map((l) => JSON.parse(l));
    expect(bl[0].line).toEqual({ level: 30, msg: 'hello 1' });
    expect(bl.slice(1).every((r) => r.generation === 2)).toBe(true);
    d.proc.kill('SIGTERM');
    expect(await b.exit).toBe(0);
    expect(b.err.join('')).toMatch(/smoothd closed the connection/);
  }, 30_000);

  it('drops a follower that never reads (bounded memory); smoothd keeps answering', async () => {
    const d = await startDaemon(
      `groups:\n  chatty:\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(path.join(FIXTURES, 'chatty-worker.mjs'))}]\n    ready: 200ms\n    env: { CHATTY_BURST: "0", CHATTY_RATE: "40000" }\n`,
      { dir: tempDir(), args: ['--log-level', 'warn'], waitReady: false },
    );
    await waitFor('the chatty worker to be ready', async () => (await d.status().catch(() => null))?.groups[0].workers[0]?.state === 'ready');
    const c = net.connect(d.socket);
    try {
      c.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'logs', params: { follow: true, lines: 0 } })}\n`);
      c.pause(); // never read: the kernel buffers fill, then smoothd's write queue (16 MiB), then smoothd drops it
      // (A paused socket does not see the reset until it reads: smoothd's warning is the event to wait for.)
      const t0 = Date.now();
      await waitFor('smoothd to drop the stalled follower', () => d.logs.some((l) => l.msg === 'control client does not read its replies; closing the connection'), 40_000);
      console.log(`the stalled follower was dropped after ${Date.now() - t0} ms`);
      const t1 = Date.now();
      expect((await smoothctl(d.socket, ['status', '--json'])).code).toBe(0);
      console.log(`status answered in ${Date.now() - t1} ms right after the stalled follower was dropped`);
    } finally {
      c.destroy();
    }
  }, 60_000);
});
