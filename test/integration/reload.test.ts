/**
 * The core promise with real processes: smoothd holds the socket, rolls the
 * workers under load, and no request fails.
 */
import fs from 'node:fs';
import path from 'node:path';
import { APP, release } from './releases.js';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, boundPort, cleanup, type Daemon, get, smoothctl, startDaemon, startLoad, tempDir, track, waitFor } from './harness.js';

function webConfig(dir: string, more = ''): string {
  return `
groups:
  web:
    command: [node, ${APP}]
    cwd: ${path.join(dir, 'current')}
    count: 4
    listen: ["127.0.0.1:0"]
    ready: ipc
    readyTimeout: 10s
    stopTimeout: 10s
${more}`;
}

let daemon: Daemon | null = null;

afterEach(async () => {
  await cleanup();
  daemon = null;
});

describe('rolling reload with real workers', () => {
  it('reloads 5 times under continuous load without a failed request, replacing every pid and serving the new code', async () => {
    const dir = tempDir();
    release(dir, 'v0');
    daemon = await startDaemon(webConfig(dir), { dir });
    const port = await boundPort(daemon);
    const load = startLoad(port, { concurrency: 16, keepAlive: false });
    const durations: number[] = [];
    try {
      let before = await daemon.workerPids();
      expect(before).toHaveLength(4);
      for (let i = 1; i <= 5; i++) {
        release(dir, `v${i}`);
        const r = await smoothctl(daemon.socket, ['reload', '--json']);
        expect(r.code, r.stderr).toBe(0);
        const report = JSON.parse(r.stdout);
        expect(report.state).toBe('succeeded');
        durations.push(report.durationMs);
        const after = await daemon.workerPids();
        expect(after).toHaveLength(4);
        for (const pid of after) expect(before).not.toContain(pid);
        for (const pid of before) await waitFor(`old worker ${pid} to exit`, () => !alive(pid));
        after.forEach(track);
        before = after;
        expect((await get(port)).body).toMatch(new RegExp(`^release v${i} `));
      }
    } finally {
      await load.stop();
    }
    expect(Object.fromEntries(load.errors)).toEqual({});
    expect(load.failed).toBe(0);
    expect(load.ok).toBeGreaterThan(200);
    console.log(`5 reloads under load: ${load.ok} requests, ${load.failed} failed, reload ms ${durations.join(', ')}`);
  });

  it('a broken release fails the reload with the worker\'s own error line while the old workers keep serving', async () => {
    const dir = tempDir();
    release(dir, 'good');
    daemon = await startDaemon(webConfig(dir), { dir });
    const port = await boundPort(daemon);
    const before = await daemon.workerPids();
    release(dir, 'broken', { 'crash.txt': 'Error: Cannot find module ./db-config.js' });
    const load = startLoad(port, { concurrency: 8 });
    const r = await smoothctl(daemon.socket, ['reload']);
    await load.stop();
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('Error: Cannot find module ./db-config.js');
    expect(load.failed).toBe(0);
    const after = await daemon.workerPids();
    expect(after.sort()).toEqual(before.sort());
    expect((await get(port)).body).toMatch(/^release good /);
    const status = await daemon.status();
    expect(status.reload.state).toBe('failed');
    expect(status.reload.failure.stderrTail).toContain('Error: Cannot find module ./db-config.js');
    expect(status.daemon.state).toBe('running');
  });

  it('leaves a reloadable: false group alone and reports it skipped', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    daemon = await startDaemon(
      `${webConfig(dir)}
  gateway:
    command: [node, ${APP}]
    cwd: ${path.join(dir, 'current')}
    count: 2
    listen: ["127.0.0.1:0"]
    ready: ipc
    reloadable: false
`,
      { dir },
    );
    const gw = await daemon.workerPids('gateway');
    const web = await daemon.workerPids('web');
    const r = await smoothctl(daemon.socket, ['reload', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.groups).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'gateway', state: 'skipped' }), expect.objectContaining({ name: 'web', state: 'rolled' })]),
    );
    expect((await daemon.workerPids('gateway')).sort()).toEqual(gw.sort());
    for (const pid of await daemon.workerPids('web')) expect(web).not.toContain(pid);
  });

  it('SIGHUP reloads like the RPC does', async () => {
    const dir = tempDir();
    release(dir, 'a');
    daemon = await startDaemon(webConfig(dir), { dir });
    const port = await boundPort(daemon);
    const before = await daemon.workerPids();
    release(dir, 'b');
    process.kill(daemon.pid, 'SIGHUP');
    await waitFor('the SIGHUP reload to succeed', async () => (await daemon!.status()).reload.state === 'succeeded');
    const after = await daemon.workerPids();
    for (const pid of after) expect(before).not.toContain(pid);
    expect((await get(port)).body).toMatch(/^release b /);
  });
});

describe('any language', () => {
  it('runs a Python worker on the inherited fd with LISTEN_PID = its pid, ready by duration, and rolls it', async () => {
    const dir = tempDir();
    const app = path.join(path.dirname(APP), 'py-app.py');
    daemon = await startDaemon(
      `groups:\n  py:\n    command: [python3, ${app}]\n    count: 2\n    listen: ["127.0.0.1:0"]\n    ready: 300ms\n    stopTimeout: 5s\n`,
      { dir },
    );
    const port = await boundPort(daemon);
    const before = await daemon.workerPids();
    expect(before).toHaveLength(2);
    // Ready by duration says nothing about listening: until the first worker calls listen() the
    // socket refuses connections, so wait for Python to get there.
    const first = await waitFor('the Python worker to listen', () => get(port).catch(() => null));
    expect(first.body).toMatch(/^python worker \d+ pid \d+ ready 300ms/);
    const r = await smoothctl(daemon.socket, ['reload', '--json']);
    expect(r.code, r.stderr).toBe(0);
    // Ready by duration: each new worker counts as ready 300 ms after it started.
    expect(JSON.parse(r.stdout).readyMs).toBeGreaterThanOrEqual(600);
    const after = await daemon.workerPids();
    after.forEach(track);
    for (const pid of after) expect(before).not.toContain(pid);
    expect((await get(port)).status).toBe(200);
  });
});

describe('crashes and deaths', () => {
  it('replaces a worker killed with -9 and counts it in status', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    daemon = await startDaemon(webConfig(dir), { dir });
    const s0 = await daemon.status();
    const victim = s0.groups[0].workers[1];
    process.kill(victim.pid, 'SIGKILL');
    const s1 = await waitFor('a replacement worker in slot 1', async () => {
      const s = await daemon!.status();
      const w = s.groups[0].workers.find((x: any) => x.slot === victim.slot && x.state === 'ready');
      return w && w.pid !== victim.pid ? s : null;
    });
    const w = s1.groups[0].workers.find((x: any) => x.slot === victim.slot);
    track(w.pid);
    expect(w.restarts).toBe(1);
    expect(w.lastExit).toMatchObject({ signal: 'SIGKILL' });
    expect(w.generation).toBe(victim.generation);
  });

  it('leaves no worker behind when smoothd itself is killed with -9', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    daemon = await startDaemon(webConfig(dir), { dir });
    const pids = await daemon.workerPids();
    expect(pids).toHaveLength(4);
    process.kill(daemon.pid, 'SIGKILL');
    await daemon.exit;
    await waitFor('every worker to exit after smoothd died', () => pids.every((p) => !alive(p)), 5000);
  });

  it('stops gracefully on SIGTERM: every worker exits, the socket file is removed, exit 0', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    daemon = await startDaemon(webConfig(dir), { dir });
    const pids = await daemon.workerPids();
    daemon.proc.kill('SIGTERM');
    const e = await daemon.exit;
    expect(e.code).toBe(0);
    expect(pids.every((p) => !alive(p))).toBe(true);
    expect(fs.existsSync(daemon.socket)).toBe(false);
  });
});

describe('start', () => {
  it('exits 71 when a worker fails before its first readiness, leaving nothing behind', async () => {
    const dir = tempDir();
    release(dir, 'broken', { 'crash.txt': 'boom at start' });
    daemon = await startDaemon(webConfig(dir), { dir, waitReady: false });
    const e = await daemon.exit;
    expect(e.code).toBe(71);
    const started = daemon.logs.filter((l) => l.msg === 'worker started').map((l) => l.pid as number);
    expect(started.length).toBeGreaterThan(0);
    expect(started.every((p) => !alive(p))).toBe(true);
    expect(daemon.logs.some((l) => l.msg === 'boom at start')).toBe(true);
  });

  it('exits 78 with the key path when the config is invalid', async () => {
    const dir = tempDir();
    daemon = await startDaemon('groups:\n  web:\n    command: [node]\n    count: -1\n', { dir, waitReady: false });
    const e = await daemon.exit;
    expect(e.code).toBe(78);
    expect(daemon.stderr.join('')).toContain('groups.web.count');
  });
});
