/**
 * smoothd as systemd sees it, without systemd: the test binds the notify
 * socket (a real AF_UNIX datagram socket), starts the compiled smoothd with
 * NOTIFY_SOCKET and WATCHDOG_USEC pointing at it, and reads what it sends.
 * Also `ready: notify` workers: the systemd-notify command, a raw Python
 * sender with a barrier, and the Node kit.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, smoothctl, startDaemon, tempDir, track, waitFor, cleanup } from '../integration/harness.js';
import { bindReceiver, type Receiver } from './dgram.js';

const receivers: Receiver[] = [];
afterEach(async () => {
  await cleanup();
  for (const r of receivers.splice(0)) r.close();
});

function receiver(): Receiver {
  const r = bindReceiver();
  receivers.push(r);
  return r;
}

function httpApp(dir: string, release: string): string {
  const rel = path.join(dir, release);
  fs.mkdirSync(rel, { recursive: true });
  fs.writeFileSync(path.join(rel, 'release.txt'), release);
  return rel;
}

describe('smoothd notifies systemd', () => {
  it('READY=1 only once workers are ready, STATUS kept current, RELOADING/READY around a reload, WATCHDOG=1, STOPPING=1', async () => {
    const r = receiver();
    const dir = tempDir();
    const app = httpApp(dir, 'v1');
    fs.writeFileSync(path.join(app, 'slow-ready.txt'), '600');
    const started = Date.now();
    const d = await startDaemon(
      `groups:\n  web:\n    command: [node, ${FIXTURES}/http-app.mjs]\n    cwd: ${app}\n    count: 2\n    listen: ["127.0.0.1:0"]\n    ready: ipc\n`,
      { dir, env: { NOTIFY_SOCKET: r.path, WATCHDOG_USEC: '400000' }, waitReady: false },
    );
    const ready = await r.next((m) => m.startsWith('READY=1'), 15_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    expect(ready).toBe('READY=1\nSTATUS=running: web 2/2 ready, generation 1');
    // Every worker was ready when READY=1 went out.
    const s = await d.status();
    expect(s.groups[0].workers.map((w: any) => w.state)).toEqual(['ready', 'ready']);
    for (const w of s.groups[0].workers) track(w.pid);
    const readyIndex = r.messages.indexOf(ready);
    // Before READY only STATUS (and watchdog pings).
    expect(r.messages.slice(0, readyIndex).every((m) => m.startsWith('STATUS=') || m === 'WATCHDOG=1')).toBe(true);

    // The watchdog pings every WATCHDOG_USEC/2 = 200 ms.
    const pingsBefore = r.messages.filter((m) => m === 'WATCHDOG=1').length;
    await new Promise((res) => setTimeout(res, 1_000));
    const pings = r.messages.filter((m) => m === 'WATCHDOG=1').length - pingsBefore;
    expect(pings).toBeGreaterThanOrEqual(3);
    expect(pings).toBeLessThanOrEqual(7);

    // A reload: RELOADING=1 with MONOTONIC_USEC, progress in STATUS, READY=1 at the end.
    const from = r.messages.length;
    fs.rmSync(path.join(app, 'slow-ready.txt'));
    const res = await smoothctl(d.socket, ['reload']);
    expect(res.code, res.stderr).toBe(0);
    const reloading = await r.next((m) => m.startsWith('RELOADING=1'), 5_000, from);
    expect(reloading).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading/);
    const done = await r.next((m) => m.startsWith('READY=1'), 10_000, from);
    expect(done).toBe('READY=1\nSTATUS=running: web 2/2 ready, generation 2');
    expect(r.messages.indexOf(done)).toBeGreaterThan(r.messages.indexOf(reloading));

    // Stop: STOPPING=1, then a clean exit.
    const stopFrom = r.messages.length;
    d.proc.kill('SIGTERM');
    const stopping = await r.next((m) => m.startsWith('STOPPING=1'), 5_000, stopFrom);
    expect(stopping).toMatch(/^STOPPING=1\nSTATUS=stopping/);
    expect((await d.exit).code).toBe(0);
    expect(r.messages.at(-1)).toBe('STATUS=stopped');
  });

  it('a failed start sends no READY=1 and exits 71 with the reason in STATUS', async () => {
    const r = receiver();
    const dir = tempDir();
    const app = httpApp(dir, 'bad');
    fs.writeFileSync(path.join(app, 'crash.txt'), 'cannot load the app');
    const d = await startDaemon(`groups:\n  web:\n    command: [node, ${FIXTURES}/http-app.mjs]\n    cwd: ${app}\n    listen: ["127.0.0.1:0"]\n    ready: ipc\n`, {
      dir,
      env: { NOTIFY_SOCKET: r.path },
      waitReady: false,
    });
    expect((await d.exit).code).toBe(71);
    expect(await r.next((m) => m.includes('start failed'))).toMatch(/^STATUS=start failed: web worker \d+: exited with code 1 before it was ready$/);
    expect(r.messages.some((m) => m.includes('READY=1'))).toBe(false);
    expect(r.messages.some((m) => m.startsWith('STOPPING=1'))).toBe(true);
  });
});

describe('ready: notify workers', () => {
  it('each worker gets its own NOTIFY_SOCKET; systemd-notify, a raw Python sender with BARRIER=1 and the Node kit all work; STATUS shows in status', async () => {
    const outer = receiver(); // smoothd's own NOTIFY_SOCKET must not leak into workers
    const dir = tempDir();
    const app = httpApp(dir, 'v1');
    const started = Date.now();
    const d = await startDaemon(
      [
        'groups:',
        '  shell:',
        `    command: [sh, -c, 'echo "NOTIFY_SOCKET=$NOTIFY_SOCKET" >&2; systemd-notify --ready --status="shell worker up" && exec sleep 600']`,
        '    count: 2',
        '    ready: notify',
        '    readyTimeout: 10s',
        '  python:',
        `    command: [python3, ${FIXTURES}/notify-worker.py]`,
        '    ready: notify',
        '    readyTimeout: 10s',
        '  web:',
        `    command: [node, ${FIXTURES}/http-app.mjs]`,
        `    cwd: ${app}`,
        '    listen: ["127.0.0.1:0"]',
        '    ready: notify',
        '  plain:',
        `    command: [sh, -c, 'echo "plain NOTIFY_SOCKET=[$NOTIFY_SOCKET]" >&2; exec sleep 600']`,
        '    ready: 100ms',
      ].join('\n') + '\n',
      { dir, env: { NOTIFY_SOCKET: outer.path } },
    );
    // A plain `systemd-notify --ready` waits up to 5 s for its barrier unless the fd is dropped.
    expect(Date.now() - started).toBeLessThan(4_500);
    const s = await d.status();
    const byGroup = Object.fromEntries(s.groups.map((g: any) => [g.name, g.workers]));
    expect(byGroup.shell.map((w: any) => w.statusText)).toEqual(['shell worker up', 'shell worker up']);
    expect(byGroup.python[0].statusText).toBe(`python serving, pid ${byGroup.python[0].pid}`);
    expect(byGroup.web[0].state).toBe('ready');

    const lines = d.logs.filter((l) => typeof l.msg === 'string');
    const sockets = lines.filter((l) => String(l.msg).startsWith('NOTIFY_SOCKET=')).map((l) => String(l.msg).slice('NOTIFY_SOCKET='.length));
    expect(sockets).toHaveLength(2);
    expect(new Set(sockets).size).toBe(2);
    // Both in one fresh mkdtemp folder next to the control socket, never a predictable notify.PID name.
    const folder = path.dirname(sockets[0]!);
    for (const p of sockets) {
      expect(p).not.toBe(outer.path);
      expect(path.dirname(p)).toBe(folder);
    }
    expect(path.dirname(folder)).toBe(dir);
    expect(path.basename(folder)).toMatch(/^notify-\w{6}$/);
    expect(lines.some((l) => l.msg === 'plain NOTIFY_SOCKET=[]')).toBe(true);
    const barrier = lines.find((l) => String(l.msg).startsWith('barrier '));
    expect(barrier?.msg).toMatch(/^barrier released after 0\.\d+ s$/);

    // The table shows the STATUS text too.
    const table = await smoothctl(d.socket, ['status']);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('shell worker up');
    expect(table.stdout).toContain('python serving');

    // A reload rolls notify workers like any other; their sockets are removed with them.
    const res = await smoothctl(d.socket, ['reload', '--group', 'shell']);
    expect(res.code, res.stderr).toBe(0);
    await waitFor('old shell sockets removed', () => sockets.every((p) => !fs.existsSync(p)));
    d.proc.kill('SIGTERM');
    expect((await d.exit).code).toBe(0);
    expect(fs.existsSync(folder)).toBe(false);
  });

  it('without unix-dgram, --check and start fail with exit 78 and say how to fix it', async () => {
    // A copy of the package whose node_modules has everything but unix-dgram.
    const { ROOT } = await import('../integration/harness.js');
    const pkg = tempDir('smoothd-nodgram-');
    fs.cpSync(path.join(ROOT, 'bin'), path.join(pkg, 'bin'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'dist'), path.join(pkg, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
    fs.mkdirSync(path.join(pkg, 'node_modules'));
    for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
      if (name === 'unix-dgram' || name === '.bin') continue;
      fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(pkg, 'node_modules', name));
    }
    const cfg = path.join(pkg, 'smoothd.yaml');
    fs.writeFileSync(cfg, 'groups:\n  web:\n    command: [sleep, "600"]\n    ready: notify\n');
    const { execFile } = await import('node:child_process');
    const run = (args: string[]) =>
      new Promise<{ code: number; stderr: string }>((resolve) => {
        const child = execFile(process.execPath, [path.join(pkg, 'bin/smoothd.js'), '--config', cfg, '--socket', path.join(pkg, 'ctl.sock'), ...args], { timeout: 15_000 }, (err, _o, stderr) =>
          resolve({ code: err ? ((err as any).code as number) : 0, stderr }),
        );
        track(child.pid);
      });
    for (const args of [['--check'], []]) {
      const res = await run(args);
      expect(res.code).toBe(78);
      expect(res.stderr).toMatch(/groups\.web\.ready: got "notify", but the optional package unix-dgram/);
      expect(res.stderr).toMatch(/npm install -g unix-dgram/);
    }
    fs.rmSync(pkg, { recursive: true, force: true });
  });
});
