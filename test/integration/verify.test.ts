/**
 * Deploy verification and automatic rollback with real workers, the real CLI
 * and continuous load (DESIGN §10): a release that starts fine but answers
 * 500, or crashes a few seconds after ready, is caught and undone, and no
 * request fails on the way (connection errors and resets: 0).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, type Daemon, get, type Load, rpc, smoothctl, startDaemon, startLoad, tempDir, waitFor } from './harness.js';
import { config, group, release } from './releases.js';

afterEach(cleanup);

async function boundPort(d: Daemon, name = 'web'): Promise<number> {
  const s = await d.status();
  const bound: string = s.groups.find((g: { name: string }) => g.name === name).listen[0].bound;
  return Number(bound.slice(bound.lastIndexOf(':') + 1));
}

/** Connection-level failures (resets, refusals, timeouts): everything but an HTTP status. */
function connectionErrors(l: Load): number {
  let n = 0;
  for (const [k, v] of l.errors) if (!k.startsWith('HTTP ')) n += v;
  return n;
}

async function releasesServed(port: number, n = 12): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add((await get(port)).body.split(' ')[1] ?? '');
  return seen;
}

async function web(dir: string, verify: string, opts: { count?: number; extra?: string } = {}): Promise<{ d: Daemon; port: number }> {
  const extra = `    verify: ${verify}\n${opts.extra ?? ''}`;
  const d = await startDaemon(config(group(dir, { count: opts.count ?? 3, listen: ['127.0.0.1:0'], extra })), { dir });
  return { d, port: await boundPort(d) };
}

describe('a release that answers 500 once ready', () => {
  for (const keepAlive of [false, true]) {
    it(`is caught by the canary's error budget and rolled back, with no connection error (keep-alive ${keepAlive ? 'on' : 'off'})`, async () => {
      const dir = tempDir();
      release(dir, 'v1');
      const { d, port } = await web(dir, '{ bake: 3s, maxErrorRate: 0.05, minRequests: 20 }');
      const before = await d.workerPids();
      release(dir, 'v2', { 'status.txt': '500' });
      const load = startLoad(port, { concurrency: 16, keepAlive });
      await waitFor('responses of v1 before the reload', () => load.ok > 50);
      const t0 = Date.now();
      const r = await smoothctl(d.socket, ['reload', '--json']);
      const took = Date.now() - t0;
      // Some more responses from the generation rolled back to, before the load stops.
      const okAtEnd = load.ok;
      await waitFor('responses after the rollback', () => load.ok > okAtEnd + 50);
      await load.stop();
      const report = JSON.parse(r.stdout);
      const served = load.ok + (load.errors.get('HTTP 500') ?? 0);
      const share = (load.errors.get('HTTP 500') ?? 0) / served;
      console.log(
        `500-release, keep-alive ${keepAlive ? 'on' : 'off'}: reload exit ${r.code} after ${took} ms; ${served} responses, ` +
          `${load.errors.get('HTTP 500') ?? 0} were 500 (${(100 * share).toFixed(2)}%), connection errors ${connectionErrors(load)}; ` +
          `verification ${JSON.stringify(report.groups[0].verification)}; rollback ${JSON.stringify(report.rollback)}`,
      );
      expect(r.code).toBe(1);
      expect(report.state).toBe('failed');
      expect(report.rollback.state).toBe('succeeded');
      expect(report.groups[0].rollback).toEqual({ state: 'succeeded', generation: 1 });
      expect(connectionErrors(load)).toBe(0);
      expect(share).toBeLessThan(0.25);
      // Every worker is back on the previous release; the old workers were kept.
      expect(await releasesServed(port)).toEqual(new Set(['v1']));
      const s = await d.status();
      expect(s.groups[0].generation).toBe(1);
      expect(s.groups[0].workers.map((w: { generation: number }) => w.generation)).toEqual([1, 1, 1]);
      // The canary failed in its bake, before any old worker was stopped: they all still serve.
      expect((await d.workerPids()).filter((p) => before.includes(p)).length).toBe(3);
      // With keep-alive the old workers shed 10% of their clients during the bake (Connection:
      // close), so the canary gets its share of connections and is judged on real traffic.
      expect(report.groups[0].verification.verdict).toBe('failed');
      expect(report.groups[0].verification.canary.requests).toBeGreaterThanOrEqual(20);
      expect(report.failure.reason).toMatch(/errors .* above maxErrorRate 5\.0%; old workers over the same window: 0\.0% errors/);
    }, 60_000);
  }
});

describe('after the 500-release was rolled back automatically', () => {
  it('history shows its revision bad; smoothctl rollback returns to the release before with 0 failed requests; numbers only grow', async () => {
    const dir = tempDir();
    release(dir, 'v0', { REVISION: 'rev0000\n' });
    const { d, port } = await web(dir, '{ bake: 3s, maxErrorRate: 0.05, minRequests: 20 }');
    release(dir, 'v1', { REVISION: 'rev0001\n' });
    const load = startLoad(port, { concurrency: 16 });
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0); // generation 2: v1, good
    release(dir, 'v2', { REVISION: 'bad0002\n', 'status.txt': '500' });
    const bad = await smoothctl(d.socket, ['reload', '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ state: 'failed', rollback: { state: 'succeeded' }, groups: [{ rollback: { state: 'succeeded', generation: 2 } }] });
    // The automatic rollback kept the old generation's number.
    let s = await d.status();
    expect(s.groups[0].generation).toBe(2);
    expect(s.groups[0].workers.map((w: { generation: number }) => w.generation)).toEqual([2, 2, 2]);
    expect(s.groups[0].history.map((h: { generation: number; state: string; revision: string | null }) => [h.generation, h.state, h.revision])).toEqual([
      [3, 'bad', 'bad0002'],
      [2, 'current', 'rev0001'],
      [1, 'good', 'rev0000'],
    ]);
    const errorsBefore = load.failed;
    const okBefore = load.ok;
    const http500Before = load.errors.get('HTTP 500') ?? 0;
    const t0 = Date.now();
    const rb = await smoothctl(d.socket, ['rollback', '--json']);
    console.log(`manual rollback after the 500-release: exit ${rb.code} after ${Date.now() - t0} ms; ${load.ok - okBefore} requests served meanwhile, ${load.failed - errorsBefore} failed`);
    expect(rb.code, rb.stderr).toBe(0);
    expect(JSON.parse(rb.stdout)).toMatchObject({ state: 'succeeded', trigger: 'rollback', groups: [{ name: 'web', state: 'rolled', generation: 1 }] });
    await new Promise((r) => setTimeout(r, 300));
    // Requests that failed during the manual rollback: none (only the bad canary's 500s came before it).
    expect(load.failed - errorsBefore).toBe(0);
    expect(load.errors.get('HTTP 500') ?? 0).toBe(http500Before);
    await load.stop();
    expect(connectionErrors(load)).toBe(0);
    expect(await releasesServed(port)).toEqual(new Set(['v0']));
    s = await d.status();
    expect(s.groups[0].generation).toBe(1);
    expect(s.groups[0].revision).toBe('rev0000');
    // The next reload takes a new number, higher than every earlier one (3 stays the bad one).
    release(dir, 'v4', { REVISION: 'rev0004\n' });
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    s = await d.status();
    expect(s.groups[0].generation).toBe(4);
    expect(s.groups[0].workers.map((w: { generation: number }) => w.generation)).toEqual([4, 4, 4]);
  }, 120_000);
});

describe('a release that crashes a few seconds after ready', () => {
  it('is caught by the bake: the reload fails, the old workers never stopped', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { d, port } = await web(dir, '{ bake: 5s }');
    const before = await d.workerPids();
    release(dir, 'v2', { 'crash-after-ready.txt': '1500' });
    const load = startLoad(port, { concurrency: 8 });
    const r = await smoothctl(d.socket, ['reload']);
    await load.stop();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/exited with code 3 while the reload was still rolling; rolled back web to generation 1/);
    expect(await d.workerPids()).toEqual(before);
    // Only requests in flight on the crashing canary can fail (the app exits mid-request).
    expect(connectionErrors(load)).toBeLessThanOrEqual(8);
  }, 60_000);

  it('is caught by the watch after the roll and rolled back under load; after the watch a crash is only restarted', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { d, port } = await web(dir, '{ watch: 6s }', { extra: '    rolling: { surge: 3 }\n' });
    release(dir, 'v2', { 'crash-after-ready.txt': '2500' });
    const load = startLoad(port, { concurrency: 8 });
    const r = await smoothctl(d.socket, ['reload', '--json']);
    await load.stop();
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.failure.reason).toMatch(/after it was ready, during the 6s watch/);
    expect(report.rollback.state).toBe('succeeded');
    expect(await releasesServed(port)).toEqual(new Set(['v1']));
    // The respawned workers run generation 1 again, under its number.
    const back = await d.status();
    expect(back.groups[0].generation).toBe(1);
    expect(back.groups[0].workers.map((w: { generation: number }) => w.generation)).toEqual([1, 1, 1]);
    // Only requests in flight on a crashing worker can fail (the app exits mid-request): all three
    // new workers crash, each with at most the 8 clients' requests in flight.
    expect(connectionErrors(load)).toBeLessThanOrEqual(3 * 8);

    // A healthy release passes its watch; a crash after it is an ordinary restart.
    release(dir, 'v3');
    const ok = await smoothctl(d.socket, ['reload', '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).durationMs).toBeGreaterThanOrEqual(6000);
    const s = await d.status();
    expect(s.groups[0].generation).toBe(3); // generation 2 is never reused
    const killed = s.groups[0].workers[0].pid;
    process.kill(killed, 'SIGKILL');
    // The slot's restart is ready again: three ready workers, none of them the killed one.
    const after = await waitFor('the killed worker restarted and ready', async () => {
      const st = await d.status();
      const ws = st.groups[0].workers as { pid: number; state: string }[];
      return ws.length === 3 && ws.every((w) => w.state === 'ready' && w.pid !== killed) ? st : null;
    }, 15_000);
    expect(after.reload.id).toBe(2);
    expect(after.groups[0].workers.map((w: { generation: number }) => w.generation)).toEqual([3, 3, 3]);
  }, 90_000);
});

describe('rollback across groups and onFailure: keep', () => {
  it('a reload whose second group fails leaves both groups on their previous generations', async () => {
    const dir = tempDir();
    const apiDir = path.join(dir, 'api');
    fs.mkdirSync(apiDir);
    release(dir, 'v1');
    release(apiDir, 'a1');
    const d = await startDaemon(
      config(group(dir, { count: 2, listen: ['127.0.0.1:0'] }), group(apiDir, { name: 'api', count: 2, listen: ['127.0.0.1:0'], readyTimeout: '3s' })),
      { dir },
    );
    const webPort = await boundPort(d, 'web');
    const apiPort = await boundPort(d, 'api');
    release(dir, 'v2');
    release(apiDir, 'a2', { 'crash.txt': 'a2 cannot start: DATABASE_URL is not set' });
    const load = startLoad(webPort, { concurrency: 8 });
    const r = await smoothctl(d.socket, ['reload', '--json']);
    await load.stop();
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.groups.map((g: { name: string; state: string; rollback: unknown }) => [g.name, g.state, g.rollback])).toEqual([
      ['web', 'rolled', { state: 'succeeded', generation: 1 }],
      ['api', 'failed', { state: 'succeeded', generation: 1 }],
    ]);
    expect(await releasesServed(webPort)).toEqual(new Set(['v1']));
    expect(await releasesServed(apiPort)).toEqual(new Set(['a1']));
    expect(load.failed).toBe(0);
  }, 60_000);

  it('onFailure: keep leaves what the failed roll started: mixed generations', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { d, port } = await web(dir, '{ watch: 0s }', { extra: '    onFailure: keep\n' });
    // The canary is ready after 1 s and crashes 300 ms later, while the next new worker still starts.
    release(dir, 'v2', { 'slow-ready.txt': '1000', 'crash-after-ready.txt': '300' });
    const r = await smoothctl(d.socket, ['reload', '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.rollback).toBeNull();
    expect(report.failure.reason).toMatch(/while the reload was still rolling/);
    // Slot 0 keeps the failed generation (it restarts from it); slots 1 and 2 kept their old workers.
    // (The not-yet-ready new worker of slot 1 may still be stopping: only the ones that serve count.)
    const bySlot = (await d.status()).groups[0].workers
      .filter((w: { state: string }) => w.state !== 'stopping')
      .map((w: { slot: number; generation: number }) => [w.slot, w.generation])
      .sort();
    expect(bySlot).toEqual([
      [0, 2],
      [1, 1],
      [2, 1],
    ]);
    expect(await releasesServed(port)).toContain('v1');
  }, 60_000);
});

describe('reload --dry-run and the release history', () => {
  it('prints what a reload would change per group and starts nothing; a refused config exits 1', async () => {
    const dir = tempDir();
    release(dir, 'v1', { REVISION: 'a1b2c3d\n' });
    const d = await startDaemon(config(group(dir, { count: 2, listen: ['127.0.0.1:0'], extra: '    env: { MODE: blue, OLD: x }\n' })), { dir });
    const before = await d.workerPids();
    release(dir, 'v2', { REVISION: 'e4f5a6b\n' });
    d.writeConfig(config(group(dir, { count: 3, listen: ['127.0.0.1:0'], extra: '    env: { MODE: green, NEW: y }\n' })));
    const r = await smoothctl(d.socket, ['reload', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      [
        'web: rolled',
        `  cwd: ${fs.realpathSync(path.join(dir, 'releases/v1'))} -> ${fs.realpathSync(path.join(dir, 'releases/v2'))}`,
        '  revision: a1b2c3d -> e4f5a6b',
        '  env: +NEW ~MODE -OLD',
        '  count: 2 -> 3',
        '',
      ].join('\n'),
    );
    const j = JSON.parse((await smoothctl(d.socket, ['reload', '--dry-run', '--json'])).stdout);
    expect(j).toMatchObject({ dryRun: true, groups: [{ name: 'web', action: 'roll', changes: { env: { added: ['NEW'], changed: ['MODE'], removed: ['OLD'] } } }] });
    // Nothing started, nothing reloaded.
    expect(await d.workerPids()).toEqual(before);
    expect((await d.status()).reload.id).toBe(0);
    d.writeConfig('groups: { web: { count: 0 } }\n');
    const bad = await smoothctl(d.socket, ['reload', '--dry-run']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/config refused, a reload would change nothing: .*groups\.web/s);
  }, 30_000);

  it('status shows the history: the rolled-back release is bad, the current one carries its revision', async () => {
    const dir = tempDir();
    release(dir, 'v1', { REVISION: 'a1b2c3d\n' });
    const { d } = await web(dir, '{ watch: 0s }', { count: 1 });
    release(dir, 'v2', { REVISION: 'bad0001\n', 'crash.txt': 'v2 cannot start' });
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(1);
    const s = await d.status();
    expect(s.groups[0].revision).toBe('a1b2c3d');
    expect(s.groups[0].history.map((h: { generation: number; state: string; revision: string | null }) => [h.generation, h.state, h.revision])).toEqual([
      [2, 'bad', 'bad0001'],
      [1, 'current', 'a1b2c3d'],
    ]);
    const table = await smoothctl(d.socket, ['status']);
    expect(table.stdout).toContain('releases web: 2 BAD bad0001, 1 current a1b2c3d');
  }, 30_000);
});

describe('smoothctl rollback', () => {
  it('returns to the previous good release under load with 0 failed requests, keeping its generation number', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { d, port } = await web(dir, '{ bake: 0s }');
    release(dir, 'v2');
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    expect(await releasesServed(port)).toEqual(new Set(['v2']));
    const load = startLoad(port, { concurrency: 8 });
    const r = await smoothctl(d.socket, ['rollback', '--json']);
    await load.stop();
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ state: 'succeeded', trigger: 'rollback', groups: [{ name: 'web', state: 'rolled', generation: 1 }] });
    expect(load.failed).toBe(0);
    expect(await releasesServed(port)).toEqual(new Set(['v1']));
    const s = await d.status();
    expect(s.groups[0].generation).toBe(1);
    expect(s.groups[0].history.map((h: { generation: number; state: string }) => [h.generation, h.state])).toEqual([
      [2, 'good'],
      [1, 'current'],
    ]);
    // The next reload (current still points at v2) takes a new number; --to names a generation.
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    expect((await d.status()).groups[0].generation).toBe(3);
    const same = await smoothctl(d.socket, ['rollback', 'web', '--to', '2']);
    expect(same.code).toBe(2); // generation 2 is v2 again: the same release as generation 3
    expect(same.stderr).toMatch(/same folder .* as the current generation 3/);
    expect((await smoothctl(d.socket, ['rollback', 'web', '--to', '1'])).code).toBe(0);
    expect(await releasesServed(port)).toEqual(new Set(['v1']));
  }, 60_000);

  it('refuses an in-place deploy (same folder) unless --force, and a release whose folder is gone, naming the path', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { d } = await web(dir, '{ bake: 0s }', { count: 1 });
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0); // same folder: generation 2 is v1 again
    const inPlace = await smoothctl(d.socket, ['rollback']);
    expect(inPlace.code).toBe(2);
    expect(inPlace.stderr).toMatch(/in-place deploy.*releases\/N behind a current symlink.*--force/);
    expect((await smoothctl(d.socket, ['rollback', '--force'])).code).toBe(0);
    expect((await d.status()).groups[0].generation).toBe(1);

    release(dir, 'v2');
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    const v1 = fs.realpathSync(path.join(dir, 'releases', 'v1'));
    fs.rmSync(v1, { recursive: true });
    const gone = await smoothctl(d.socket, ['rollback']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain(`folder ${v1} no longer exists`);
    expect((await smoothctl(d.socket, ['rollback', 'web', 'other', '--to', '1'])).code).toBe(64);
    // Over RPC, `to` with other than one group is a parameter error, not a refusal.
    await expect(rpc(d.socket, 'rollback', { to: 1 })).rejects.toMatchObject({ code: -32602, message: expect.stringMatching(/exactly one group/) });
    await expect(rpc(d.socket, 'rollback', { groups: ['web', 'web2'], to: 1 })).rejects.toMatchObject({ code: -32602 });
  }, 60_000);
});

describe('smoothctl restart GROUP', () => {
  it('applies verify and onFailure like a reload: a 500-release of a reloadable: false group fails its bake and is rolled back', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { d, port } = await web(dir, '{ bake: 3s, maxErrorRate: 0.05, minRequests: 20 }', { extra: '    reloadable: false\n' });
    const before = await d.workerPids();
    release(dir, 'v2', { 'status.txt': '500' });
    const load = startLoad(port, { concurrency: 8 });
    await waitFor('responses of v1 before the restart', () => load.ok > 50);
    const r = await smoothctl(d.socket, ['restart', 'web', '--json']);
    await load.stop();
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ trigger: 'restart', state: 'failed', rollback: { state: 'succeeded' } });
    expect(report.groups[0].verification.verdict).toBe('failed');
    expect(report.groups[0].rollback).toEqual({ state: 'succeeded', generation: 1 });
    expect(connectionErrors(load)).toBe(0);
    expect(await releasesServed(port)).toEqual(new Set(['v1']));
    expect((await d.workerPids()).filter((p) => before.includes(p)).length).toBe(3);
  }, 60_000);

  it('with onFailure: keep leaves the failed canary serving beside the old workers, no rollback', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { d } = await web(dir, '{ bake: 3s, maxErrorRate: 0.05, minRequests: 20 }', { extra: '    reloadable: false\n    onFailure: keep\n' });
    release(dir, 'v2', { 'status.txt': '500' });
    const load = startLoad(await boundPort(d), { concurrency: 8 });
    await waitFor('responses of v1 before the restart', () => load.ok > 50);
    const r = await smoothctl(d.socket, ['restart', 'web', '--json']);
    await load.stop();
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ trigger: 'restart', state: 'failed', rollback: null });
    expect(report.groups[0].verification.verdict).toBe('failed');
    const gens = (await d.status()).groups[0].workers
      .filter((w: { state: string }) => w.state !== 'stopping')
      .map((w: { generation: number }) => w.generation)
      .sort();
    expect(gens).toEqual([1, 1, 1, 2]);
  }, 60_000);
});

describe('counters over NOTIFY_SOCKET (ready: notify)', () => {
  it('X_SMOOTHD_REQUESTS and X_SMOOTHD_ERRORS from a Python worker fail the canary and roll the release back', async () => {
    const dir = tempDir();
    // A raw sd_notify worker: ready at once, then cumulative counters every 100 ms; errors.txt in
    // its release folder says which share of its (pretend) responses were 5xx.
    const script = path.join(dir, 'counting-worker.py');
    fs.writeFileSync(
      script,
      [
        'import os, socket, time',
        'addr = os.environ["NOTIFY_SOCKET"]',
        'addr = "\\0" + addr[1:] if addr.startswith("@") else addr',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        's.sendto(b"READY=1", addr)',
        'share = float(open("errors.txt").read()) if os.path.exists("errors.txt") else 0.0',
        'requests = 0',
        'while True:',
        '    time.sleep(0.1)',
        '    requests += 10',
        '    s.sendto(("X_SMOOTHD_REQUESTS=%d\\nX_SMOOTHD_ERRORS=%d" % (requests, int(requests * share))).encode(), addr)',
        '',
      ].join('\n'),
    );
    release(dir, 'v1');
    const yaml = `groups:
  web:
    command: [python3, ${script}]
    cwd: ${path.join(dir, 'current')}
    count: 2
    ready: notify
    stopTimeout: 2s
    verify: { bake: 2s, maxErrorRate: 0.05, minRequests: 20 }
`;
    const d = await startDaemon(yaml, { dir });
    const before = await d.workerPids();
    release(dir, 'v2', { 'errors.txt': '0.5' });
    const r = await smoothctl(d.socket, ['reload', '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.groups[0].verification.verdict).toBe('failed');
    expect(report.groups[0].verification.canary.requests).toBeGreaterThanOrEqual(20);
    expect(report.groups[0].verification.old.requests).toBeGreaterThan(0);
    expect(report.groups[0].verification.old.errors).toBe(0);
    expect(report.failure.reason).toMatch(/above maxErrorRate 5\.0%/);
    expect(report.rollback.state).toBe('succeeded');
    expect(await d.workerPids()).toEqual(before);
  }, 60_000);
});
