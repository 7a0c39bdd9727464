/**
 * smoothctl against the REAL daemon: exit codes (DESIGN §2), `--json` output
 * checked against the status document of DESIGN §6, progress on stderr (lines
 * off a terminal, a live bar under a pseudo-terminal), stop, --no-wait,
 * restart of a non-reloadable group, reload --group, and the socket's
 * permissions with a real unprivileged user.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { statusShapeProblems } from './status-shape.js';
import { cleanup, FIXTURES, ROOT, SMOOTHCTL, alive, rpc, smoothctl, startDaemon, tempDir, track, waitFor, type Daemon } from './harness.js';

const APP = path.join(FIXTURES, 'http-app.mjs');
const CTL_WORKER = path.join(FIXTURES, 'ctl-worker.mjs');


/** Run a command line; resolve with its exit code and output (never rejects). */
function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env: { ...process.env, ...env }, timeout: 30_000, cwd: ROOT }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
    track(child.pid);
  });
}

describe('smoothctl against a running smoothd', () => {
  let d: Daemon;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir();
    d = await startDaemon(
      `
groups:
  web:
    command: [node, ${APP}]
    count: 2
    listen: ["127.0.0.1:0"]
    ready: ipc
    readyTimeout: 10s
  api:
    command: [node, ${APP}]
    count: 1
    listen: ["127.0.0.1:0"]
    ready: ipc
  gw:
    command: [node, ${APP}]
    count: 1
    listen: ["127.0.0.1:0"]
    ready: ipc
    reloadable: false
`,
      { dir },
    );
  }, 30_000);

  afterAll(async () => {
    await cleanup();
  });

  it('status --json prints the status document of DESIGN §6, every field with its type', async () => {
    const r = await smoothctl(d.socket, ['status', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(statusShapeProblems(doc)).toEqual([]);
    expect(doc.daemon).toMatchObject({ pid: d.pid, state: 'running', platform: 'linux', configPath: d.configPath });
    expect(doc.groups.map((g: { name: string }) => g.name)).toEqual(['web', 'api', 'gw']);
    expect(doc.groups[0].workers).toHaveLength(2);
    expect(doc.groups[2].reloadable).toBe(false);
    // listen[].bound is the real address: the port the kernel chose for :0.
    expect(doc.groups[0].listen[0].bound).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
    // Before any reload the reload section is idle, never null.
    expect(doc.reload).toMatchObject({ id: 0, state: 'idle', done: 0, total: 0 });
  });

  it('status prints a table with every worker', async () => {
    const r = await smoothctl(d.socket, ['status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^smoothd \S+ \(pid \d+\) running/);
    expect(r.stdout).toMatch(/GROUP\s+ID\s+PID\s+GEN\s+STATE\s+UPTIME\s+RESTARTS\s+MEM/);
    for (const pid of await d.workerPids()) expect(r.stdout).toContain(String(pid));
  });

  it('reload: exit 0, one progress line per step on stderr (not a TTY), a one-line summary on stdout', async () => {
    const before = await d.workerPids('web');
    const r = await smoothctl(d.socket, ['reload']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^reload \d+ succeeded in \d+\.\d s: web 2\/2, api 1\/1, gw skipped\n$/);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        'reading the config file',
        'gw: not reloadable, skipped',
        expect.stringMatching(/^web: worker \d+ \(pid \d+\) started \[0\/2\]$/),
        expect.stringMatching(/^web: worker \d+ \(pid \d+\) ready \[1\/2\]$/),
        expect.stringMatching(/^web: old worker \d+ \(pid \d+\) draining \[\d\/2\]$/),
        expect.stringMatching(/^web: old worker \d+ \(pid \d+\) exited \[\d\/2\]$/),
        'web: 2/2 workers replaced [2/2]',
        'api: 1/1 workers replaced [1/1]',
      ]),
    );
    // No escape sequences off a terminal.
    expect(r.stderr).not.toMatch(/\x1b|\r/);
    for (const pid of await d.workerPids('web')) expect(before).not.toContain(pid);
  });

  it('reload --json prints the final report; reload --group rolls only that group', async () => {
    const web = await d.workerPids('web');
    const api = await d.workerPids('api');
    const r = await smoothctl(d.socket, ['reload', '--group', 'api', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ state: 'succeeded', error: null, failure: null, done: 1, total: 1 });
    expect(typeof report.id).toBe('number');
    expect(typeof report.durationMs).toBe('number');
    expect(report.groups.find((g: { name: string }) => g.name === 'api')).toMatchObject({ state: 'rolled', done: 1, total: 1 });
    expect(report.groups.find((g: { name: string }) => g.name === 'web')?.state ?? 'skipped').not.toBe('rolled');
    expect((await d.workerPids('web')).sort()).toEqual(web.sort());
    for (const pid of await d.workerPids('api')) expect(api).not.toContain(pid);
  });

  it('restart GROUP rolls a reloadable: false group', async () => {
    const gw = await d.workerPids('gw');
    const r = await smoothctl(d.socket, ['restart', 'gw']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^restart \d+ succeeded in \d+\.\d s: gw 1\/1\n$/);
    const after = await d.workerPids('gw');
    expect(after).toHaveLength(1);
    expect(gw).not.toContain(after[0]);
  });

  it('exit 1 on a broken release, with the worker\'s own stderr line; the old workers keep serving', async () => {
    const before = (await d.workerPids('web')).sort();
    fs.writeFileSync(path.join(dir, 'crash.txt'), 'Error: Cannot find module ./db-config.js');
    try {
      const r = await smoothctl(d.socket, ['reload']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^reload \d+ failed: web: /);
      expect(r.stderr).toContain('Error: Cannot find module ./db-config.js');
    } finally {
      fs.rmSync(path.join(dir, 'crash.txt'), { force: true });
    }
    expect((await d.workerPids('web')).sort()).toEqual(before);
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
  });

  it('exit 64 on usage errors and on an unknown group (answered by the daemon)', async () => {
    const usage = await smoothctl(d.socket, ['reload', '--grup', 'web']);
    expect(usage.code).toBe(64);
    expect(usage.stderr).toMatch(/^smoothctl: unknown option --grup; see smoothctl --help\n$/);
    const unknown = await smoothctl(d.socket, ['restart', 'nosuch']);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain('unknown group "nosuch"');
  });

  it('--no-wait prints the reload id and returns; the roll goes on', async () => {
    const r = await smoothctl(d.socket, ['reload', '--no-wait']);
    expect(r.code, r.stderr).toBe(0);
    const m = /^reload (\d+) (running|queued)\n$/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(r.stderr).toBe('');
    const id = Number(m![1]);
    await waitFor(`reload ${id} to succeed`, async () => {
      const s = await d.status();
      return s.reload.id === id && s.reload.state === 'succeeded';
    });
  });

  const hasScript = ['/usr/bin/script', '/bin/script'].some((p) => fs.existsSync(p));
  if (!hasScript) console.log('pseudo-terminal test skipped: `script` (util-linux) is not installed');
  it.skipIf(!hasScript)('draws a live progress bar under a pseudo-terminal (script -qec)', async () => {
    const cmd = [process.execPath, SMOOTHCTL, '--socket', d.socket, 'reload'].map((a) => `'${a}'`).join(' ');
    const r = await run('script', ['-qec', cmd, '/dev/null'], { LANG: 'C.UTF-8', TERM: 'xterm' });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = r.stdout;
    // Frames redrawn in place: carriage return, the frame, erase to the end of the line.
    expect(out).toMatch(/\rreload \d+ web \[[█░]+\] [0-2]\/2 \d+\.\ds [^\r\n]*\x1b\[K/);
    // Permanent lines for the notable steps, then the bar is erased before the summary.
    expect(out).toContain('gw: not reloadable, skipped');
    expect(out).toContain('web: 2/2 workers replaced [2/2]');
    expect(out).toMatch(/\r\x1b\[Kreload \d+ succeeded in \d+\.\d s: web 2\/2, api 1\/1, gw skipped/);
    // No frame wraps the (80-column) terminal.
    for (const frame of out.split(/\r|\n/)) expect(frame.replace(/\x1b\[K/g, '').length).toBeLessThan(80);
  });
});

describe('smoothctl when the daemon is down, slow or stopping', () => {
  let d: Daemon | null = null;
  afterEach(async () => {
    await cleanup();
    d = null;
  });

  it('exit 69 with the "start it with" hint when no daemon runs', async () => {
    const missing = path.join(tempDir(), 'nothing.sock');
    const r = await smoothctl(missing, ['status']);
    expect(r.code).toBe(69);
    expect(r.stderr).toBe(
      `smoothctl: smoothd is not running (no socket at ${missing}); start it with \`systemctl start smoothd\` or \`smoothd --config FILE\`\n`,
    );
  });

  it('exit 75 when --timeout expires during a reload (the daemon carries on); exit 2 while stopping; stop waits for the exit', async () => {
    // The new worker is ready, and drains, only when the test says so (HOLD_DIR): no step depends on
    // how long a smoothctl takes to start on a busy machine.
    const hold = tempDir();
    d = await startDaemon(`
groups:
  slow:
    command: [node, ${CTL_WORKER}]
    env: { HOLD_DIR: "${hold}" }
    ready: ipc
    readyTimeout: 60s
    stopTimeout: 60s
`);
    const daemon = d;
    // 75: the new worker is not ready until dir/ready exists; smoothctl gives up after 200 ms.
    const r = await smoothctl(daemon.socket, ['--timeout', '200ms', 'reload']);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/timed out after 200 ms \(--timeout\); smoothd carries on/);
    expect((await daemon.status()).reload.state).toBe('running');
    fs.writeFileSync(path.join(hold, 'ready'), '');
    await waitFor('the reload to finish anyway', async () => (await daemon.status()).reload.state === 'succeeded', 20_000);

    // stop --no-wait returns at once; the new worker drains until dir/stop exists.
    const noWait = await smoothctl(daemon.socket, ['stop', '--no-wait']);
    expect(noWait.code, noWait.stderr).toBe(0);
    expect(noWait.stdout).toBe(`smoothd is stopping (pid ${daemon.pid})\n`);
    expect(alive(daemon.pid)).toBe(true);

    // 2: a reload while stopping is refused.
    const refused = await smoothctl(daemon.socket, ['reload']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^smoothctl: reload refused: smoothd is stopping/);

    // stop (waiting) returns only once the daemon has exited: the drain ends after its request arrived.
    const stopping = smoothctl(daemon.socket, ['stop']);
    const stopRequests = (): number => daemon.logs.filter((l) => l.msg === 'stop requested over the control socket').length;
    await waitFor('the second stop request to reach smoothd', () => stopRequests() === 2, 20_000);
    expect(alive(daemon.pid)).toBe(true);
    fs.writeFileSync(path.join(hold, 'stop'), '');
    const stop = await stopping;
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toBe('smoothd stopped\n');
    expect(alive(daemon.pid)).toBe(false);
    expect((await daemon.exit).code).toBe(0);
    expect(fs.existsSync(daemon.socket)).toBe(false);
  });
});

describe('socket permissions with a real unprivileged user', () => {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasSetpriv = ['/usr/bin/setpriv', '/bin/setpriv'].some((p) => fs.existsSync(p));
  let d: Daemon | null = null;
  afterEach(async () => {
    await cleanup();
    d = null;
  });

  if (!isRoot || !hasSetpriv) {
    const why = !isRoot ? 'not running as root (setpriv --reuid nobody needs root)' : 'setpriv (util-linux) is not installed';
    it.skip(`socket permissions with user nobody: ${why}`, () => undefined);
    console.log(`socket permission tests skipped: ${why}`);
    return;
  }

  /** smoothctl as nobody:nogroup with no supplementary groups. */
  const asNobody = (socket: string, args: string[]) =>
    run('setpriv', ['--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', process.execPath, SMOOTHCTL, '--socket', socket, ...args]);

  /** A daemon whose socket folder others may enter, so only the socket's own mode decides. */
  async function daemonWith(socketLines: string): Promise<Daemon> {
    const dir = tempDir();
    fs.chmodSync(dir, 0o755);
    return startDaemon(
      `${socketLines}
groups:
  web:
    command: [node, ${CTL_WORKER}]
    ready: ipc
`,
      { dir },
    );
  }

  it('the default mode (0600) refuses another user: exit 77 with what to do', async () => {
    d = await daemonWith('');
    expect(fs.statSync(d.socket).mode & 0o777).toBe(0o600);
    const r = await asNobody(d.socket, ['status']);
    expect(r.code).toBe(77);
    expect(r.stderr).toBe(
      `smoothctl: permission denied on the control socket ${d.socket}: run smoothctl as root (sudo smoothctl …), ` +
        'or as a member of the group set by socketGroup in the smoothd config (with a socketMode like "0660")\n',
    );
    // root still gets in
    expect((await smoothctl(d.socket, ['status'])).code).toBe(0);
  });

  it('socketMode "0660" + socketGroup lets a member of that group in', async () => {
    d = await daemonWith('socketMode: "0660"\nsocketGroup: nogroup');
    const st = fs.statSync(d.socket);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(65534);
    const r = await asNobody(d.socket, ['status', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).daemon.pid).toBe(d.pid);
    // The status call went through the real socket as uid 65534.
    expect((await rpc(d.socket, 'status')).groups[0].workers).toHaveLength(1);
  });
});
