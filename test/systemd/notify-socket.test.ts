import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadUnixDgram, notifyUnavailable, parseNotify, WorkerNotifySockets, workerOwner } from '../../src/runtime/notify-socket.js';

const log = { info: () => undefined, warn: () => undefined, debug: () => undefined } as any;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function sockets(): { s: WorkerNotifySockets; base: string } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-wns-'));
  const s = new WorkerNotifySockets(base, log);
  cleanups.push(() => {
    s.closeAll();
    fs.rmSync(base, { recursive: true, force: true });
  });
  return { s, base };
}

function send(file: string, text: string): Promise<void> {
  const mod = loadUnixDgram()!;
  const c = mod.createSocket('unix_dgram');
  const buf = Buffer.from(text);
  return new Promise((resolve, reject) =>
    c.send(buf, 0, buf.length, file, (err) => {
      c.close();
      if (err) reject(err);
      else resolve();
    }),
  );
}

async function until(what: string, fn: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('parseNotify', () => {
  it('understands READY=1, STATUS= and STOPPING=1 and ignores the rest', () => {
    expect(parseNotify('READY=1')).toMatchObject({ ready: true, stopping: false, status: null });
    expect(parseNotify('STATUS=serving 3 clients\nREADY=1\nMAINPID=42')).toMatchObject({ ready: true, stopping: false, status: 'serving 3 clients' });
    expect(parseNotify('BARRIER=1')).toMatchObject({ ready: false, stopping: false, status: null });
    expect(parseNotify('STOPPING=1\nWATCHDOG=1\ngarbage\n=x')).toMatchObject({ ready: false, stopping: true, status: null });
    expect(parseNotify('READY=0')).toMatchObject({ ready: false, stopping: false, status: null });
    expect(parseNotify(`STATUS=${'x'.repeat(500)}`).status).toHaveLength(200);
    expect(parseNotify('STATUS=a=b').status).toBe('a=b');
  });

  it('reads the deploy-verification counters X_SMOOTHD_REQUESTS and X_SMOOTHD_ERRORS, ignoring bad values', () => {
    expect(parseNotify('X_SMOOTHD_REQUESTS=120\nX_SMOOTHD_ERRORS=3')).toMatchObject({ requests: 120, errors: 3 });
    expect(parseNotify('X_SMOOTHD_REQUESTS=-1\nX_SMOOTHD_ERRORS=1e3')).toMatchObject({ requests: null, errors: null });
    expect(parseNotify('READY=1')).toMatchObject({ requests: null, errors: null });
  });
});

describe('WorkerNotifySockets', () => {
  it('binds one private socket per worker and attributes messages by socket', async () => {
    const { s, base } = sockets();
    const got: string[] = [];
    const handlers = (id: number) => ({
      onReady: () => got.push(`${id} ready`),
      onStatus: (t: string) => got.push(`${id} status ${t}`),
      onStopping: () => got.push(`${id} stopping`),
    });
    const a = s.openFor(1, null, handlers(1));
    const b = s.openFor(2, null, handlers(2));
    if (a instanceof Error || b instanceof Error) throw a instanceof Error ? a : b;
    expect(path.dirname(path.dirname(a.path))).toBe(base);
    expect(path.basename(path.dirname(a.path))).toMatch(/^notify-\w{6}$/);
    expect(path.dirname(b.path)).toBe(path.dirname(a.path));
    expect(fs.statSync(path.dirname(a.path)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(a.path).isSocket()).toBe(true);
    expect(fs.statSync(a.path).mode & 0o777).toBe(0o600);
    await send(b.path, 'STATUS=warming up');
    await send(a.path, 'BARRIER=1');
    await send(a.path, 'READY=1\nSTATUS=up');
    await send(b.path, 'STOPPING=1');
    await until('4 messages', () => got.length >= 4);
    expect(got).toEqual(['2 status warming up', '1 status up', '1 ready', '2 stopping']);
    a.close();
    expect(fs.existsSync(a.path)).toBe(false);
    s.closeAll();
    expect(fs.existsSync(path.dirname(a.path))).toBe(false);
  });

  it('never uses or removes a folder by a predictable name: a planted notify.PID symlink is left alone', () => {
    const { s, base } = sockets();
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-wns-victim-'));
    cleanups.push(() => fs.rmSync(elsewhere, { recursive: true, force: true }));
    fs.writeFileSync(path.join(elsewhere, 'keep'), 'x');
    const planted = path.join(base, `notify.${process.pid}`);
    fs.symlinkSync(elsewhere, planted);
    const n = s.openFor(1, null, { onReady: () => undefined, onStatus: () => undefined, onStopping: () => undefined });
    if (n instanceof Error) throw n;
    const folder = fs.lstatSync(path.dirname(n.path));
    expect([folder.isDirectory(), folder.uid, folder.mode & 0o777]).toEqual([true, process.geteuid!(), 0o700]);
    expect(n.path.startsWith(elsewhere)).toBe(false);
    s.closeAll();
    expect(fs.lstatSync(planted).isSymbolicLink()).toBe(true);
    expect(fs.readdirSync(elsewhere)).toEqual(['keep']);
  });

  it('drops passed fds, so a plain `systemd-notify --ready` (BARRIER=1 with a pipe) returns at once', async () => {
    const { s } = sockets();
    let ready = 0;
    const n = s.openFor(7, null, { onReady: () => void ready++, onStatus: () => undefined, onStopping: () => undefined });
    if (n instanceof Error) throw n;
    const started = Date.now();
    await new Promise<void>((resolve, reject) =>
      execFile('systemd-notify', ['--ready', '--status=hello'], { env: { ...process.env, NOTIFY_SOCKET: n.path }, timeout: 10_000 }, (err, _o, stderr) =>
        err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(),
      ),
    );
    // systemd-notify waits up to 5 s for the barrier's pipe to close.
    expect(Date.now() - started).toBeLessThan(2_000);
    await until('ready', () => ready === 1);
  });

  it('gives the socket to the worker user when it runs as another user', () => {
    const { s } = sockets();
    const n = s.openFor(3, { uid: 65534, gid: 65534 }, { onReady: () => undefined, onStatus: () => undefined, onStopping: () => undefined });
    if (n instanceof Error) throw n;
    const st = fs.statSync(n.path);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([65534, 65534, 0o600]);
    const folder = fs.lstatSync(path.dirname(n.path));
    expect([folder.isDirectory(), folder.mode & 0o777]).toEqual([true, 0o711]);
    expect(path.basename(path.dirname(n.path))).toMatch(/^(smoothd-)?notify-\w{6}$/);
    // Not the 0700 folder of workers that run as smoothd's user.
    const own = s.openFor(4, null, { onReady: () => undefined, onStatus: () => undefined, onStopping: () => undefined });
    if (own instanceof Error) throw own;
    expect(path.dirname(own.path)).not.toBe(path.dirname(n.path));
    expect(fs.statSync(path.dirname(own.path)).mode & 0o777).toBe(0o700);
  });

  it('fails with a clear error when unix-dgram is missing', () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-wns-'));
    cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
    const s = new WorkerNotifySockets(base, log, () => null);
    const n = s.openFor(1, null, { onReady: () => undefined, onStatus: () => undefined, onStopping: () => undefined });
    expect(n).toBeInstanceOf(Error);
    expect((n as Error).message).toMatch(/unix-dgram.*npm install -g unix-dgram/);
  });
});

describe('notifyUnavailable', () => {
  const group = (name: string, kind: 'notify' | 'ipc') => ({ name, ready: kind === 'notify' ? { kind } : { kind } }) as any;
  it('names each notify group when the package is missing, nothing otherwise', () => {
    const cfg = { groups: [group('web', 'notify'), group('api', 'ipc')] };
    expect(notifyUnavailable(cfg, () => null).map((i) => i.path)).toEqual(['groups.web.ready']);
    expect(notifyUnavailable(cfg, () => null)[0]!.message).toMatch(/unix-dgram .*is not installed.*npm install/);
    expect(notifyUnavailable(cfg, loadUnixDgram)).toEqual([]);
    expect(notifyUnavailable({ groups: [group('api', 'ipc')] }, () => null)).toEqual([]);
  });
});

describe('workerOwner', () => {
  it('reads uid and gid from the account files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-acct-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n');
    fs.writeFileSync(path.join(dir, 'group'), 'root:x:0:\nops:x:900:\n');
    const files = { passwd: path.join(dir, 'passwd'), group: path.join(dir, 'group') };
    expect(workerOwner({ user: null, group: null }, files)).toBeNull();
    expect(workerOwner({ user: 'www', group: null }, files)).toEqual({ uid: 33, gid: 34 });
    expect(workerOwner({ user: 'www', group: 'ops' }, files)).toEqual({ uid: 33, gid: 900 });
    expect(workerOwner({ user: '1234', group: null }, files)).toMatchObject({ uid: 1234 });
  });

  it('uses the account resolved at config check when the spec carries one', () => {
    const none = { passwd: '/nonexistent', group: '/nonexistent' };
    expect(workerOwner({ user: '4242', group: '4343', account: { uid: 4242, gid: 4343, initGroups: false } }, none)).toEqual({ uid: 4242, gid: 4343 });
  });
});
