import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ERROR_CODES, rpcErrors, RpcError } from '../../src/control/errors.js';
import type { ControlServer } from '../../src/control/server.js';
import type { ReloadReport, StatusDocument } from '../../src/supervisor/report.js';
import { fakeHandlers, Harness, sleep } from '../control/helpers.js';
import { BIN, ROOT } from './build.js';

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

const children = new Set<ChildProcess>();

function run(args: string[], opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<RunResult> {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`smoothctl ${args.join(' ')} did not exit within 20 s; stderr: ${stderr}`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

const noVerification = {
  revision: null,
  verification: { bakeMs: 0, canary: { workerId: null, requests: 0, errors: 0 }, old: { requests: 0, errors: 0 }, verdict: 'off' as const },
  rollback: null,
};

function report(over: Partial<ReloadReport> = {}): ReloadReport {
  return {
    id: 3,
    state: 'succeeded',
    trigger: 'rpc',
    startedAt: '2025-01-01T00:00:00.000Z',
    readyAt: '2025-01-01T00:00:01.000Z',
    finishedAt: '2025-01-01T00:00:01.200Z',
    durationMs: 1200,
    readyMs: 1000,
    done: 4,
    total: 4,
    error: null,
    errorCode: null,
    failure: null,
    queued: null,
    rollback: null,
    groups: [
      { name: 'web', state: 'rolled', done: 4, total: 4, generation: 2, ...noVerification },
      { name: 'gateway', state: 'skipped', done: 0, total: 0, generation: 1, ...noVerification },
    ],
    ...over,
  };
}

const failedReport = report({
  state: 'failed',
  durationMs: 800,
  done: 1,
  error: 'web: worker 9 exited with code 1 before ready',
  errorCode: ERROR_CODES.RELOAD_FAILED,
  failure: {
    group: 'web',
    workerId: 9,
    slot: 1,
    pid: 4321,
    reason: 'worker 9 exited with code 1 before ready',
    stderrTail: ['Error: Cannot find module ./routes', '    at load (server.js:3)'],
  },
  groups: [{ name: 'web', state: 'failed', done: 1, total: 4, generation: 2, ...noVerification }],
});

const now = Date.now();
const statusDoc: StatusDocument = {
  version: 1,
  daemon: {
    pid: 4242,
    version: '0.1.0',
    state: 'running',
    startedAt: new Date(now - 3_720_000).toISOString(),
    uptimeMs: 3_720_000,
    platform: 'linux',
    configPath: '/etc/smoothd/smoothd.yaml',
  },
  reload: { ...report(), finishedAt: new Date(now - 120_000).toISOString() },
  groups: [
    {
      name: 'web',
      reloadable: true,
      generation: 2,
      desired: 2,
      pending: false,
      listen: [{ name: 'listen0', address: '127.0.0.1:8080', bound: '127.0.0.1:8080' }],
      workers: [
        {
          id: 7,
          slot: 0,
          pid: 1234,
          generation: 2,
          state: 'ready',
          startedAt: new Date(now - 125_000).toISOString(),
          readyAt: new Date(now - 124_000).toISOString(),
          restarts: 0,
          rssBytes: 47_395_635,
          statusText: 'serving',
          lastExit: null,
        },
        {
          id: null,
          slot: 1,
          pid: null,
          generation: 2,
          state: 'backoff',
          startedAt: null,
          readyAt: null,
          restarts: 3,
          rssBytes: null,
          statusText: null,
          lastExit: { code: 1, signal: null, at: new Date(now).toISOString(), reason: 'crashed' },
        },
      ],
      revision: 'a1b2c3d',
      history: [
        { generation: 3, createdAt: new Date(now - 60_000).toISOString(), cwd: '/srv/app/releases/3', command: ['node', 'server.js'], revision: 'e4f5a6b', state: 'bad' },
        { generation: 2, createdAt: new Date(now - 125_000).toISOString(), cwd: '/srv/app/releases/2', command: ['node', 'server.js'], revision: 'a1b2c3d', state: 'current' },
        { generation: 1, createdAt: new Date(now - 300_000).toISOString(), cwd: '/srv/app/releases/1', command: ['node', 'server.js'], revision: null, state: 'good' },
      ],
    },
    { name: 'gateway', reloadable: false, generation: 1, desired: 1, pending: true, listen: [], workers: [], revision: null, history: [] },
  ],
};

let h: Harness;
let calls: Array<[string, unknown]>;

beforeEach(() => {
  h = new Harness();
  calls = [];
});

afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  await h.cleanup();
});

async function daemon(overrides: Parameters<typeof fakeHandlers>[0] = {}): Promise<ControlServer> {
  const record =
    <P,>(name: string, fn: (p: P, ctx: never) => Promise<unknown>) =>
    (p: P, ctx: never) => {
      calls.push([name, p]);
      return fn(p, ctx);
    };
  const base = fakeHandlers({ status: async () => statusDoc, ...overrides });
  return h.server({
    handlers: {
      reload: record('reload', base.reload),
      restart: record('restart', base.restart),
      rollback: record('rollback', base.rollback),
      status: record('status', base.status),
      stop: record('stop', base.stop),
    },
  });
}

const progress = (done: number, workerId: number, pid: number) => ({
  id: 3,
  group: 'web',
  event: 'worker-ready',
  message: `worker ${workerId} (pid ${pid}) ready`,
  done,
  total: 4,
  workerId,
  pid,
});

describe('smoothctl status', () => {
  it('--json prints the status document unchanged', async () => {
    const d = await daemon();
    const r = await run(['--socket', d.path, 'status', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(statusDoc);
    expect(r.stderr).toBe('');
    expect(calls).toEqual([['status', {}]]);
  });

  it('prints a table like pm2 ls', async () => {
    const d = await daemon();
    const r = await run(['status', '--socket', d.path]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('smoothd 0.1.0 (pid 4242) running, up 1h 2m, config /etc/smoothd/smoothd.yaml');
    expect(lines[1]).toBe('reload 3 succeeded (2m ago)');
    expect(lines[2]).toMatch(/^GROUP\s+ID\s+PID\s+GEN\s+STATE\s+UPTIME\s+RESTARTS\s+MEM\s+STATUS$/);
    expect(lines[3]).toMatch(/^web\s+7\s+1234\s+2\s+ready\s+2m\s+0\s+45\.2 MiB\s+serving$/);
    expect(lines[4]).toMatch(/^web\s+-\s+-\s+2\s+backoff\s+-\s+3\s+-\s+last exit: crashed$/);
    expect(lines[5]).toMatch(/^gateway\*\s+-\s+-\s+1\s+none/);
    // The release history, with a bad generation marked.
    expect(lines[6]).toBe('releases web: 3 BAD e4f5a6b, 2 current a1b2c3d, 1 good');
    expect(r.stdout).toContain('smoothctl restart gateway');
  });

  it('uses $SMOOTHD_SOCKET when --socket is not given', async () => {
    const d = await daemon();
    const r = await run(['status', '--json'], { env: { SMOOTHD_SOCKET: d.path } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: 1 });
  });

  it('exits 69 with a clear message when smoothd is not running', async () => {
    const path = join(h.dir(), 'nothing.sock');
    const r = await run(['--socket', path, 'status']);
    expect(r.code).toBe(69);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `smoothctl: smoothd is not running (no socket at ${path}); start it with \`systemctl start smoothd\` or \`smoothd --config FILE\`\n`,
    );
  });

  it('--json prints a JSON error object on stdout when smoothd is not running (exit 69)', async () => {
    const path = join(h.dir(), 'nothing.sock');
    const r = await run(['--socket', path, 'status', '--json']);
    expect(r.code).toBe(69);
    const out = JSON.parse(r.stdout) as { error: { code: unknown; message: string; data: Record<string, unknown> } };
    expect(out.error.code).toBeNull();
    expect(out.error.message).toContain(`no socket at ${path}`);
    expect(out.error.data).toEqual({ exitCode: 69, reason: 'unreachable', socket: path });
    expect(r.stderr).toContain('smoothd is not running');
  });

  it('--json prints the error reply like reload --json does when smoothd answers with an error', async () => {
    const d = await daemon({
      status: async () => {
        throw new RpcError(ERROR_CODES.INTERNAL, 'internal error: boom');
      },
    });
    const r = await run(['--socket', d.path, 'status', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: ERROR_CODES.INTERNAL, message: 'internal error: boom', data: null } });
  });

  it('accepts a compound --timeout like 1m30s (the config parser) and times out with --json as JSON', async () => {
    const d = await daemon({ status: () => new Promise(() => undefined) });
    const r = await run(['--socket', d.path, '--timeout', '0m0.3s', 'status', '--json']);
    expect(r.code).toBe(75);
    expect(JSON.parse(r.stdout).error.data).toMatchObject({ exitCode: 75, reason: 'timeout' });
  });

  it('exits 75 when --timeout expires', async () => {
    const d = await daemon({ status: () => new Promise(() => undefined) });
    const r = await run(['--socket', d.path, '--timeout', '300ms', 'status']);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/status timed out after 300 ms \(--timeout\); smoothd carries on/);
    expect(r.ms).toBeLessThan(5000);
  });
});

describe('smoothctl reload', () => {
  it('prints progress lines to stderr and a one-line summary to stdout', async () => {
    const d = await daemon({
      reload: async (_p, ctx) => {
        ctx.notify('reload.progress', progress(1, 7, 1234));
        ctx.notify('reload.progress', progress(2, 8, 1235));
        ctx.notify('reload.progress', { id: 3, group: null, event: 'done', message: 'old workers drained', done: 4, total: 4 });
        return report();
      },
    });
    const r = await run(['reload', '--socket', d.path]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('web: worker 7 (pid 1234) ready [1/4]\nweb: worker 8 (pid 1235) ready [2/4]\nold workers drained [4/4]\n');
    expect(r.stdout).toBe('reload 3 succeeded in 1.2 s: web 4/4, gateway skipped\n');
    expect(calls).toEqual([['reload', { wait: true }]]);
  });

  it('--json prints the final report', async () => {
    const d = await daemon({
      reload: async (_p, ctx) => {
        ctx.notify('reload.progress', progress(1, 7, 1234));
        return report();
      },
    });
    const r = await run(['--socket', d.path, 'reload', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(report());
    expect(r.stderr).toBe('web: worker 7 (pid 1234) ready [1/4]\n');
  });

  it('passes --group (repeated or comma-separated)', async () => {
    const d = await daemon({ reload: async () => report() });
    const r = await run(['--socket', d.path, 'reload', '--group', 'web', '-g', 'api,jobs', '--group=web']);
    expect(r.code).toBe(0);
    expect(calls).toEqual([['reload', { groups: ['web', 'api', 'jobs'], wait: true }]]);
  });

  it('exits 1 on a failed reload, with the reason on stdout and the stderr tail on stderr', async () => {
    const d = await daemon({
      reload: async () => {
        throw new RpcError(ERROR_CODES.RELOAD_FAILED, 'reload 3 failed', failedReport);
      },
    });
    const r = await run(['--socket', d.path, 'reload']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('reload 3 failed: web: worker 9 exited with code 1 before ready\n');
    expect(r.stderr).toBe(
      'last stderr lines of web worker 9 (pid 4321):\n  Error: Cannot find module ./routes\n      at load (server.js:3)\n',
    );
  });

  it('exits 1 on a failed reload with --json, printing the report', async () => {
    const d = await daemon({
      reload: async () => {
        throw new RpcError(ERROR_CODES.RELOAD_FAILED, 'reload 3 failed', failedReport);
      },
    });
    const r = await run(['--socket', d.path, 'reload', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual(failedReport);
  });

  it('exits 2 when refused on Windows, saying Windows', async () => {
    const d = await daemon({
      reload: async () => {
        throw rpcErrors.reloadRefusedWindows();
      },
    });
    const r = await run(['--socket', d.path, 'reload']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^smoothctl: reload refused: .*Windows/);
  });

  it('rollback: prints the generation each group is back on, and a refusal once (exit 2)', async () => {
    const ok = await daemon({ rollback: async () => report({ trigger: 'rollback', groups: [{ name: 'web', state: 'rolled', done: 4, total: 4, generation: 1, ...noVerification }] }) });
    const r = await run(['--socket', ok.path, 'rollback', 'web']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('rollback 3 succeeded in 1.2 s: web 4/4 back on generation 1\n');
    expect(calls).toContainEqual(['rollback', { groups: ['web'], wait: true }]);
    await ok.close();
    const refused = await daemon({
      rollback: async () => {
        throw new RpcError(ERROR_CODES.ROLLBACK_REFUSED, "rollback refused: web: generation 1's folder /srv/app/releases/41 no longer exists (deleted release?); nothing was changed");
      },
    });
    const no = await run(['--socket', refused.path, 'rollback']);
    expect(no.code).toBe(2);
    expect(no.stdout).toBe('');
    expect(no.stderr).toBe("smoothctl: rollback refused: web: generation 1's folder /srv/app/releases/41 no longer exists (deleted release?); nothing was changed\n");
  });

  it('exits 2 when smoothd is stopping (and prints the error as JSON with --json)', async () => {
    const d = await daemon({
      reload: async () => {
        throw rpcErrors.daemonStopping();
      },
    });
    const r = await run(['--socket', d.path, 'reload', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: -32003, message: 'smoothd is stopping; request refused' } });
  });

  it('exits 64 for an unknown group', async () => {
    const d = await daemon({
      reload: async () => {
        throw rpcErrors.unknownGroup('wbe', ['web']);
      },
    });
    const r = await run(['--socket', d.path, 'reload', '--group', 'wbe']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('unknown group "wbe" (groups: web)');
  });

  it('--no-wait prints the reload id and state', async () => {
    const d = await daemon({ reload: async () => ({ id: 4, state: 'queued' }) });
    const r = await run(['--socket', d.path, 'reload', '--no-wait']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('reload 4 queued\n');
    expect(calls).toEqual([['reload', { wait: false }]]);
  });

  it('exits 75 when --timeout expires (the daemon carries on)', async () => {
    const d = await daemon({ reload: () => new Promise(() => undefined) });
    const r = await run(['--socket', d.path, '--timeout', '300ms', 'reload']);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/reload timed out after 300 ms/);
  });

  it('exits 69 when smoothd drops the connection before answering', async () => {
    const d = await daemon({
      reload: async () => {
        setTimeout(() => void d.close(), 10);
        return new Promise(() => undefined);
      },
    });
    const r = await run(['--socket', d.path, 'reload']);
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/closed the connection .* before answering/);
  });
});

describe('smoothctl restart', () => {
  it('rolls one group and prints a summary', async () => {
    const d = await daemon({ restart: async () => report({ id: 5, trigger: 'restart', groups: [{ name: 'gateway', state: 'rolled', done: 1, total: 1, generation: 2, ...noVerification }] }) });
    const r = await run(['--socket', d.path, 'restart', 'gateway']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('restart 5 succeeded in 1.2 s: gateway 1/1\n');
    expect(calls).toEqual([['restart', { group: 'gateway', wait: true }]]);
  });

  it('exits 1 when the restart fails', async () => {
    const d = await daemon({
      restart: async () => {
        throw new RpcError(ERROR_CODES.RELOAD_FAILED, 'restart failed', { ...failedReport, id: 6 });
      },
    });
    const r = await run(['--socket', d.path, 'restart', 'web', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: 6, state: 'failed' });
  });
});

describe('smoothctl stop', () => {
  it('waits until smoothd has exited', async () => {
    const fakeDaemonProcess = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    children.add(fakeDaemonProcess);
    const d = await daemon({
      stop: async () => {
        setTimeout(() => {
          void d.close();
          setTimeout(() => fakeDaemonProcess.kill('SIGKILL'), 200);
        }, 400);
        return { pid: fakeDaemonProcess.pid, state: 'stopping' };
      },
    });
    const r = await run(['--socket', d.path, 'stop']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('smoothd stopped\n');
    expect(r.ms).toBeGreaterThanOrEqual(550);
    expect(fakeDaemonProcess.exitCode !== null || fakeDaemonProcess.signalCode !== null).toBe(true);
    expect(calls).toEqual([['stop', { wait: true }]]);
  });

  it('--no-wait returns once stopping began', async () => {
    const d = await daemon({ stop: async () => ({ pid: 4242, state: 'stopping' }) });
    const r = await run(['--socket', d.path, 'stop', '--no-wait']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('smoothd is stopping (pid 4242)\n');
  });

  it('counts a daemon that exits before answering as stopped', async () => {
    const d = await daemon({
      stop: async () => {
        setTimeout(() => void d.close(), 10);
        return new Promise(() => undefined);
      },
    });
    const r = await run(['--socket', d.path, 'stop']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('smoothd stopped\n');
  });

  it('exits 75 when smoothd is still stopping at --timeout', async () => {
    const d = await daemon({ stop: async () => ({ state: 'stopping' }) });
    const r = await run(['--socket', d.path, '--timeout', '400ms', 'stop']);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/stop timed out after 400 ms/);
  });
});

describe('smoothctl usage', () => {
  it.each([
    [[], /no command given/],
    [['stauts'], /unknown command "stauts"/],
    [['reload', '--grup', 'web'], /unknown option --grup/],
    [['status', '--timeout', 'soon'], /invalid duration "soon"/],
    [['status', '--timeout'], /option --timeout needs a value/],
    [['restart'], /restart needs GROUP/],
    [['restart', 'a', 'b'], /unexpected argument "b"/],
    [['restart', 'bad/name'], /invalid group "bad\/name"/],
    [['status', '--group', 'web'], /option --group does not apply to status/],
    [['stop', '--json=maybe'], /option --json takes no value|does not apply/],
    [['--socket', '/tmp/' + 'x'.repeat(120), 'status'], /107-byte limit/],
  ])('%j exits 64 with a one-line message', async (args, message) => {
    const r = await run(args as string[]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('--help and help COMMAND print help and exit 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: smoothctl');
    expect(r.stdout).toContain('Exit codes:');
    expect(r.stdout).toMatch(/75\s+--timeout expired/);
    const r2 = await run(['reload', '--help']);
    expect(r2.code).toBe(0);
    expect(r2.stdout).toContain('Usage: smoothctl reload [--group NAME]... [--no-wait] [--json]');
    expect(r2.stdout).toContain('--no-wait');
    const r3 = await run(['help', 'errors']);
    expect(r3.stdout).toMatch(/-32002\s+RELOAD_REFUSED_WINDOWS/);
  });

  it('--version and -V print the package version', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await run([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^smoothctl \d+\.\d+\.\d+\n$/);
    }
  });
});

const canTestPermission =
  process.getuid?.() === 0 &&
  spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(BIN)})`], { uid: 65534, gid: 65534 }).status === 0;

describe('smoothctl permissions', () => {
  it.skipIf(!canTestPermission)('exits 77 when the socket is not ours to use', async () => {
    const dir = h.dir();
    chmodSync(dir, 0o755); // the folder is searchable; the 0600 socket is not writable for nobody
    const d = await h.server({ path: join(dir, 'root.sock'), mode: 0o600, handlers: fakeHandlers() });
    const r = await run(['--socket', d.path, 'status'], { uid: 65534, gid: 65534 });
    expect(r.code).toBe(77);
    expect(r.stderr).toContain(`permission denied on the control socket ${d.path}`);
    expect(r.stderr).toContain('sudo');
  });
});

// keep `sleep` referenced for ad-hoc debugging of timing tests
void sleep;
