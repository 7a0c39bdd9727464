/**
 * Socket activation without systemd: a Python launcher does what systemd does
 * (listening socket on fd 3, LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID, exec), and
 * smoothd adopts the socket by name for `listen: ["systemd:http"]`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, killAll, rpc, SMOOTHD, tempDir, track, waitFor } from '../integration/harness.js';

afterEach(() => killAll());

function get(port: number): Promise<any> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let body = '';
        res.on('data', (b) => (body += b));
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
}

function activate(mode: 'self' | 'other', configYaml: string, env: NodeJS.ProcessEnv = {}) {
  const dir = tempDir();
  const config = path.join(dir, 'smoothd.yaml');
  fs.writeFileSync(config, configYaml);
  const socket = path.join(dir, 'ctl.sock');
  const proc = spawn('python3', [path.join(FIXTURES, 'activate.py'), 'http', mode, '--', process.execPath, SMOOTHD, '--config', config, '--socket', socket, '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  track(proc.pid);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    socket,
    exit,
    out: () => out,
    err: () => err,
    port: () => waitFor('the launcher to print its port', () => Number(out.split('\n')[0]) || 0),
  };
}

const CONFIG = `groups:\n  web:\n    command: [node, ${FIXTURES}/env-app.mjs]\n    count: 2\n    listen: [{address: "systemd:http", name: web}]\n    ready: ipc\n`;

describe('socket activation', () => {
  it('adopts the socket systemd passed by name; workers get it as fd 3 with their own LISTEN_PID; nothing of smoothd leaks', async () => {
    const a = activate('self', CONFIG, { WATCHDOG_USEC: '60000000', WATCHDOG_PID: '1' });
    const port = await a.port();
    // A request sent before smoothd or any worker runs waits in the socket's queue.
    const early = get(port);
    await waitFor('smoothd ready', () => a.out().includes('every worker is ready'), 15_000);
    const s = await rpc(a.socket, 'status', {});
    expect(s.daemon.pid).toBe(a.proc.pid); // exec kept the launcher's pid, as under systemd
    expect(s.groups[0].listen[0].bound).toBe('systemd:http (fd 3)');
    for (const w of s.groups[0].workers) track(w.pid);
    const pids = s.groups[0].workers.map((w: any) => w.pid);
    const first = await early;
    expect(pids).toContain(first.pid);
    for (let i = 0; i < 6; i++) {
      const r = await get(port);
      expect(pids).toContain(r.pid);
      expect(r.env).toMatchObject({ LISTEN_PID: String(r.pid), LISTEN_FDS: '1', LISTEN_FDNAMES: 'web', NOTIFY_SOCKET: null, WATCHDOG_USEC: null, WATCHDOG_PID: null });
    }
    a.proc.kill('SIGTERM');
    expect(await a.exit).toBe(0);
  });

  it('ignores LISTEN_FDS meant for another process (LISTEN_PID mismatch) and says so', async () => {
    const a = activate('other', CONFIG);
    expect(await a.exit).toBe(71);
    expect(a.err()).toMatch(/systemd passed no socket named "http".*no LISTEN_FDS/);
  });
});
