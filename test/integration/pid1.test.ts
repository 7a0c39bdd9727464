/**
 * smoothd as PID 1 (DESIGN §12), with real processes and a real pid namespace:
 * `unshare --pid --fork --mount-proc` makes smoothd PID 1 of a new namespace,
 * as a container does. A worker (fixtures/orphans.sh) leaves 100 orphans
 * behind; they reparent to smoothd and must not pile up as zombies. Also
 * `smoothd --init` outside a namespace, and `smoothctl status --ready`.
 *
 * The namespace daemons are not started through the harness: their workers'
 * pids in smoothd's logs are namespace pids, which must never be killed on the
 * host. Killing `unshare` (started with --kill-child) takes the whole
 * namespace down instead.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, FIXTURES, SMOOTHD, smoothctl, startDaemon, tempDir, track, waitFor } from './harness.js';

const ORPHANS = path.join(FIXTURES, 'orphans.sh');
const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;

/** Child pids of `pid` (every thread's children file), as the host sees them. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      for (const p of fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ')) if (p.trim() !== '') out.push(Number(p));
    } catch {
      // thread gone
    }
  }
  return out;
}

function stateOf(pid: number): string | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/** The pid a host process has inside the innermost pid namespace (last NSpid field). */
function nsPid(hostPid: number): number | null {
  try {
    const line = fs.readFileSync(`/proc/${hostPid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'));
    return line ? Number(line.trim().split(/\s+/).at(-1)) : null;
  } catch {
    return null;
  }
}

/** Children of smoothd that are not its workers: orphans (running, or zombies not reaped). */
function strayChildren(smoothdHostPid: number, workerHostPids: number[]): { pid: number; state: string | null }[] {
  return childrenOf(smoothdHostPid)
    .filter((p) => !workerHostPids.includes(p))
    .map((pid) => ({ pid, state: stateOf(pid) }));
}

const reapedCount = (logs: Record<string, unknown>[]): number => logs.filter((l) => l.msg === 'reaped an orphaned process').length;

interface Pid1Daemon {
  proc: ChildProcess;
  /** smoothd's pid on the host (unshare's child). */
  hostPid: number;
  socket: string;
  configPath: string;
  logs: Record<string, unknown>[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Host pids of the live workers, from smoothd's status (namespace pids) mapped through NSpid. */
  workerHostPids(): Promise<number[]>;
}

const pid1s: Pid1Daemon[] = [];

afterEach(async () => {
  for (const d of pid1s.splice(0)) {
    if (d.proc.exitCode !== null || d.proc.signalCode !== null) continue;
    d.proc.kill('SIGKILL'); // --kill-child: smoothd (PID 1) dies, and with it the whole namespace
    await d.exit;
  }
  await cleanup();
});

async function startPid1(yaml: string): Promise<Pid1Daemon> {
  const dir = tempDir('smoothd-pid1-');
  const configPath = path.join(dir, 'smoothd.yaml');
  fs.writeFileSync(configPath, yaml);
  const socket = path.join(dir, 'ctl.sock');
  const proc = spawn(
    'unshare',
    ['--pid', '--fork', '--mount-proc', '--kill-child', process.execPath, SMOOTHD, '--config', configPath, '--socket', socket, '--log-format', 'json', '--log-level', 'debug'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: Record<string, unknown>[] = [];
  let buf = '';
  proc.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  let stderr = '';
  proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const d: Pid1Daemon = {
    proc,
    hostPid: 0,
    socket,
    configPath,
    logs,
    exit,
    async workerHostPids() {
      const r = await smoothctl(socket, ['status', '--json']);
      const doc = JSON.parse(r.stdout) as { groups: { workers: { pid: number | null }[] }[] };
      const inside = doc.groups.flatMap((g) => g.workers.map((w) => w.pid).filter((p): p is number => p !== null));
      return childrenOf(d.hostPid).filter((p) => inside.includes(nsPid(p) ?? -1));
    },
  };
  pid1s.push(d);
  await Promise.race([
    waitFor('smoothd (PID 1) to report every worker ready', () => logs.some((l) => l.msg === 'every worker is ready'), 15_000),
    exit.then((e) => {
      throw new Error(`smoothd exited during start (${JSON.stringify(e)}): ${stderr}`);
    }),
  ]);
  d.hostPid = (await waitFor('smoothd as the child of unshare', () => childrenOf(proc.pid!)[0])) as number;
  return d;
}

const orphanConfig = (orphans: number): string => `
groups:
  app:
    command: [sh, ${ORPHANS}]
    env: { ORPHANS: "${orphans}" }
    count: 1
    ready: 200ms
    stopTimeout: 5s
`;

describe.skipIf(!canUnshare)('smoothd as PID 1 of a pid namespace', () => {
  it('is PID 1 and reaps 100 orphans: 0 zombies remain, also after a reload (another 100)', async () => {
    const d = await startPid1(orphanConfig(100));
    const status = JSON.parse((await smoothctl(d.socket, ['status', '--json'])).stdout);
    expect(status.daemon.pid).toBe(1);
    expect(d.logs.some((l) => l.msg === 'smoothd is PID 1: it reaps orphaned zombies')).toBe(true);

    // Every orphan has exited and been reaped: smoothd's only children are its workers.
    const settled = async (reaped: number): Promise<boolean> => {
      const workers = await d.workerHostPids();
      return reapedCount(d.logs) >= reaped && workers.length === 1 && strayChildren(d.hostPid, workers).length === 0;
    };
    await waitFor('100 orphans reaped and no zombie left under smoothd', () => settled(100), 15_000, 100);

    const reload = await smoothctl(d.socket, ['reload']);
    expect(reload.code, reload.stderr).toBe(0);
    await waitFor('200 orphans reaped and no zombie left after the reload', () => settled(200), 15_000, 100);
    expect(reapedCount(d.logs)).toBe(200);
  });

  it('restarts a worker killed with kill -9: its exit reaches smoothd (the reaper never takes a worker)', async () => {
    const d = await startPid1(orphanConfig(0));
    const [worker] = await d.workerHostPids();
    expect(worker).toBeDefined();
    process.kill(worker!, 'SIGKILL');
    const replacement = await waitFor(
      'a new worker after the kill',
      async () => {
        const doc = JSON.parse((await smoothctl(d.socket, ['status', '--json'])).stdout);
        const w = doc.groups[0].workers[0];
        return w && w.state === 'ready' && w.restarts === 1 ? w : null;
      },
      15_000,
      100,
    );
    expect(replacement.lastExit).toMatchObject({ signal: 'SIGKILL' });
    expect(stateOf(worker!)).toBeNull(); // reaped by libuv, not left as a zombie
    expect(reapedCount(d.logs)).toBe(0);
  });

  it('drains on SIGTERM to PID 1 and exits 0', async () => {
    const d = await startPid1(orphanConfig(0));
    const [worker] = await d.workerHostPids();
    process.kill(d.hostPid, 'SIGTERM');
    const e = await d.exit;
    expect(e).toEqual({ code: 0, signal: null });
    expect(d.logs.some((l) => l.msg === 'stopping gracefully')).toBe(true);
    expect(d.logs.some((l) => l.msg === 'smoothd stopped' && l.exitCode === 0)).toBe(true);
    expect(stateOf(worker!)).toBeNull();
  });
});

describe('smoothd --init outside a pid namespace', () => {
  it('becomes a child subreaper: orphans of a worker come to smoothd and are reaped', async () => {
    const d = await startDaemon(orphanConfig(100), { args: ['--init'] });
    expect(d.logs.some((l) => l.msg === 'init mode (--init): smoothd is a child subreaper and reaps orphaned zombies')).toBe(true);
    const [worker] = await d.workerPids();
    track(worker);
    await waitFor(
      '100 orphans reaped and no zombie left under smoothd',
      () => reapedCount(d.logs) >= 100 && strayChildren(d.pid, [worker!]).length === 0,
      15_000,
      100,
    );
    expect(reapedCount(d.logs)).toBe(100);
  });

  it('without --init (and not PID 1) smoothd reaps nothing: the orphans go to the host init', async () => {
    const d = await startDaemon(orphanConfig(20));
    const [worker] = await d.workerPids();
    // The worker logs once all 20 are started; they never become smoothd's children.
    await waitFor('the worker to leave its orphans', () => d.logs.some((l) => l.msg === 'left 20 orphans'), 10_000);
    expect(strayChildren(d.pid, [worker!])).toEqual([]);
    expect(d.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('reaps orphaned zombies'))).toBe(false);
  });
});

describe('smoothctl status --ready', () => {
  const good = `
groups:
  app:
    command: [sleep, "1000"]
    count: 2
    ready: 100ms
    stopTimeout: 2s
`;

  it('exits 0 when every group has count ready workers; after a rolled-back reload 0, after one that kept new workers 1 until a reload succeeds', async () => {
    const d = await startDaemon(good);
    const ok = await smoothctl(d.socket, ['status', '--ready']);
    expect(ok).toMatchObject({ code: 0, stdout: 'ready: 1 group, 2 workers ready\n', stderr: '' });

    // Rolled back (the default): every slot serves the previous release again.
    d.writeConfig(good.replace('command: [sleep, "1000"]', 'command: [sh, -c, "exit 3"]'));
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(1);
    expect((await smoothctl(d.socket, ['status', '--ready'])).code).toBe(0);

    // onFailure: keep leaves what the failed reload started: not ready.
    d.writeConfig(good.replace('command: [sleep, "1000"]', 'command: [sh, -c, "exit 3"]').replace('stopTimeout: 2s', 'stopTimeout: 2s\n    onFailure: keep'));
    const failed = await smoothctl(d.socket, ['reload']);
    expect(failed.code).toBe(1);
    const after = await smoothctl(d.socket, ['status', '--ready']);
    expect(after.code).toBe(1);
    expect(after.stdout).toBe('');
    expect(after.stderr).toMatch(/^smoothctl: not ready: reload 2 failed: .*\(ready again once a reload succeeds\)\n$/);

    d.writeConfig(good);
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    expect((await smoothctl(d.socket, ['status', '--ready'])).code).toBe(0);
  });

  it('exits 1 while a worker waits in crash backoff, naming the group', async () => {
    const d = await startDaemon(`
groups:
  app:
    command: [sleep, "1000"]
    count: 1
    ready: 100ms
  flaky:
    command: [sh, -c, "sleep 0.3; exit 3"]
    count: 1
    ready: 100ms
    restartDelay: 30s
    maxRestartDelay: 30s
`);
    await waitFor('the flaky worker in backoff', async () => (await d.status()).groups[1].workers.some((w: { state: string }) => w.state === 'backoff'), 10_000, 50);
    const r = await smoothctl(d.socket, ['status', '--ready']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('smoothctl: not ready: group flaky has 0 of 1 workers ready (1 backoff)\n');
  });

  it('exits 69 when smoothd is not reachable', async () => {
    const r = await smoothctl(path.join(tempDir(), 'none.sock'), ['status', '--ready']);
    expect(r.code).toBe(69);
  });
});
