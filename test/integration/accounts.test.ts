/**
 * `user:`/`group:` with real daemons: without setpriv such a config is refused
 * at --check, at start and at reload (never run as root), and with setpriv the
 * worker really runs as the resolved ids.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { boundPort, cleanup, type Daemon, get, smoothctl, startDaemon, tempDir } from './harness.js';
import { config, group, release } from './releases.js';

const root = process.getuid?.() === 0;
/** SMOOTHD_SETPRIV="" makes smoothd find no setpriv, as on a machine without util-linux's. */
const NO_SETPRIV = { SMOOTHD_SETPRIV: '' };

async function start(yaml: string, dir: string, opts: Parameters<typeof startDaemon>[1] = {}): Promise<Daemon> {
  const d = await startDaemon(yaml, { dir, ...opts });
  return d;
}

afterEach(cleanup);

/** A release folder that another uid can read (mkdtemp makes it 0700). */
function readableRelease(): string {
  const dir = tempDir();
  fs.chmodSync(dir, 0o755);
  release(dir, 'v1');
  return dir;
}

describe.skipIf(!root)('user and group without setpriv', () => {
  const SETPRIV_MESSAGE = /groups\.web\.user: user: switching workers to user "nobody" needs setpriv, which was not found .*never runs such a worker as root: install util-linux's setpriv/;

  it('--check exits 78 and says what to install', async () => {
    const dir = readableRelease();
    const d = await start(config(group(dir, { count: 1, extra: '    user: nobody\n' })), dir, { waitReady: false, args: ['--check'], env: NO_SETPRIV });
    expect((await d.exit).code).toBe(78);
    expect(d.stderr.join('')).toMatch(SETPRIV_MESSAGE);
  });

  it('start exits 78 before any worker is spawned', async () => {
    const dir = readableRelease();
    const d = await start(config(group(dir, { count: 1, listen: ['127.0.0.1:0'], extra: '    user: nobody\n' })), dir, {
      waitReady: false,
      env: NO_SETPRIV,
    });
    expect((await d.exit).code).toBe(78);
    expect(d.stderr.join('')).toMatch(SETPRIV_MESSAGE);
    expect(d.logs.filter((l) => l.msg === 'worker started')).toEqual([]);
    expect(fs.existsSync(d.socket)).toBe(false);
  });

  it('a reload that adds user is refused as CONFIG_INVALID and nothing changes', async () => {
    const dir = readableRelease();
    const d = await start(config(group(dir, { count: 2, listen: ['127.0.0.1:0'] })), dir, { env: NO_SETPRIV });
    const port = await boundPort(d);
    const before = await d.workerPids();
    d.writeConfig(config(group(dir, { count: 2, listen: ['127.0.0.1:0'], extra: '    user: nobody\n' })));
    const r = await smoothctl(d.socket, ['reload', '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.errorCode).toBe(-32004);
    expect(r.stdout + r.stderr).toMatch(/needs setpriv/);
    expect((await d.workerPids()).sort()).toEqual(before.sort());
    const s = await d.status();
    expect(s.groups[0].generation).toBe(1);
    expect(JSON.parse((await get(port, '/uid')).body).uid).toBe(0);
    expect(d.logs.filter((l) => l.msg === 'worker started')).toHaveLength(2);
  });
});

describe.skipIf(!root)('user and group with setpriv', () => {
  it('a numeric uid with no passwd entry runs with the given numeric group and no supplementary groups', async () => {
    const dir = readableRelease();
    const d = await start(config(group(dir, { count: 1, listen: ['127.0.0.1:0'], extra: '    user: "4242"\n    group: "4343"\n' })), dir);
    const port = await boundPort(d);
    const body = JSON.parse((await get(port, '/uid')).body);
    expect(body).toEqual({ uid: 4242, gid: 4343, groups: '' });
    expect((await d.status()).daemon.state).toBe('running');
  });

  it('a numeric uid with no passwd entry and no group is refused at --check with what to add', async () => {
    const dir = readableRelease();
    const d = await start(config(group(dir, { count: 1, extra: '    user: "4242"\n' })), dir, { waitReady: false, args: ['--check'] });
    expect((await d.exit).code).toBe(78);
    expect(d.stderr.join('')).toMatch(/groups\.web\.user: user 4242 has no passwd entry, so it has no primary group: add group:/);
  });
});
