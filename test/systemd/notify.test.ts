import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadUnixDgram } from '../../src/runtime/notify-socket.js';
import { encodeNotify, monotonicUsec, SystemdNotifier, Watchdog, watchdogUsec } from '../../src/systemd/notify.js';
import { bindReceiver, type Receiver } from './dgram.js';

function quietLog() {
  const warnings: { obj: unknown; msg: string }[] = [];
  return {
    warnings,
    warn: (obj: unknown, msg?: string) => void warnings.push({ obj, msg: msg ?? '' }),
    info: () => undefined,
    debug: () => undefined,
  } as any;
}

const receivers: Receiver[] = [];
const pids: number[] = [];
afterEach(() => {
  for (const r of receivers.splice(0)) r.close();
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

function receiver(): Receiver {
  const r = bindReceiver();
  receivers.push(r);
  return r;
}

describe('encodeNotify', () => {
  it('joins KEY=VALUE lines and keeps a value on one line', () => {
    expect(encodeNotify({ READY: '1', STATUS: 'a\nb' })).toBe('READY=1\nSTATUS=a b');
  });
});

describe('SystemdNotifier without NOTIFY_SOCKET', () => {
  it('is a no-op', async () => {
    const n = new SystemdNotifier(quietLog(), { env: {} });
    expect(n.enabled).toBe(false);
    expect(n.transportKind).toBeNull();
    await n.ready('x');
    await n.watchdog();
    n.close();
  });
});

describe('SystemdNotifier over a real datagram socket (unix-dgram)', () => {
  it('sends READY, RELOADING with MONOTONIC_USEC, STATUS, STOPPING and WATCHDOG in order', async () => {
    const r = receiver();
    const n = new SystemdNotifier(quietLog(), { env: { NOTIFY_SOCKET: r.path } });
    expect(n.enabled).toBe(true);
    expect(n.transportKind).toBe('unix-dgram');
    const before = BigInt(monotonicUsec());
    await n.ready('running: web 2/2 ready, generation 1');
    await n.reloading('reloading web: 0/2 replaced');
    await n.status('reloading web: 1/2 replaced');
    await n.ready('running: web 2/2 ready, generation 2');
    await n.stopping('stopping: web 2/2 ready, generation 2');
    await n.watchdog();
    await r.next((m) => m === 'WATCHDOG=1');
    expect(r.messages[0]).toBe('READY=1\nSTATUS=running: web 2/2 ready, generation 1');
    expect(r.messages[1]).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading web: 0\/2 replaced$/);
    const usec = BigInt(/MONOTONIC_USEC=(\d+)/.exec(r.messages[1]!)![1]!);
    // CLOCK_MONOTONIC in µs: the same clock systemd reads (compare with /proc/uptime's scale: seconds since boot).
    expect(usec >= before).toBe(true);
    const uptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    expect(Math.abs(Number(usec) / 1e6 - uptime)).toBeLessThan(5);
    expect(r.messages.slice(2)).toEqual([
      'STATUS=reloading web: 1/2 replaced',
      'READY=1\nSTATUS=running: web 2/2 ready, generation 2',
      'STOPPING=1\nSTATUS=stopping: web 2/2 ready, generation 2',
      'WATCHDOG=1',
    ]);
    n.close();
  });

  it('sends a STATUS line only when it changed', async () => {
    const r = receiver();
    const n = new SystemdNotifier(quietLog(), { env: { NOTIFY_SOCKET: r.path } });
    await n.status('a');
    await n.status('a');
    await n.status('b');
    await n.ready('b');
    await n.status('b');
    await r.next((m) => m.startsWith('READY=1'));
    expect(r.messages).toEqual(['STATUS=a', 'STATUS=b', 'READY=1\nSTATUS=b']);
  });

  it('logs one warning when the socket is gone, and never throws', async () => {
    const log = quietLog();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-notify-gone-'));
    const n = new SystemdNotifier(log, { env: { NOTIFY_SOCKET: path.join(dir, 'missing.sock') } });
    await n.ready('x');
    await n.watchdog();
    expect(log.warnings).toHaveLength(1);
    expect(JSON.stringify(log.warnings[0])).toMatch(/cannot notify systemd/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('falls back to the systemd-notify command when unix-dgram is not available', async () => {
    const r = receiver();
    const n = new SystemdNotifier(quietLog(), { env: { ...process.env, NOTIFY_SOCKET: r.path }, dgram: null });
    expect(n.transportKind).toBe('systemd-notify');
    await n.ready('via the command');
    await n.watchdog();
    expect(await r.next((m) => m.includes('READY=1'))).toContain('STATUS=via the command');
    await r.next((m) => m.includes('WATCHDOG=1'));
  });

  it('as non-root: warns once at start naming NotifyAccess=all, and runs systemd-notify without --no-block (it waits until systemd has the message)', async () => {
    // A stand-in systemd-notify that records its arguments, one call per line.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-notify-cmd-'));
    const calls = path.join(dir, 'calls');
    const cmd = path.join(dir, 'systemd-notify');
    fs.writeFileSync(cmd, `#!/bin/sh\necho "$*" >> ${JSON.stringify(calls)}\n`, { mode: 0o755 });
    try {
      const asUser = quietLog();
      const n = new SystemdNotifier(asUser, { env: { NOTIFY_SOCKET: '@smoothd-test' }, command: cmd, uid: 1000 });
      expect(asUser.warnings).toHaveLength(1);
      expect(asUser.warnings[0].msg).toMatch(/NOTIFY_SOCKET @smoothd-test is abstract.*non-root.*NotifyAccess=all/);
      await n.ready('up');
      await n.watchdog();
      expect(asUser.warnings).toHaveLength(1);
      expect(fs.readFileSync(calls, 'utf8').split('\n')).toEqual(['READY=1 STATUS=up', 'WATCHDOG=1', '']);

      fs.rmSync(calls);
      const asRoot = quietLog();
      const r = new SystemdNotifier(asRoot, { env: { NOTIFY_SOCKET: '@smoothd-test' }, command: cmd, uid: 0 });
      await r.ready('up');
      expect(asRoot.warnings).toHaveLength(0);
      expect(fs.readFileSync(calls, 'utf8')).toBe('--no-block READY=1 STATUS=up\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uses systemd-notify for an abstract socket (@name), which unix-dgram cannot address', async () => {
    // A python3 receiver binds the abstract socket and prints what it gets.
    const name = `smoothd-test-${process.pid}-${Date.now()}`;
    const py = spawn('python3', [
      '-u',
      '-c',
      [
        'import socket,sys',
        's=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        `s.bind("\\0${name}")`,
        'print("bound", flush=True)',
        'while True:',
        '  d=s.recv(4096)',
        '  print(d.decode().replace("\\n","|"), flush=True)',
      ].join('\n'),
    ]);
    pids.push(py.pid!);
    let out = '';
    py.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const waitOut = async (re: RegExp): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (!re.test(out)) {
        if (Date.now() > deadline) throw new Error(`python receiver printed ${JSON.stringify(out)}`);
        await new Promise((res) => setTimeout(res, 20));
      }
    };
    await waitOut(/bound/);
    const n = new SystemdNotifier(quietLog(), { env: { ...process.env, NOTIFY_SOCKET: `@${name}` } });
    expect(n.transportKind).toBe('systemd-notify');
    await n.reloading('abstract');
    await waitOut(/RELOADING=1\|MONOTONIC_USEC=\d+\|STATUS=abstract/);
  });
});

describe('watchdogUsec', () => {
  it('reads WATCHDOG_USEC, honouring WATCHDOG_PID', () => {
    expect(watchdogUsec({})).toBeNull();
    expect(watchdogUsec({ WATCHDOG_USEC: '0' })).toBeNull();
    expect(watchdogUsec({ WATCHDOG_USEC: 'x' })).toBeNull();
    expect(watchdogUsec({ WATCHDOG_USEC: '30000000' })).toBe(30_000_000);
    expect(watchdogUsec({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(30_000_000);
    expect(watchdogUsec({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42)).toBeNull();
  });
});

describe('Watchdog', () => {
  it('pings at half the interval, only while the probe says healthy', () => {
    let fire: (() => void) | null = null;
    let every = 0;
    let cleared = false;
    let problem: string | null = null;
    let pings = 0;
    const log = quietLog();
    const w = new Watchdog({
      usec: 10_000_000,
      probe: () => problem,
      ping: () => void pings++,
      log,
      setInterval: (fn, ms) => {
        fire = fn;
        every = ms;
        return 1;
      },
      clearInterval: () => void (cleared = true),
    });
    w.start();
    expect(every).toBe(5_000);
    expect(pings).toBe(1); // at once: systemd counts from the start
    fire!();
    expect(pings).toBe(2);
    problem = 'the state machine fails on its current state';
    fire!();
    fire!();
    expect(pings).toBe(2);
    expect(log.warnings).toHaveLength(1); // once per distinct problem
    problem = null;
    fire!();
    expect(pings).toBe(3);
    w.stop();
    expect(cleared).toBe(true);
  });

  it('treats a probe that throws as unhealthy', () => {
    const log = quietLog();
    let pings = 0;
    const w = new Watchdog({
      usec: 2_000_000,
      probe: () => {
        throw new Error('boom');
      },
      ping: () => void pings++,
      log,
    });
    expect(w.tick()).toBe(false);
    expect(pings).toBe(0);
    expect(JSON.stringify(log.warnings)).toMatch(/boom/);
  });
});

describe('unix-dgram', () => {
  it('is installed (an optionalDependency that npm ci builds)', () => {
    expect(loadUnixDgram()).not.toBeNull();
  });
});
