/**
 * End to end under a real systemd 252, booted as PID 1 of a systemd-nspawn
 * container (test/e2e/container.sh builds the root once with debootstrap and
 * caches it outside the repo). The project's own units are installed the way
 * README says — /usr/bin/smoothd and /usr/bin/smoothctl as npm -g links them,
 * the units copied to /etc/systemd/system — with the repo bound read-only at
 * /opt/smoothd and the host's node at /usr/bin/node.
 *
 * Skipped (with the reason printed) only when this machine cannot run nspawn
 * at all; .ci/run installs systemd-container and debootstrap so CI runs it.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = path.join(ROOT, 'test/e2e/container.sh');

function canRun(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  const r = spawnSync('bash', [SCRIPT, 'check'], { encoding: 'utf8' });
  return r.status === 0 ? null : (r.stdout + r.stderr).trim() || `container.sh check exited ${r.status}`;
}

const skipReason = canRun();
if (skipReason) console.warn(`skipping the systemd e2e test: this machine cannot run systemd-nspawn: ${skipReason}`);

const NAME = `smoothd-e2e-${process.pid}`;
const APP = '/opt/smoothd/test/fixtures/http-app.mjs';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let nspawn: ChildProcess | null = null;
let leader = 0;
let host = ''; // host folder bound at /srv in the container
let bootLog = '';

/** A shell command inside the container (all namespaces of its PID 1), with a clean environment. */
function sh(cmd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'nsenter',
      ['-t', String(leader), '-a', '/usr/bin/env', '-i', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', 'sh', '-c', cmd],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

async function ok(cmd: string, timeoutMs?: number): Promise<string> {
  const r = await sh(cmd, timeoutMs);
  if (r.code !== 0) throw new Error(`\`${cmd}\` exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function prop(unit: string, name: string): Promise<string> {
  return (await ok(`systemctl show -p ${name} --value ${unit}`)).trim();
}

async function status(): Promise<any> {
  return JSON.parse(await ok('smoothctl status --json'));
}

async function workerPids(): Promise<number[]> {
  const s = await status();
  return s.groups.flatMap((g: any) => g.workers.map((w: any) => w.pid as number)).sort((a: number, b: number) => a - b);
}

async function get(): Promise<string> {
  return (await ok('node /srv/client.mjs get 8080')).trim();
}

/** Points /srv/app/current at a release folder (atomically, as a deploy tool would). */
function deploy(release: string): void {
  const tmp = path.join(host, 'app', `.current-${Date.now()}`);
  fs.symlinkSync(release, tmp);
  fs.renameSync(tmp, path.join(host, 'app', 'current'));
}

function release(name: string, files: Record<string, string>): void {
  const dir = path.join(host, 'app', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'release.txt'), name);
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
}

const CLIENT = `// get PORT: one request, prints the body. load PORT SECONDS STOPFILE: 8 clients, no keep-alive,
// until STOPFILE exists (or SECONDS pass); prints {ok, failed, errors, bodies} as JSON. After its
// first answer it creates STOPFILE.started, so a test starts its step only once the load runs.
import fs from 'node:fs';
import http from 'node:http';
const [mode, port, seconds, stopFile] = process.argv.slice(2);
const once = () => new Promise((resolve, reject) => {
  const req = http.get({ host: '127.0.0.1', port: Number(port), path: '/', agent: false, timeout: 20000 }, (res) => {
    let body = '';
    res.on('data', (b) => (body += b));
    res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error('HTTP ' + res.statusCode))));
    res.on('error', reject);
  });
  req.on('timeout', () => req.destroy(new Error('ETIMEDOUT')));
  req.on('error', reject);
});
if (mode === 'get') {
  process.stdout.write(await once());
} else {
  const end = Date.now() + Number(seconds) * 1000;
  const out = { ok: 0, failed: 0, errors: {}, bodies: {} };
  const loop = async () => {
    while (Date.now() < end && !fs.existsSync(stopFile)) {
      try {
        const body = await once();
        if (out.ok++ === 0) fs.writeFileSync(stopFile + '.started', '');
        const rel = body.split(' ')[1];
        out.bodies[rel] = (out.bodies[rel] ?? 0) + 1;
      } catch (e) {
        out.failed++;
        const k = e.code ?? e.message;
        out.errors[k] = (out.errors[k] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, loop));
  process.stdout.write(JSON.stringify(out));
}
`;

function config(listen: string): string {
  return [
    'groups:',
    '  web:',
    `    command: [node, ${APP}]`,
    '    cwd: /srv/app/current',
    '    count: 2',
    `    listen: ["${listen}"]`,
    '    ready: notify',
    '    readyTimeout: 10s',
    '    stopTimeout: 5s',
    '',
  ].join('\n');
}

/** Starts the in-container load on port 8080 and resolves once it has had its first answer. */
async function startLoadIn(name: string): Promise<{ stop: () => Promise<{ ok: number; failed: number; errors: Record<string, number> }> }> {
  const stopFile = path.join(host, name);
  fs.rmSync(stopFile, { force: true });
  fs.rmSync(`${stopFile}.started`, { force: true });
  const load = sh(`node /srv/client.mjs load 8080 120 /srv/${name}`, 150_000);
  await until('the load to get its first answer', async () => fs.existsSync(`${stopFile}.started`), 30_000, 50);
  return {
    stop: async () => {
      fs.writeFileSync(stopFile, '');
      const res = await load;
      if (res.code !== 0) throw new Error(`load client exited ${res.code}: ${res.stderr}`);
      return JSON.parse(res.stdout);
    },
  };
}

function stopContainer(): void {
  if (nspawn?.pid) {
    const pid = nspawn.pid;
    // nspawn turns SIGTERM into a clean poweroff of the container; SIGKILL after a grace.
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && fs.existsSync(`/proc/${pid}`) && !isZombie(pid)) spawnSync('sleep', ['0.1']);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  spawnSync('bash', [SCRIPT, 'cleanup', NAME], { stdio: 'ignore' });
  nspawn = null;
}

function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

describe.skipIf(skipReason !== null)('smoothd under a real systemd (nspawn)', () => {
  beforeAll(async () => {
    if (!fs.existsSync(path.join(ROOT, 'dist/cli/smoothd.js'))) {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT });
    }
    // The container root: built once (about a minute), then reused.
    const r = spawnSync('bash', [SCRIPT, 'root'], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`container.sh root failed:\n${r.stderr}`);

    host = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-e2e-'));
    fs.writeFileSync(path.join(host, 'client.mjs'), CLIENT);
    release('v1', { 'slow-ready.txt': '1500' });
    release('v2', {});
    release('broken', { 'crash.txt': 'v3 cannot start: missing DATABASE_URL' });
    deploy('v1');

    const log = fs.openSync(path.join(host, 'nspawn.log'), 'w');
    nspawn = spawn('bash', [SCRIPT, 'boot', NAME, `--bind-ro=${ROOT}:/opt/smoothd`, `--bind-ro=${process.execPath}:/usr/bin/node`, `--bind=${host}:/srv`], {
      stdio: ['ignore', log, log],
      detached: true,
    });
    fs.closeSync(log);
    const nspawnPid = nspawn.pid!;
    bootLog = path.join(host, 'nspawn.log');
    leader = await until(
      "the container's PID 1",
      async () => {
        if (nspawn?.exitCode !== null) throw new Error(`systemd-nspawn exited ${nspawn?.exitCode}:\n${fs.readFileSync(bootLog, 'utf8')}`);
        try {
          const kids = fs
            .readdirSync(`/proc/${nspawnPid}/task`)
            .flatMap((t) => fs.readFileSync(`/proc/${nspawnPid}/task/${t}/children`, 'utf8').trim().split(/\s+/))
            .filter(Boolean)
            .map(Number);
          return kids.find((k) => fs.readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'systemd') ?? null;
        } catch {
          return null;
        }
      },
      30_000,
      100,
    );
    await until(
      'the container to finish booting',
      async () => {
        const s = (await sh('systemctl is-system-running')).stdout.trim();
        return s === 'running' || s === 'degraded' ? s : null;
      },
      60_000,
    );
    // Install as README says (npm -g links the bins; the unit is copied).
    await ok(
      [
        'ln -sf /opt/smoothd/bin/smoothd.js /usr/bin/smoothd',
        'ln -sf /opt/smoothd/bin/smoothctl.js /usr/bin/smoothctl',
        'cp /opt/smoothd/systemd/smoothd.service /opt/smoothd/systemd/smoothd.socket /etc/systemd/system/',
        'mkdir -p /etc/smoothd /etc/systemd/system/smoothd.service.d',
        // A short watchdog, so the test sees pings within seconds (an operator's drop-in, the unit is unchanged).
        // TimeoutAbortSec bounds how long a wedged smoothd may take to die of the watchdog's SIGABRT (DESIGN §13).
        'printf "[Service]\\nWatchdogSec=2s\\nTimeoutAbortSec=3s\\n" > /etc/systemd/system/smoothd.service.d/e2e-watchdog.conf',
        'systemctl daemon-reload',
      ].join(' && '),
    );
    fs.writeFileSync(path.join(host, 'smoothd.yaml'), config('127.0.0.1:8080'));
    await ok('cp /srv/smoothd.yaml /etc/smoothd/smoothd.yaml');
  }, 900_000);

  afterAll(() => {
    stopContainer();
    if (host) fs.rmSync(host, { recursive: true, force: true });
  }, 60_000);

  let v2Pids: number[] = [];

  it('`systemctl start` returns only once the workers are ready', async () => {
    const t0 = Date.now();
    await ok('systemctl start smoothd');
    const took = Date.now() - t0;
    // Probe right away: every worker is ready and serving (v1 takes 1.5 s to get ready).
    const s = await status();
    expect(s.groups[0].workers.map((w: any) => w.state)).toEqual(['ready', 'ready']);
    expect(took).toBeGreaterThanOrEqual(1_500);
    expect(await get()).toMatch(/^release v1 /);
    expect(await prop('smoothd', 'ActiveState')).toBe('active');
    expect(Number(await prop('smoothd', 'MainPID'))).toBe(s.daemon.pid);
  });

  it('`systemctl status` shows the STATUS line; the watchdog is fed', async () => {
    const out = (await sh('systemctl status --no-pager smoothd')).stdout;
    expect(out).toMatch(/Status: "running: web 2\/2 ready, generation 1"/);
    expect(await prop('smoothd', 'StatusText')).toBe('running: web 2/2 ready, generation 1');
    // WatchdogSec=2s: smoothd pings every second; the unit outlives several periods.
    const before = Number(await prop('smoothd', 'WatchdogTimestampMonotonic'));
    await new Promise((r) => setTimeout(r, 3_000));
    const after = Number(await prop('smoothd', 'WatchdogTimestampMonotonic'));
    expect(after).toBeGreaterThan(before);
    expect(await prop('smoothd', 'ActiveState')).toBe('active');
    expect(await prop('smoothd', 'NRestarts')).toBe('0');
  });

  it('`systemctl reload` waits for the roll, replaces every worker pid, and the new code is served', async () => {
    const old = await workerPids();
    deploy('v2');
    const r = await sh('systemctl reload smoothd');
    expect(r.code, r.stderr).toBe(0);
    v2Pids = await workerPids();
    expect(v2Pids).toHaveLength(2);
    for (const p of v2Pids) expect(old).not.toContain(p);
    expect(await get()).toMatch(/^release v2 /);
    expect(await prop('smoothd', 'ActiveState')).toBe('active');
    expect(await prop('smoothd', 'StatusText')).toBe('running: web 2/2 ready, generation 2');
  });

  it('a broken release makes `systemctl reload` fail; the unit stays active and the old workers serve', async () => {
    deploy('broken');
    const r = await sh('systemctl reload smoothd');
    expect(r.code).not.toBe(0);
    expect(await prop('smoothd', 'ActiveState')).toBe('active');
    expect(await workerPids()).toEqual(v2Pids);
    expect(await get()).toMatch(/^release v2 /);
    // The reason is in the journal (smoothctl's output of the failed ExecReload).
    const journal = await sh('journalctl -u smoothd --no-pager -n 200 -o cat');
    expect(journal.stdout).toMatch(/missing DATABASE_URL/);
    deploy('v2');
  });

  it('`systemctl restart` with smoothd.socket refuses no connection under continuous load', async () => {
    await ok('systemctl stop smoothd');
    fs.writeFileSync(path.join(host, 'smoothd.yaml'), config('systemd:http'));
    await ok('cp /srv/smoothd.yaml /etc/smoothd/smoothd.yaml && systemctl start smoothd.socket && systemctl start smoothd');
    const s = await status();
    expect(s.groups[0].listen[0].bound).toMatch(/^systemd:http/);
    const before = await workerPids();

    const stopFile = '/srv/stop-load';
    fs.rmSync(path.join(host, 'stop-load'), { force: true });
    const load = sh(`node /srv/client.mjs load 8080 90 ${stopFile}`, 150_000);
    await new Promise((r) => setTimeout(r, 1_500));
    const r1 = await sh('systemctl restart smoothd');
    expect(r1.code, r1.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1_000));
    const r2 = await sh('systemctl restart smoothd');
    expect(r2.code, r2.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1_500));
    fs.writeFileSync(path.join(host, 'stop-load'), '');
    const res = await load;
    expect(res.code, res.stderr).toBe(0);
    const counts = JSON.parse(res.stdout) as { ok: number; failed: number; errors: Record<string, number> };
    console.log(`restart under load: ${JSON.stringify(counts)}`);
    expect(counts.errors).toEqual({});
    expect(counts.failed).toBe(0);
    expect(counts.ok).toBeGreaterThan(100);
    const after = await workerPids();
    for (const p of after) expect(before).not.toContain(p);
    expect(await prop('smoothd', 'ActiveState')).toBe('active');
  });

  it('`systemctl reload` under continuous load fails no request', async () => {
    const before = await workerPids();
    const load = await startLoadIn('stop-reload-load');
    deploy('v1');
    const r1 = await sh('systemctl reload smoothd');
    expect(r1.code, r1.stderr).toBe(0);
    deploy('v2');
    const r2 = await sh('systemctl reload smoothd');
    expect(r2.code, r2.stderr).toBe(0);
    const counts = await load.stop();
    console.log(`systemctl reload under load: ${JSON.stringify(counts)}`);
    expect(counts.errors).toEqual({});
    expect(counts.failed).toBe(0);
    for (const p of await workerPids()) expect(before).not.toContain(p);
  });

  it('`systemctl stop` under load drains the workers and fails no request (smoothd.socket holds the listen socket)', async () => {
    const load = await startLoadIn('stop-stop-load');
    const r = await sh('systemctl stop smoothd.service');
    expect(r.code, r.stderr).toBe(0);
    // The socket unit stays: connections wait in its queue, and the next one activates smoothd again.
    expect(await prop('smoothd.socket', 'ActiveState')).toBe('active');
    await until('smoothd to be activated again by the socket', async () => (await prop('smoothd', 'ActiveState')) === 'active', 30_000);
    const counts = await load.stop();
    console.log(`systemctl stop under load: ${JSON.stringify(counts)}`);
    expect(counts.errors).toEqual({});
    expect(counts.failed).toBe(0);
    const journal = await sh('journalctl -u smoothd --no-pager -n 400 -o cat');
    expect(journal.stdout).toMatch(/stopping gracefully/);
  });

  it('a wedged smoothd (SIGSTOP) is killed by the watchdog and restarted, and serves again', async () => {
    const main = Number(await prop('smoothd', 'MainPID'));
    const restarts = Number(await prop('smoothd', 'NRestarts'));
    await ok(`kill -STOP ${main}`);
    // WatchdogSec=2s, TimeoutAbortSec=3s, RestartSec=2s: a new smoothd well within 30 s.
    const next = await until(
      'a new smoothd after the watchdog fired',
      async () => {
        const pid = Number(await prop('smoothd', 'MainPID'));
        return pid !== 0 && pid !== main && (await prop('smoothd', 'ActiveState')) === 'active' ? pid : null;
      },
      30_000,
    );
    expect(next).not.toBe(main);
    expect(Number(await prop('smoothd', 'NRestarts'))).toBe(restarts + 1);
    expect((await sh(`test -d /proc/${main}`)).code).not.toBe(0);
    const journal = await sh('journalctl -u smoothd --no-pager -n 400 -o cat');
    expect(journal.stdout).toMatch(/[Ww]atchdog timeout/);
    expect(await get()).toMatch(/^release v2 /);
  });

  it('`systemctl stop` leaves no process behind', async () => {
    const pids = await workerPids();
    const main = Number(await prop('smoothd', 'MainPID'));
    const cgroup = await prop('smoothd', 'ControlGroup');
    await ok('systemctl stop smoothd.socket smoothd.service');
    expect(await prop('smoothd', 'ActiveState')).toBe('inactive');
    expect(await prop('smoothd.socket', 'ActiveState')).toBe('inactive');
    const left = await sh(`for p in ${[main, ...pids].join(' ')}; do [ -d /proc/$p ] && echo $p; done; cat /sys/fs/cgroup/systemd${cgroup}/cgroup.procs /sys/fs/cgroup/unified${cgroup}/cgroup.procs /sys/fs/cgroup${cgroup}/cgroup.procs 2>/dev/null; true`);
    expect(left.stdout.trim()).toBe('');
    const node = await sh("for c in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $c 2>/dev/null; echo; done | grep -e '[h]ttp-app' -e '[s]moothd.js' || true");
    expect(node.stdout.trim()).toBe('');
    expect((await sh('test -e /run/smoothd')).code).not.toBe(0);
  });
  it('a failed start exits 71: `systemctl start` fails, the unit is failed, and systemd retries it', async () => {
    fs.writeFileSync(path.join(host, 'smoothd.yaml'), config('127.0.0.1:8080'));
    await ok('cp /srv/smoothd.yaml /etc/smoothd/smoothd.yaml');
    deploy('broken');
    const r = await sh('systemctl start smoothd');
    expect(r.code).not.toBe(0);
    expect(await prop('smoothd', 'ExecMainStatus')).toBe('71');
    // 71 is not in RestartPreventExitStatus: Restart=on-failure tries again after RestartSec.
    await until('systemd to restart the failed start', async () => Number(await prop('smoothd', 'NRestarts')) >= 1, 30_000);
    // reset-failed exits 1 when the stop already left the unit inactive rather than failed.
    await ok('systemctl stop smoothd; systemctl reset-failed smoothd 2>/dev/null; true');
    deploy('v2');
  });

  it('an invalid config exits 78 and is not restarted (RestartPreventExitStatus=78)', async () => {
    fs.writeFileSync(path.join(host, 'smoothd.yaml'), config('127.0.0.1:8080').replace('count: 2', 'count: -1'));
    await ok('cp /srv/smoothd.yaml /etc/smoothd/smoothd.yaml');
    const r = await sh('systemctl start smoothd');
    expect(r.code).not.toBe(0);
    expect(await prop('smoothd', 'ExecMainStatus')).toBe('78');
    expect(await prop('smoothd', 'ActiveState')).toBe('failed');
    // Three RestartSec periods (2 s each) pass without a restart.
    await new Promise((res) => setTimeout(res, 6_000));
    expect(await prop('smoothd', 'NRestarts')).toBe('0');
    expect(await prop('smoothd', 'ActiveState')).toBe('failed');
    const journal = await sh('journalctl -u smoothd --no-pager -n 100 -o cat');
    expect(journal.stdout).toMatch(/groups\.web\.count/);
    await ok('systemctl reset-failed smoothd');
  });
});
