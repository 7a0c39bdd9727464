/**
 * The fault matrix: deploys that go wrong, workers that misbehave, daemons
 * that die — with real processes and, where it matters, continuous load that
 * must see zero failed requests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, boundPort, busyPort, cleanup, type Daemon, FIXTURES, freePort, get, smoothctl, startDaemon, startLoad, tempDir, track, waitFor } from './harness.js';
import { config, group, release, type GroupOptions } from './releases.js';


async function start(yaml: string, dir: string, opts: Parameters<typeof startDaemon>[1] = {}): Promise<Daemon> {
  const d = await startDaemon(yaml, { dir, ...opts });
  return d;
}

afterEach(cleanup);

/** A temp folder with release `name` current, and smoothd running one web group on a port the kernel chose (`port`). */
async function webDaemon(o: GroupOptions = {}, name = 'v1'): Promise<{ dir: string; port: number; yaml: string; d: Daemon }> {
  const dir = tempDir();
  release(dir, name);
  const yaml = config(group(dir, { listen: ['127.0.0.1:0'], ...o }));
  const d = await start(yaml, dir);
  return { dir, port: await boundPort(d), yaml, d };
}

async function settled(d: Daemon): Promise<any> {
  return waitFor('the reload to end', async () => {
    const s = await d.status();
    return s.reload.state !== 'running' && s.reload.queued === null && s.daemon.state === 'running' ? s : null;
  }, 20_000);
}

function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function rssBytes(pid: number): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(m?.[1] ?? 0) * 1024;
}

describe('new workers that fail during a reload', () => {
  it('never ready: the reload fails at readyTimeout and the old workers serve without a failed request', async () => {
    const { dir, port, d } = await webDaemon({ readyTimeout: '1500ms' }, 'good');
    const before = await d.workerPids();
    release(dir, 'stuck', { 'never-ready': '' });
    const load = startLoad(port, { concurrency: 8 });
    const r = await smoothctl(d.socket, ['reload', '--json']);
    await load.stop();
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.state).toBe('failed');
    expect(report.failure.reason).toContain('not ready within 1.5s');
    expect(load.failed).toBe(0);
    expect((await d.workerPids()).sort()).toEqual(before.sort());
    expect((await get(port)).body).toMatch(/^release good /);
  });

  it('never ready: the readyTimeout failure carries what the worker wrote to stderr', async () => {
    const { dir, d } = await webDaemon({ count: 1, readyTimeout: '3s' }, 'good');
    release(dir, 'stuck', { 'never-ready': 'waiting for the database at db:5432' });
    const r = await smoothctl(d.socket, ['reload', '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.failure.reason).toContain('not ready within 3s (readyTimeout)');
    expect(report.failure.stderrTail).toEqual(['waiting for the database at db:5432']);
  });

  it('crash after ready while the roll goes on: the reload fails and every slot is rolled back to the old release', async () => {
    const { dir, port, d } = await webDaemon({}, 'good');
    const before = await d.workerPids();
    // Each new worker needs 600 ms to get ready and the first one dies 100 ms after it is.
    release(dir, 'flaky', { 'slow-ready.txt': '600', 'crash-after-ready.txt': '100' });
    const r = await smoothctl(d.socket, ['reload', '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.failure.reason).toContain('while the reload was still rolling');
    expect(report.failure.stderrTail).toContain('crashing after ready');
    expect(report.rollback.state).toBe('succeeded');
    // The reply comes once the rollback is over: all 4 slots on generation 1 again. The crashed
    // worker had replaced slot 0's old worker, so slot 0 got a new generation-1 worker; the 3
    // old workers no new worker had replaced were never touched.
    const s = await d.status();
    const workers = s.groups[0].workers;
    expect(workers.map((w: any) => [w.slot, w.generation, w.state])).toEqual([0, 1, 2, 3].map((slot) => [slot, 1, 'ready']));
    expect(workers.filter((w: any) => before.includes(w.pid))).toHaveLength(3);
    expect((await get(port)).body).toMatch(/^release good /);
  });

  it('onFailure: keep leaves the old workers no new worker replaced, and the failed slot on the new generation', async () => {
    const { dir, d } = await webDaemon({ extra: '    onFailure: keep\n' }, 'good');
    const before = await d.workerPids();
    release(dir, 'flaky', { 'slow-ready.txt': '600', 'crash-after-ready.txt': '100' });
    const r = await smoothctl(d.socket, ['reload', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).rollback).toBeNull();
    const s = await d.status();
    const old = s.groups[0].workers.filter((w: any) => w.generation === 1);
    expect(old.map((w: any) => w.slot)).toEqual([1, 2, 3]);
    for (const w of old) expect(before).toContain(w.pid);
    // Slot 0 lost its old worker to the crashed one: it restarts from the generation it now runs.
    expect(s.groups[0].workers.find((w: any) => w.slot === 0).generation).toBe(2);
  });

  it('old workers that ignore the stop signal are killed after stopTimeout and the reload still ends', async () => {
    const dir = tempDir();
    release(dir, 'stubborn', { 'ignore-term': '' });
    const d = await start(config(group(dir, { count: 2, listen: ['127.0.0.1:0'], stopTimeout: '1s' })), dir);
    const before = await d.workerPids();
    release(dir, 'v2');
    const t0 = Date.now();
    const r = await smoothctl(d.socket, ['reload', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.state).toBe('succeeded');
    // Every new worker was ready long before the old ones were killed; the report waits for their exit.
    expect(report.readyMs).toBeLessThan(report.durationMs);
    expect(report.durationMs).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - t0).toBeLessThan(8000);
    for (const pid of before) expect(alive(pid)).toBe(false);
    const s = await d.status();
    expect(s.groups[0].workers.map((w: any) => w.lastExit?.reason)).toContain('killed after stopTimeout');
  });
});

describe('the daemon itself', () => {
  it('after kill -9 no worker survives and a new smoothd starts on the same socket and port', async () => {
    const { dir, port, yaml, d: d1 } = await webDaemon({ count: 2 });
    const pids = await d1.workerPids();
    process.kill(d1.pid, 'SIGKILL');
    await d1.exit;
    await waitFor('the orphaned workers to exit', () => pids.every((p) => !alive(p)), 5000);
    // The same port on purpose: the one the first smoothd was given by the kernel.
    const d2 = await start(yaml.replace('127.0.0.1:0', `127.0.0.1:${port}`), dir);
    expect(d2.socket).toBe(d1.socket);
    expect((await get(port)).body).toMatch(/^release v1 /);
    expect((await d2.status()).daemon.pid).toBe(d2.pid);
  });

  it('a second smoothd on the same socket refuses to start and leaves the first alone', async () => {
    const { dir, port, yaml, d: d1 } = await webDaemon({ count: 2 });
    const pids = await d1.workerPids();
    const d2 = await start(yaml, dir, { waitReady: false });
    const e = await d2.exit;
    expect(e.code).toBe(71);
    expect(d2.stderr.join('')).toContain('another smoothd is already running');
    expect((await d1.workerPids()).sort()).toEqual(pids.sort());
    expect((await get(port)).status).toBe(200);
    expect((await d1.status()).daemon.state).toBe('running');
  });

  it('20 SIGHUPs in half a second make exactly two rolls, and the newest code is served', async () => {
    const { dir, port, d } = await webDaemon({ count: 2 }, 'v0');
    const load = startLoad(port, { concurrency: 8 });
    // Releases v1..v19 take 3 s to get ready. The first roll picks whichever of them `current`
    // points at when it reads the config, so it is still running when the other SIGHUPs arrive,
    // however slow this machine is: they must all join one follow-up, which rolls to v20.
    for (let i = 1; i <= 20; i++) {
      release(dir, `v${i}`, i < 20 ? { 'slow-ready.txt': '3000' } : {});
      process.kill(d.pid, 'SIGHUP');
      await new Promise((r) => setTimeout(r, 25));
    }
    const s = await settled(d);
    await load.stop();
    expect(s.reload.state).toBe('succeeded');
    expect(s.reload.id).toBe(2);
    expect((await get(port)).body).toMatch(/^release v20 /);
    expect(load.failed).toBe(0);
  });

  it('stop during a reload aborts it, stops every worker and exits 0', async () => {
    const { dir, d } = await webDaemon();
    const old = await d.workerPids();
    release(dir, 'slow', { 'slow-ready.txt': '400' });
    const waiting = smoothctl(d.socket, ['reload', '--json']);
    await waitFor('a new worker to start', () => d.logs.some((l) => l.msg === 'worker started' && !old.includes(l.pid as number)));
    const started = d.logs.filter((l) => l.msg === 'worker started').map((l) => l.pid as number);
    process.kill(d.pid, 'SIGTERM');
    const r = await waiting;
    const e = await d.exit;
    expect(e.code).toBe(0);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).state).toBe('aborted');
    for (const pid of started) expect(alive(pid)).toBe(false);
    expect(fs.existsSync(d.socket)).toBe(false);
  });
});

describe('spawn errors', () => {
  it('a crashed worker whose generation\'s cwd was deleted: the error names the cwd and ENOENT', async () => {
    const { dir, d } = await webDaemon({ count: 1 });
    const [pid] = await d.workerPids();
    const folder = fs.realpathSync(path.join(dir, 'current'));
    fs.rmSync(folder, { recursive: true });
    process.kill(pid!, 'SIGKILL');
    const expected = `could not be started: cwd ${folder} does not exist (ENOENT)`;
    const s = await waitFor('the restart to fail', async () => {
      const st = await d.status();
      return st.groups[0].workers.find((w: any) => w.lastExit?.reason === expected) ? st : null;
    });
    expect(s.daemon.state).toBe('running');
    expect(d.logs.find((l) => l.msg === 'worker could not be started')).toMatchObject({ group: 'web', generation: 1, error: expected });
  });
});

describe('reload applies the config file', () => {
  it('an invalid config is refused with the key path and nothing changes', async () => {
    const { dir, d } = await webDaemon({ count: 2 });
    const before = await d.workerPids();
    d.writeConfig(config(group(dir, { count: 2, listen: ['127.0.0.1:0'], extra: '    rolling: { surge: 0, unavailable: 0 }\n' })));
    const r = await smoothctl(d.socket, ['reload']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('groups.web.rolling');
    expect((await d.workerPids()).sort()).toEqual(before.sort());
    const s = await d.status();
    expect(s.reload.state).toBe('failed');
    expect(s.groups[0].generation).toBe(1);
  });

  it('count up and down: extra workers start, surplus workers are drained', async () => {
    const { dir, port, d } = await webDaemon({ count: 2 });
    d.writeConfig(config(group(dir, { count: 4, listen: ['127.0.0.1:0'] })));
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    let s = await d.status();
    expect(s.groups[0].desired).toBe(4);
    expect(s.groups[0].workers.filter((w: any) => w.state === 'ready')).toHaveLength(4);
    (await d.workerPids()).forEach(track);
    const load = startLoad(port, { concurrency: 8 });
    d.writeConfig(config(group(dir, { count: 1, listen: ['127.0.0.1:0'] })));
    const r = await smoothctl(d.socket, ['reload']);
    await load.stop();
    expect(r.code, r.stderr).toBe(0);
    s = await d.status();
    expect(s.groups[0].workers).toHaveLength(1);
    expect(s.groups[0].workers[0].slot).toBe(0);
    expect(load.failed).toBe(0);
  });

  it('listen changes: a new address is bound before the roll, a removed one is closed after its last worker left', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    // Two kernel-chosen ports; a `:0` entry keeps its socket across reloads by its name, so the entries are named.
    const a = { address: '127.0.0.1:0', name: 'a' };
    const b = { address: '127.0.0.1:0', name: 'b' };
    const d = await start(config(group(dir, { count: 2, listen: [a] })), dir);
    const p1 = await boundPort(d);
    d.writeConfig(config(group(dir, { count: 2, listen: [a, b] })));
    const load = startLoad(p1, { concurrency: 8 });
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    const p2 = await boundPort(d, 'web', 1);
    expect(p2).not.toBe(p1);
    expect((await get(p2)).status).toBe(200);
    await load.stop();
    expect(load.failed).toBe(0);
    // Clients move to the new address; the old one goes away once its last worker has drained.
    const load2 = startLoad(p2, { concurrency: 8 });
    d.writeConfig(config(group(dir, { count: 2, listen: [b] })));
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    await load2.stop();
    expect(Object.fromEntries(load2.errors)).toEqual({});
    expect(load2.failed).toBe(0);
    await waitFor(`port ${p1} to be closed`, () => get(p1).then(() => false, (e) => e.code === 'ECONNREFUSED'));
    expect((await get(p2)).status).toBe(200);
    const s = await d.status();
    expect(s.groups[0].listen.map((l: any) => l.bound)).toEqual([`127.0.0.1:${p2}`]);
  });

  it('a group added is started, a group removed is drained and stopped', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const d = await start(config(group(dir, { count: 2, listen: ['127.0.0.1:0'] })), dir);
    const p1 = await boundPort(d);
    const webPids = await d.workerPids('web');
    d.writeConfig(config(group(dir, { count: 2, listen: ['127.0.0.1:0'] }), group(dir, { name: 'api', count: 1, listen: ['127.0.0.1:0'] })));
    let r = await smoothctl(d.socket, ['reload', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).groups.map((g: any) => [g.name, g.state])).toEqual([
      ['web', 'rolled'],
      ['api', 'rolled'],
    ]);
    expect((await get(await boundPort(d, 'api'))).status).toBe(200);
    const apiPids = await d.workerPids('api');
    apiPids.forEach(track);
    d.writeConfig(config(group(dir, { name: 'api', count: 1, listen: ['127.0.0.1:0'] })));
    r = await smoothctl(d.socket, ['reload']);
    expect(r.code, r.stderr).toBe(0);
    await waitFor('the web group to be gone', async () => (await d.status()).groups.length === 1);
    for (const pid of webPids) await waitFor(`web worker ${pid} to exit`, () => !alive(pid));
    const s = await d.status();
    expect(s.groups.map((g: any) => g.name)).toEqual(['api']);
    await waitFor(`port ${p1} to be closed`, () => get(p1).then(() => false, (e) => e.code === 'ECONNREFUSED'));
  });

  it('changes to a reloadable: false group wait as pending until smoothctl restart rolls them', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const gw = (count: number): string => group(dir, { name: 'gateway', count, listen: ['127.0.0.1:0'], extra: '    reloadable: false\n' });
    const d = await start(config(group(dir, { count: 1, listen: ['127.0.0.1:0'] }), gw(1)), dir);
    const p2 = await boundPort(d, 'gateway');
    const before = await d.workerPids('gateway');
    d.writeConfig(config(group(dir, { count: 1, listen: ['127.0.0.1:0'] }), gw(2)));
    let r = await smoothctl(d.socket, ['reload']);
    expect(r.code, r.stderr).toBe(0);
    let s = await d.status();
    let g = s.groups.find((x: any) => x.name === 'gateway');
    expect(g.pending).toBe(true);
    expect(g.desired).toBe(1);
    expect(await d.workerPids('gateway')).toEqual(before);
    const load = startLoad(p2, { concurrency: 8 });
    r = await smoothctl(d.socket, ['restart', 'gateway']);
    await load.stop();
    expect(r.code, r.stderr).toBe(0);
    s = await d.status();
    g = s.groups.find((x: any) => x.name === 'gateway');
    expect(g.pending).toBe(false);
    expect(g.desired).toBe(2);
    const after = await d.workerPids('gateway');
    expect(after).toHaveLength(2);
    for (const pid of after) expect(before).not.toContain(pid);
    expect(load.failed).toBe(0);
  });

  it('a command that does not exist or a cwd that is gone is refused at reload; the old workers keep serving', async () => {
    const { dir, port, d } = await webDaemon({ count: 2 });
    const before = await d.workerPids();
    d.writeConfig(config(group(dir, { count: 2, listen: ['127.0.0.1:0'] }).replace('command: [node,', 'command: [no-such-program-xyz,')));
    let r = await smoothctl(d.socket, ['reload']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('no-such-program-xyz');
    d.writeConfig(config(group(dir, { count: 2, listen: ['127.0.0.1:0'] }).replace(path.join(dir, 'current'), path.join(dir, 'missing'))));
    r = await smoothctl(d.socket, ['reload']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('groups.web.cwd');
    expect((await d.workerPids()).sort()).toEqual(before.sort());
    expect((await get(port)).status).toBe(200);
  });

  it('a port already in use or an address overlapping a held one is refused at reload', async () => {
    const dir = tempDir();
    // A port known before smoothd starts: the overlap check compares configured addresses, and a
    // configured `:0` overlaps nothing, so this case needs a fixed port in the config.
    const p1 = await freePort();
    const blocker = await busyPort();
    try {
      release(dir, 'v1');
      const d = await start(config(group(dir, { count: 1, listen: [`127.0.0.1:${p1}`] })), dir);
      d.writeConfig(config(group(dir, { count: 1, listen: [`127.0.0.1:${p1}`, `127.0.0.1:${blocker.port}`] })));
      let r = await smoothctl(d.socket, ['reload']);
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toContain('already in use');
      d.writeConfig(config(group(dir, { count: 1, listen: [`0.0.0.0:${p1}`] })));
      r = await smoothctl(d.socket, ['reload']);
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toContain('needs a restart');
      expect((await get(p1)).status).toBe(200);
    } finally {
      blocker.close();
    }
  });
});

describe('errors at start', () => {
  it('a port already in use exits 71 and says so', async () => {
    const dir = tempDir();
    const blocker = await busyPort();
    try {
      release(dir, 'v1');
      const d = await start(config(group(dir, { count: 1, listen: [`127.0.0.1:${blocker.port}`] })), dir, { waitReady: false });
      expect((await d.exit).code).toBe(71);
      expect(d.stderr.join('')).toContain('address already in use');
    } finally {
      blocker.close();
    }
  });

  it('a missing command and a missing cwd exit 78 naming each key', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const yaml = config(
      group(dir, { name: 'a', count: 1, listen: ['127.0.0.1:7001'] }).replace('command: [node,', 'command: [no-such-program-xyz,'),
      group(dir, { name: 'b', count: 1, listen: ['127.0.0.1:7003'] }).replace(path.join(dir, 'current'), path.join(dir, 'nowhere')),
    );
    const d = await start(yaml, dir, { waitReady: false });
    expect((await d.exit).code).toBe(78);
    const err = d.stderr.join('');
    expect(err).toContain('groups.a.command');
    expect(err).toContain('no-such-program-xyz');
    expect(err).toContain('groups.b.cwd');
  });

  it('overlapping addresses exit 78 naming both entries', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const yaml = config(group(dir, { name: 'a', count: 1, listen: ['127.0.0.1:7001'] }), group(dir, { name: 'b', count: 1, listen: ['0.0.0.0:7001'] }));
    const d = await start(yaml, dir, { waitReady: false });
    expect((await d.exit).code).toBe(78);
    expect(d.stderr.join('')).toMatch(/groups\.b\.listen\[0\].*overlaps.*groups\.a\.listen\[0\]/);
  });

  it('a missing config file exits 78 and says how to fix it', async () => {
    const dir = tempDir();
    const d = await start('', dir, { waitReady: false, args: ['--config', path.join(dir, 'nope.yaml')] });
    expect((await d.exit).code).toBe(78);
    expect(d.stderr.join('')).toMatch(/nope\.yaml/);
  });

  it('--check validates without starting anything', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const d = await start(config(group(dir, { count: 3, listen: ['127.0.0.1:7002'] })), dir, { waitReady: false, args: ['--check'] });
    expect((await d.exit).code).toBe(0);
    expect(d.logs.map((l) => l.raw).join('\n')).toContain('OK (1 group, 3 workers)');
    expect(fs.existsSync(d.socket)).toBe(false);
  });
});

describe('privileges', () => {
  const root = process.getuid?.() === 0;

  it.skipIf(!root)('a privileged port without the right exits 71 with what to do', async () => {
    const dir = tempDir();
    fs.chmodSync(dir, 0o777);
    release(dir, 'v1');
    fs.chmodSync(path.join(dir, 'releases'), 0o755);
    const d = await start(config(group(dir, { count: 1, listen: ['127.0.0.1:81'] })), dir, {
      waitReady: false,
      wrap: ['setpriv', '--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', '--'],
    });
    expect((await d.exit).code).toBe(71);
    expect(d.stderr.join('')).toContain('ports below 1024');
  });

  it.skipIf(!root)('workers switch to user and group, keeping the user\'s supplementary groups', async () => {
    const { execFileSync } = await import('node:child_process');
    const ensure = (cmd: string[]): void => {
      try {
        execFileSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
      } catch {
        // exists already
      }
    };
    ensure(['groupadd', '--system', 'smoothd-test-extra']);
    ensure(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'smoothd-test-worker']);
    execFileSync('usermod', ['-a', '-G', 'smoothd-test-extra', 'smoothd-test-worker']);
    const [, , uid, primaryGid] = execFileSync('getent', ['passwd', 'smoothd-test-worker']).toString().split(':').map(Number);
    const extraGid = Number(execFileSync('getent', ['group', 'smoothd-test-extra']).toString().split(':')[2]);
    const dir = tempDir();
    fs.chmodSync(dir, 0o755);
    release(dir, 'v1');
    const d = await start(config(group(dir, { count: 1, listen: ['127.0.0.1:0'], extra: '    user: smoothd-test-worker\n' })), dir);
    const port = await boundPort(d);
    const body = JSON.parse((await get(port, '/uid')).body);
    expect(body.uid).toBe(uid);
    expect(body.gid).toBe(primaryGid);
    expect(body.groups.split(/\s+/).map(Number)).toContain(extraGid);
    expect((await d.status()).daemon.state).toBe('running');
  });
});

describe('soak', () => {
  const reloads = Number(process.env.SMOOTHD_SOAK_RELOADS ?? 20);

  it(`${reloads} reloads under light load: no failed request, daemon memory and descriptors flat`, { timeout: 30_000 + reloads * 3000 }, async () => {
    const dir = tempDir();
    release(dir, 'v0');
    const probeOut = path.join(dir, 'heap.json');
    const d = await start(config(group(dir, { count: 2, listen: ['127.0.0.1:0'] })), dir, {
      env: { NODE_OPTIONS: `--import ${path.join(FIXTURES, 'gc-probe.mjs')}`, GC_PROBE_OUT: probeOut },
    });
    const port = await boundPort(d);
    // heapUsed right after a full GC: what the daemon really retains, apart from V8's heap sizing.
    const heapAfterGc = async (): Promise<number> => {
      fs.rmSync(probeOut, { force: true });
      process.kill(d.pid, 'SIGUSR2');
      await waitFor('the heap probe', () => fs.existsSync(probeOut));
      return JSON.parse(fs.readFileSync(probeOut, 'utf8')).heapUsed as number;
    };
    const load = startLoad(port, { concurrency: 4 });
    let fdsEarly = 0;
    let rssEarly = 0;
    let heapEarly = 0;
    try {
      for (let i = 1; i <= reloads; i++) {
        const r = await smoothctl(d.socket, ['reload']);
        expect(r.code, r.stderr).toBe(0);
        if (i === Math.min(5, reloads)) {
          fdsEarly = fdCount(d.pid);
          rssEarly = rssBytes(d.pid);
          heapEarly = await heapAfterGc();
        }
      }
    } finally {
      await load.stop();
    }
    const fdsLate = fdCount(d.pid);
    const rssLate = rssBytes(d.pid);
    const heapLate = await heapAfterGc();
    const mb = (n: number): string => (n / 2 ** 20).toFixed(1);
    console.log(
      `soak: ${reloads} reloads, ${load.ok} requests, ${load.failed} failed; daemon fds ${fdsEarly} -> ${fdsLate}, ` +
        `RSS ${mb(rssEarly)} -> ${mb(rssLate)} MB, heap after GC ${mb(heapEarly)} -> ${mb(heapLate)} MB`,
    );
    expect(load.failed).toBe(0);
    expect(fdsLate).toBeLessThanOrEqual(fdsEarly + 2);
    expect(rssLate - rssEarly).toBeLessThan(16 * 2 ** 20);
    expect(heapLate - heapEarly).toBeLessThan(2 * 2 ** 20);
  });
});
