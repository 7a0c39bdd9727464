/**
 * Process groups that outlive their leader (DESIGN §13), with real processes: a
 * `#!/bin/sh` wrapper worker whose helper child keeps serving HTTP on the
 * inherited fd 3 after the shell exits. No member of an old group may survive
 * its worker's stop or crash past stopTimeout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, boundPort, cleanup, type Daemon, FIXTURES, get, smoothctl, startDaemon, tempDir, track, waitFor } from './harness.js';
import { release } from './releases.js';

const WRAPPER = path.join(FIXTURES, 'wrapper.sh');

afterEach(cleanup);

/** Members of process group `pgid` that have not exited (read from /proc here, independently of smoothd; zombies are gone). */
function members(pgid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) === pgid && f[0] !== 'Z') out.push(Number(name));
  }
  return out;
}

function yaml(dir: string, count: number): string {
  return `groups:
  web:
    command: [${WRAPPER}]
    cwd: ${path.join(dir, 'current')}
    count: ${count}
    listen: ["127.0.0.1:0"]
    ready: 300ms
    stopTimeout: 1s
`;
}

async function wrapperDaemon(count: number, extra: Record<string, string>): Promise<{ d: Daemon; dir: string; port: number; leaders: number[] }> {
  const dir = tempDir();
  release(dir, 'v1', extra);
  const d = await startDaemon(yaml(dir, count), { dir });
  const port = await boundPort(d);
  const leaders = await d.workerPids();
  // Every wrapper has its child listening (its SIGTERM handler installed) before the test goes on.
  for (const pgid of leaders) {
    const child = await waitFor(`the child of wrapper ${pgid}`, () => members(pgid).find((p) => p !== pgid));
    track(child);
    await waitFor(`child ${child} to listen`, () => childLines(d, `child ${child} listening`).length === 1);
  }
  return { d, dir, port, leaders };
}

const childLines = (d: Daemon, what: string): unknown[] => d.logs.filter((l) => typeof l.msg === 'string' && l.msg.includes(what));
const killedLogs = (d: Daemon, workerId: number): unknown[] =>
  d.logs.filter((l) => l.msg === 'worker did not stop in time; killing it' && l.workerId === workerId);

describe('a wrapper script whose child outlives the shell', () => {
  it('reload: the old child is SIGKILLed at stopTimeout, the report waits for it, then only the new code serves', async () => {
    const { d, dir, port, leaders } = await wrapperDaemon(2, { 'ignore-term': '' });
    const before = (await d.status()).groups[0].workers.map((w: any) => w.id as number);
    release(dir, 'v2');
    const reload = smoothctl(d.socket, ['reload', '--json']);
    // While it drains, status shows each old worker as stopping although its shell is gone.
    const lingering = await waitFor('an old worker shown stopping with its leader gone', async () => {
      const s = await d.status();
      return s.groups[0].workers.find(
        (w: any) => before.includes(w.id) && w.state === 'stopping' && /process group/.test(w.statusText ?? '') && !alive(w.pid) && members(w.pid).length > 0,
      );
    });
    expect(lingering.pid).toBeGreaterThan(0);
    const r = await reload;
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.state).toBe('succeeded');
    expect(report.durationMs).toBeGreaterThanOrEqual(1000);
    expect(report.readyMs).toBeLessThan(report.durationMs);
    // No process of an old group remains once the reload has succeeded.
    for (const pgid of leaders) expect(members(pgid)).toEqual([]);
    // The stop signal reached the children through the group; they ignored it and were killed.
    expect(childLines(d, 'got SIGTERM').length).toBeGreaterThanOrEqual(2);
    // The kill is logged once per old worker. The log line comes over smoothd's stdout, the
    // report over the control socket: the line may arrive after the report, so wait for it.
    await waitFor('the kills of the old workers to be logged', () => before.every((id: number) => killedLogs(d, id).length > 0));
    for (const id of before) expect(killedLogs(d, id)).toHaveLength(1);
    const s = await d.status();
    expect(s.groups[0].workers.map((w: any) => w.state)).toEqual(['ready', 'ready']);
    for (const w of s.groups[0].workers) for (const pid of members(w.pid)) track(pid);
    for (let i = 0; i < 20; i++) expect((await get(port)).body).toMatch(/^release v2 /);
  });

  it('crash: kill -9 of the shell restarts the slot at once; the child shows as stopping and is gone after stopTimeout', async () => {
    const { d, port, leaders } = await wrapperDaemon(1, { 'ignore-term': '' });
    const leader = leaders[0]!;
    const child = members(leader).find((p) => p !== leader)!;
    const [old] = (await d.status()).groups[0].workers;
    const t0 = Date.now();
    process.kill(leader, 'SIGKILL');
    const s = await waitFor('a new worker in slot 0 next to the stopping leftover', async () => {
      const st = await d.status();
      const ws = st.groups[0].workers;
      return ws.some((w: any) => w.id === old.id && w.state === 'stopping') && ws.some((w: any) => w.id !== old.id && w.pid) ? st : null;
    });
    const fresh = s.groups[0].workers.find((w: any) => w.id !== old.id);
    track(fresh.pid);
    expect(fresh.restarts).toBe(1);
    expect(fresh.lastExit).toMatchObject({ signal: 'SIGKILL' });
    expect(alive(child)).toBe(true);
    await waitFor('the leftover group to be gone', () => members(leader).length === 0, 5000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    // smoothd kills, then its log line is written and read over a pipe: seeing the group gone
    // does not mean the line has arrived yet, so wait for it (and then there is exactly one).
    await waitFor('the kill of the leftover to be logged', () => killedLogs(d, old.id).length > 0);
    expect(killedLogs(d, old.id)).toHaveLength(1);
    const after = await waitFor('the leftover to leave the status', async () => {
      const st = await d.status();
      return st.groups[0].workers.length === 1 && st.groups[0].workers[0].state === 'ready' ? st : null;
    });
    const pgid = after.groups[0].workers[0].pid as number;
    for (const pid of members(pgid)) track(pid);
    const bodies = new Set<string>();
    for (let i = 0; i < 10; i++) bodies.add((await get(port)).body);
    // Every answer comes from the new wrapper's child.
    expect([...bodies].map((b) => Number(b.split(' pid ')[1]))).toEqual([members(pgid).find((p) => p !== pgid)]);
  });

  it('stop: SIGTERM reaches the children through the process group; they drain and smoothd exits 0 with no group left', async () => {
    const { d, leaders } = await wrapperDaemon(2, {});
    d.proc.kill('SIGTERM');
    const e = await d.exit;
    expect(e.code).toBe(0);
    for (const pgid of leaders) expect(members(pgid)).toEqual([]);
    expect(childLines(d, 'got SIGTERM').length).toBe(2);
    expect(d.logs.filter((l) => l.msg === 'worker did not stop in time; killing it')).toEqual([]);
  });
});
