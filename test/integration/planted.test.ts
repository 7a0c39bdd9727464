/**
 * Sockets and folders another user can plant (DESIGN §13), with the real
 * binaries. The /tmp/smoothd-$UID fallback applies to a non-root user with no
 * --socket, $SMOOTHD_SOCKET, $RUNTIME_DIRECTORY or $XDG_RUNTIME_DIR: smoothd
 * and smoothctl run as uid 65534 (setpriv) in a private mount namespace
 * whose /tmp is a bind mount of a test folder, so the machine's real
 * /tmp/smoothd-65534 is never touched. unshare --pid --kill-child: whatever a
 * test leaves inside dies with its namespace.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rpc, SMOOTHCTL, SMOOTHD, startDaemon, tempDir, track, waitFor, cleanup } from './harness.js';
import { config, group, release } from './releases.js';

const NOBODY = 65534;
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  await cleanup(); // the daemons first, then the folders they used
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A folder to serve as /tmp inside the namespace (mode 1777, like /tmp). */
function fakeTmp(): string {
  const dir = tempDir('smoothd-planted-');
  fs.chmodSync(dir, 0o1777);
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Inside the namespace the machine's /tmp is also mounted on /mnt, so a
 * checkout or a Node that lives under /tmp (a CI clone, the Node 22/24 runs)
 * stays reachable: a path under /tmp is passed as the same path under /mnt.
 */
function outsideTmp(p: string): string {
  return p === '/tmp' || p.startsWith('/tmp/') ? `/mnt${p.slice(4)}` : p;
}

/** Start the script `argv[0]` with its arguments as uid 65534, with `tmp` as its /tmp and none of the socket variables set. */
function asNobody(tmp: string, argv: string[]): { proc: ReturnType<typeof spawn>; done: Promise<Run> } {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: '/', LANG: 'C' };
  const proc = spawn(
    'unshare',
    ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--mount-proc', '--', 'sh', '-c',
      'mount --bind /tmp /mnt && mount --bind "$0" /tmp && exec setpriv --reuid 65534 --regid 65534 --clear-groups "$@"',
      tmp, outsideTmp(process.execPath), outsideTmp(argv[0]!), ...argv.slice(1)],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  track(proc.pid);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Run>((resolve) => proc.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { proc, done };
}

function smoothctlAsNobody(tmp: string, args: string[]): Promise<Run> {
  return asNobody(tmp, [SMOOTHCTL, '--timeout', '10s', ...args]).done;
}

/** A config nobody can read, inside the fake /tmp (seen as /tmp/cfg inside). */
function nobodyConfig(tmp: string): string {
  const cfg = path.join(tmp, 'cfg');
  fs.mkdirSync(cfg, { mode: 0o755 });
  fs.chmodSync(cfg, 0o755);
  fs.writeFileSync(path.join(cfg, 'smoothd.yaml'), 'groups:\n  sleeper:\n    command: [sleep, "600"]\n    ready: 100ms\n', { mode: 0o644 });
  return '/tmp/cfg/smoothd.yaml';
}

function smoothdAsNobody(tmp: string): ReturnType<typeof asNobody> {
  const run = asNobody(tmp, [SMOOTHD, '--config', nobodyConfig(tmp), '--log-format', 'json']);
  cleanups.push(async () => {
    if (run.proc.exitCode === null && run.proc.pid) {
      process.kill(run.proc.pid, 'SIGKILL'); // --kill-child takes the namespace down with it
      await run.done;
    }
  });
  return run;
}

describe('the /tmp/smoothd-$UID fallback', () => {
  it('smoothd creates the folder 0700 owned by its user; smoothctl as that user talks to it', async () => {
    const tmp = fakeTmp();
    const daemon = smoothdAsNobody(tmp);
    const folder = path.join(tmp, `smoothd-${NOBODY}`);
    const socket = path.join(folder, 'smoothd.sock');
    await Promise.race([
      waitFor('the control socket', () => fs.existsSync(socket), 15_000),
      daemon.done.then((r) => Promise.reject(new Error(`smoothd exited ${r.code}: ${r.stderr}`))),
    ]);
    const info = fs.lstatSync(folder);
    expect([info.isDirectory(), info.uid, info.mode & 0o7777]).toEqual([true, NOBODY, 0o700]);
    await waitFor('the worker to be ready', async () => (await rpc(socket, 'status')).daemon.state === 'running', 15_000);
    const status = await smoothctlAsNobody(tmp, ['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).groups[0].name).toBe('sleeper');
    const stop = await smoothctlAsNobody(tmp, ['stop']);
    expect(stop.code, stop.stderr).toBe(0);
    expect((await daemon.done).code).toBe(0);
  });

  const planted: Record<string, { setup: (folder: string, tmp: string) => void; message: RegExp }> = {
    'a symlink to a folder of that user': {
      setup: (folder, tmp) => {
        const target = path.join(tmp, 'elsewhere');
        fs.mkdirSync(target, { mode: 0o700 });
        fs.chownSync(target, NOBODY, NOBODY);
        fs.symlinkSync(target, folder);
      },
      message: /is a symbolic link, which another user may have planted/,
    },
    'mode 0755': {
      setup: (folder) => {
        fs.mkdirSync(folder);
        fs.chmodSync(folder, 0o755);
        fs.chownSync(folder, NOBODY, NOBODY);
      },
      message: /has mode 0755; it must be 0700/,
    },
    'owned by another uid': {
      setup: (folder) => {
        fs.mkdirSync(folder);
        fs.chmodSync(folder, 0o777);
        fs.chownSync(folder, NOBODY - 1, NOBODY - 1);
      },
      message: new RegExp(`belongs to uid ${NOBODY - 1}, not to this user \\(uid ${NOBODY}\\)`),
    },
  };
  for (const [name, { setup, message }] of Object.entries(planted)) {
    it(`a folder that is ${name}: smoothd exits 71 and smoothctl 77, each saying what to fix`, async () => {
      const tmp = fakeTmp();
      const folder = path.join(tmp, `smoothd-${NOBODY}`);
      setup(folder, tmp);
      const before = execFileSync('find', [tmp, '-printf', '%p %u %m\\n']).toString();
      const daemon = await smoothdAsNobody(tmp).done;
      expect(daemon.code, daemon.stderr).toBe(71);
      expect(daemon.stderr).toMatch(message);
      expect(daemon.stderr).toMatch(/remove it|chmod 0700/);
      const ctl = await smoothctlAsNobody(tmp, ['status']);
      expect(ctl.code, ctl.stderr).toBe(77);
      expect(ctl.stderr).toMatch(message);
      // Nothing was created or changed in what was planted (the config folder aside).
      expect(execFileSync('find', [tmp, '-path', path.join(tmp, 'cfg'), '-prune', '-o', '-printf', '%p %u %m\\n']).toString()).toBe(before);
    });
  }

  it('smoothctl refuses a planted socket owned by another uid and never connects to it', async () => {
    const tmp = fakeTmp();
    const folder = path.join(tmp, `smoothd-${NOBODY}`);
    fs.mkdirSync(folder, { mode: 0o700 });
    fs.chownSync(folder, NOBODY, NOBODY);
    // Root's socket in the user's folder, open to everyone, forging "reload succeeded".
    let connections = 0;
    const forger = net.createServer((c) => {
      connections += 1;
      c.on('data', () => c.end(`${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { id: 1, state: 'succeeded', groups: [] } })}\n`));
    });
    const socket = path.join(folder, 'smoothd.sock');
    await new Promise<void>((resolve) => forger.listen(socket, resolve));
    cleanups.push(() => new Promise<void>((resolve) => forger.close(() => resolve())));
    fs.chmodSync(socket, 0o666);
    const ctl = await smoothctlAsNobody(tmp, ['reload']);
    expect(ctl.code, ctl.stderr).toBe(77);
    expect(ctl.stderr).toMatch(/the control socket \/tmp\/smoothd-65534\/smoothd\.sock belongs to uid 0, not to this user \(uid 65534\); refusing to talk to it/);
    expect(connections).toBe(0);
  });
});

describe('unix listen sockets', () => {

  it('a live socket is never unlinked: smoothd exits 71 with "address in use by another process"', async () => {
    const dir = tempDir();
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    release(dir, 'v1');
    const sock = path.join(dir, 'app.sock');
    const other = net.createServer((c) => {
      c.on('error', () => undefined); // smoothd's probe connects and closes at once
      c.end('other\n');
    });
    await new Promise<void>((resolve) => other.listen(sock, resolve));
    cleanups.push(() => new Promise<void>((resolve) => other.close(() => resolve())));
    const inode = fs.lstatSync(sock).ino;
    const d = await startDaemon(config(group(dir, { count: 1, listen: [`unix:${sock}`] })), { dir, waitReady: false });
    expect((await d.exit).code).toBe(71);
    expect(d.stderr.join('')).toContain('address in use by another process');
    expect(fs.lstatSync(sock).ino).toBe(inode);
    const reply = await new Promise<string>((resolve, reject) => {
      const c = net.connect(sock);
      let text = '';
      c.on('data', (b) => (text += b.toString()));
      c.on('end', () => resolve(text));
      c.on('error', reject);
    });
    expect(reply).toBe('other\n');
  });

  it('a stale socket (nothing listens) is replaced and served', async () => {
    const dir = tempDir();
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    release(dir, 'v1');
    const sock = path.join(dir, 'app.sock');
    // Bound by a process that exited without removing it.
    execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', sock]);
    await startDaemon(config(group(dir, { count: 1, listen: [`unix:${sock}`] })), { dir });
    // The worker accepts on the socket smoothd bound in its place.
    const connected = await new Promise<boolean>((resolve) => {
      const c = net.connect(sock, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    expect(connected).toBe(true);
  });
});
