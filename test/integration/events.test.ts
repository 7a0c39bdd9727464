/**
 * The event stream (DESIGN §11): `smoothctl events` and RPC `subscribe` with a
 * real smoothd and real workers — a reload's start and end, worker changes,
 * crashes, the filter, the idle timeout, and the end when smoothd stops.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { adopt, cleanup, type Daemon, FIXTURES, rpc, smoothctl, SMOOTHCTL, startDaemon, tempDir, waitFor } from './harness.js';

afterEach(cleanup);

const SLEEPER = `groups:
  web:
    command: [sleep, "1000"]
    count: 2
    ready: 100ms
    stopTimeout: 2s
    restartDelay: 100ms
`;

interface Follower {
  child: ChildProcess;
  lines: string[];
  stderr: string[];
  exit: Promise<number | null>;
}

/** `smoothctl events ARGS`, returned once smoothd has registered the subscriber (its debug log says so). */
async function follow(d: Daemon, args: string[]): Promise<Follower> {
  const before = d.logs.filter((l) => l.msg === 'event subscriber added').length;
  const child = spawn(process.execPath, [SMOOTHCTL, '--socket', d.socket, 'events', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  adopt(child);
  const f: Follower = { child, lines: [], stderr: [], exit: new Promise((r) => child.once('exit', (code) => r(code))) };
  let buf = '';
  child.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      f.lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  child.stderr!.on('data', (b: Buffer) => f.stderr.push(b.toString()));
  await waitFor('smoothd to register the subscriber', () => d.logs.filter((l) => l.msg === 'event subscriber added').length > before);
  return f;
}

describe('smoothctl events --json', () => {
  it('started before a reload sees its start, the workers it changed and its end; Ctrl-C exits 0', async () => {
    const d = await startDaemon(SLEEPER, { dir: tempDir() });
    const f = await follow(d, ['--json']);
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    const events = await waitFor('reload.done', () => {
      const evs = f.lines.map((l) => JSON.parse(l) as Record<string, any>);
      return evs.some((e) => e.event === 'reload.done') ? evs : null;
    });
    const names = events.map((e) => e.event);
    expect(names[0]).toBe('reload.started');
    expect(names.at(-1)).toBe('reload.done');
    expect(names.filter((n) => n === 'worker.started')).toHaveLength(2);
    expect(names.filter((n) => n === 'worker.ready')).toHaveLength(2);
    expect(names.filter((n) => n === 'worker.stopping')).toHaveLength(2);
    expect(names.filter((n) => n === 'worker.stopped')).toHaveLength(2);
    const done = events.at(-1)!;
    expect(done.data.result).toBe('succeeded');
    const started = events.find((e) => e.event === 'worker.started')!;
    expect(started).toMatchObject({ group: 'web', generation: 2 });
    expect(typeof started.pid).toBe('number');
    expect(typeof started.workerId).toBe('number');
    expect(Date.parse(started.at)).toBeGreaterThan(0);
    for (const e of events) expect(Object.keys(e).sort()).toEqual(['at', 'data', 'event', 'generation', 'group', 'message', 'pid', 'workerId']);
    f.child.kill('SIGINT');
    expect(await f.exit).toBe(0);
  }, 30_000);

  it('shows a crash and the restart, one line per event without --json; exits 0 when smoothd stops', async () => {
    const d = await startDaemon(SLEEPER, { dir: tempDir() });
    const f = await follow(d, []);
    const [pid] = await d.workerPids();
    process.kill(pid!, 'SIGKILL');
    await waitFor('the restarted worker to be ready', () => f.lines.some((l) => / worker\.ready web: /.test(l)));
    expect(f.lines[0]).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[^ ]+Z worker\\.crashed web: worker \\d+ \\(pid ${pid}\\) crashed \\(signal SIGKILL\\)$`));
    expect(f.lines[1]).toMatch(/ worker\.started web: worker \d+ \(pid \d+\) started/);
    d.proc.kill('SIGTERM');
    expect(await f.exit).toBe(0);
    expect(f.lines.some((l) => / daemon\.stopping -: smoothd is stopping$/.test(l))).toBe(true);
    expect(f.stderr.join('')).toMatch(/smoothd closed the connection/);
  }, 30_000);
});

describe('RPC subscribe', () => {
  it('sends only the listed events and refuses an unknown name with the list of known ones', async () => {
    const d = await startDaemon(SLEEPER, { dir: tempDir() });
    await expect(rpc(d.socket, 'subscribe', { events: ['reload.finished'] })).rejects.toMatchObject({
      code: -32602,
      message: expect.stringMatching(/^unknown event "reload.finished"; known events: worker\.started, .*reload\.done.*\(omit events to get all\)$/),
    });
    const seen: string[] = [];
    const c = net.connect(d.socket);
    try {
      let buf = '';
      c.on('data', (b) => {
        buf += b.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const m = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          seen.push(m.method === 'event' ? m.params.event : m.method);
        }
      });
      c.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'subscribe', params: { events: ['reload.done', 'reload.started'] } })}\n`);
      await waitFor('subscribed', () => seen.includes('subscribed'));
      expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
      await waitFor('reload.done', () => seen.includes('reload.done'));
      expect(seen).toEqual(['subscribed', 'reload.started', 'reload.done']);
    } finally {
      c.destroy();
    }
  }, 30_000);

  it('reports a refused config and the failed reload it ends', async () => {
    const d = await startDaemon(SLEEPER, { dir: tempDir() });
    const f = await follow(d, ['--json']);
    d.writeConfig('groups: { web: { command: [sleep, "1000"], count: 0 } }\n');
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(1);
    const events = await waitFor('reload.done', () => {
      const evs = f.lines.map((l) => JSON.parse(l) as Record<string, any>);
      return evs.some((e) => e.event === 'reload.done') ? evs : null;
    });
    expect(events.map((e) => e.event)).toEqual(['reload.started', 'config.refused', 'reload.done']);
    expect(events[1]!.data.issues).toEqual([{ path: 'groups.web.count', message: expect.stringContaining('got 0') }]);
    expect(events[2]!.data).toMatchObject({ result: 'failed', state: 'failed' });
  }, 30_000);

  it('is a pending request: the idle timeout never closes a subscription', async () => {
    const d = await startDaemon(SLEEPER, { dir: tempDir(), env: { SMOOTHD_CONTROL_IDLE_MS: '300' } });
    const f = await follow(d, ['--json']);
    // An idle connection without a request is closed after 300 ms; the subscription outlives several of those.
    const idle = net.connect(d.socket);
    await new Promise<void>((resolve) => idle.once('close', () => resolve()));
    await new Promise<void>((resolve) => {
      const again = net.connect(d.socket);
      again.once('close', () => resolve());
    });
    expect(f.child.exitCode).toBeNull();
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    await waitFor('reload.done after the idle timeouts', () => f.lines.some((l) => JSON.parse(l).event === 'reload.done'));
  }, 30_000);

  it('drops a subscriber that never reads (bounded memory) while smoothd keeps serving status and reloads', async () => {
    const dir = tempDir();
    const probe = path.join(dir, 'gc.json');
    const d = await startDaemon(SLEEPER, {
      dir,
      args: ['--log-level', 'info'],
      env: { NODE_OPTIONS: `--import ${path.join(FIXTURES, 'gc-probe.mjs')}`, GC_PROBE_OUT: probe },
    });
    /** The daemon's memory right after a full GC (the gc-probe preload answers SIGUSR2). */
    const memory = async (): Promise<{ heapUsed: number; external: number; rss: number }> => {
      fs.rmSync(probe, { force: true });
      process.kill(d.pid, 'SIGUSR2');
      return JSON.parse(await waitFor('the gc probe', () => (fs.existsSync(probe) ? fs.readFileSync(probe, 'utf8') : null), 5000));
    };
    // A config with 2 000 invalid groups: each refused reload sends a config.refused event of ~200 KB.
    const bad = `groups:\n${Array.from({ length: 2000 }, (_, i) => `  g${i}: { command: [sleep, "1000"], count: 0 }\n`).join('')}`;
    const refused = (): number => d.logs.filter((l) => l.msg === 'control client does not read its replies; closing the connection').length;
    // Before the baseline, smoothd's bounded memory of finished reloads fills up (the last 32 reports
    // for late waiters, 10 of them in status.reloads; each refused one carries the 2 000 issues), so
    // what the baseline leaves out is the subscriber's queue alone.
    d.writeConfig(bad);
    for (let i = 0; i < 32; i++) await expect(rpc(d.socket, 'reload', { wait: true })).rejects.toMatchObject({ code: expect.any(Number) });
    const base = await memory();

    const c = net.connect(d.socket);
    try {
      let subscribed = false;
      let buf = '';
      const onData = (b: Buffer): void => {
        buf += b.toString();
        if (buf.includes('"method":"subscribed"')) subscribed = true;
      };
      c.on('data', onData);
      c.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'subscribe', params: {} })}\n`);
      await waitFor('the subscribed notification', () => subscribed);
      c.off('data', onData);
      c.pause(); // from here on never read: the kernel buffers fill, then smoothd's queue (16 MiB), then smoothd drops it
      let reloads = 0;
      let peak = 0;
      const t0 = Date.now();
      while (refused() === 0) {
        if (++reloads > 400) throw new Error(`smoothd kept a subscriber that never reads through ${reloads} refused reloads (~${reloads * 200} KB of events)`);
        await expect(rpc(d.socket, 'reload', { wait: true })).rejects.toMatchObject({ code: expect.any(Number) });
        if (reloads % 10 === 0 && refused() === 0) {
          expect((await d.status()).daemon.state).toBe('running'); // (a status carries 10 reports of ~200 KB: not every time)
          const m = await memory();
          peak = Math.max(peak, m.heapUsed + m.external - base.heapUsed - base.external);
        }
      }
      const warning = d.logs.find((l) => l.msg === 'control client does not read its replies; closing the connection')!;
      const dropMs = Date.now() - t0;
      // Dropped once its queue passed the 16 MiB bound, not long after.
      expect(warning.queued as number).toBeGreaterThan(16 * 1024 * 1024);
      expect(warning.queued as number).toBeLessThan(17 * 1024 * 1024);

      // smoothd still serves: status answers and a good config reloads.
      d.writeConfig(SLEEPER);
      expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
      expect((await d.status()).groups[0].workers.filter((w: { state: string }) => w.state === 'ready')).toHaveLength(2);
      const after = await memory();
      const mib = (b: number): string => (b / 1024 / 1024).toFixed(1);
      const grown = after.heapUsed + after.external - base.heapUsed - base.external;
      console.log(
        `stalled subscriber dropped after ${reloads} refused reloads in ${dropMs} ms with ${mib(warning.queued as number)} MiB queued; ` +
          `heap+external after a full GC while it stalled: up to +${mib(peak)} MiB; after the drop ${grown >= 0 ? '+' : ''}${mib(grown)} MiB (baseline ${mib(base.heapUsed + base.external)} MiB, rss ${mib(base.rss)} -> ${mib(after.rss)} MiB)`,
      );
      // Its queue is freed with the connection: nothing of the ~16 MiB stays.
      expect(grown).toBeLessThan(2 * 1024 * 1024);
    } finally {
      c.destroy();
    }
  }, 180_000);
});
