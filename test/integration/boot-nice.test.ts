/**
 * `bootNice` with real processes: every thread of a booting worker (also one
 * created after spawn) runs at the boot priority, read from
 * /proc/PID/task/TID/stat, and gets the normal priority back once the worker
 * is ready. An smoothd that could not restore it does not lower it at all.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { autogroupOf, autogroupsEnabled, threadNice, threadsOf } from '../../src/runtime/boot-nice.js';
import { FIXTURES, cleanup, startDaemon, tempDir, track, waitFor, type Daemon } from './harness.js';

const APP = path.join(FIXTURES, 'slow-boot.mjs');
let daemon: Daemon | null = null;

afterEach(cleanup);

const config = (bootNice: number, readyTimeout = '10s'): string => `groups:
  web:
    command: [node, ${APP}]
    count: 2
    ready: ipc
    readyTimeout: ${readyTimeout}
    bootNice: ${bootNice}
`;

/** Nice value of each thread of `pid`. */
function nices(pid: number): Map<number, number | null> {
  return new Map(threadsOf(pid).map((tid) => [tid, threadNice(pid, tid)]));
}

/** Waits for the worker's "booted" line: its late worker thread exists by then. */
async function booted(d: Daemon, pid: number): Promise<number> {
  const line = await waitFor(`worker ${pid} to print "booted"`, () =>
    d.logs.find((l) => l.pid === pid && typeof l.msg === 'string' && l.msg.startsWith('booted ')),
  );
  return Number(/thread=(\d+)/.exec(String(line.msg))![1]);
}

/** The pids of the first `n` workers smoothd logged as started (the control socket opens only once smoothd is running). */
async function startedWorkers(d: Daemon, n: number): Promise<number[]> {
  const pids = await waitFor(`${n} started workers`, () => {
    const started = d.logs.filter((l) => l.msg === 'worker started').map((l) => l.pid as number);
    return started.length >= n ? started.slice(0, n) : null;
  });
  pids.forEach(track);
  return pids;
}

const readyLogged = (d: Daemon, pid: number): boolean => d.logs.some((l) => l.msg === 'worker ready' && l.pid === pid);

describe('bootNice', () => {
  it('a booting worker runs every thread at the boot priority and gets the normal one back once ready', async () => {
    daemon = await startDaemon(config(10), { waitReady: false });
    const d = daemon;
    const pids = await startedWorkers(d, 2);
    for (const pid of pids) {
      const late = await booted(d, pid);
      const before = nices(pid);
      expect(before.size, `threads of ${pid}`).toBeGreaterThan(3); // main, V8 platform, libuv, the worker thread
      expect(before.has(late), `the worker thread ${late} is listed`).toBe(true);
      expect([...before.values()], `nice of every thread of booting worker ${pid}`).toEqual([...before.keys()].map(() => 10));
    }
    // The first becomes ready; the second is still booting and keeps its priority.
    process.kill(pids[0]!, 'SIGUSR2');
    await waitFor(`worker ${pids[0]} ready`, () => readyLogged(d, pids[0]!));
    const restored = nices(pids[0]!);
    expect([...restored.values()], `nice of every thread of ready worker ${pids[0]}`).toEqual([...restored.keys()].map(() => 0));
    expect([...nices(pids[1]!).values()].every((n) => n === 10), 'the worker still booting').toBe(true);
    process.kill(pids[1]!, 'SIGUSR2');
    await waitFor('every worker ready', () => d.logs.some((l) => l.msg === 'every worker is ready'));
    const second = nices(pids[1]!);
    expect([...second.values()]).toEqual([...second.keys()].map(() => 0));
  });

  // Each worker is a session of its own, and with autogroups on the kernel shares
  // the CPU between sessions before nice values count (boot-nice.ts), so the
  // session's own priority must boot lower too. Root only: without CAP_SYS_ADMIN
  // smoothd leaves autogroups alone (the kernel's rate limit could block the restore).
  const autogroups = autogroupsEnabled() && process.getuid?.() === 0;
  if (!autogroups) console.log('boot-nice: autogroup case skipped (needs root and kernel.sched_autogroup_enabled=1)');
  it.skipIf(!autogroups)("a booting worker's own autogroup boots at the boot priority and gets its value back once ready", async () => {
    daemon = await startDaemon(config(10), { waitReady: false });
    const d = daemon;
    const pids = await startedWorkers(d, 2);
    const own = autogroupOf('self'); // null in the kernel's default autogroup (init's session, as under a CI runner)
    for (const pid of pids) {
      await booted(d, pid);
      const ag = autogroupOf(pid)!;
      expect(ag.name, `worker ${pid} is a session of its own`).not.toBe(own?.name);
      expect(ag.nice, `autogroup of booting worker ${pid}`).toBe(10);
    }
    process.kill(pids[0]!, 'SIGUSR2');
    await waitFor(`worker ${pids[0]} ready`, () => readyLogged(d, pids[0]!));
    expect(autogroupOf(pids[0]!)!.nice, 'the ready worker').toBe(0);
    expect(autogroupOf(pids[1]!)!.nice, 'the worker still booting').toBe(10);
    process.kill(pids[1]!, 'SIGUSR2');
    await waitFor('every worker ready', () => d.logs.some((l) => l.msg === 'every worker is ready'));
    expect(autogroupOf(pids[1]!)!.nice).toBe(0);
  });

  it('a worker still booting at half its readyTimeout gets its normal priority back before it is ready', async () => {
    daemon = await startDaemon(config(10, '4s'), { waitReady: false });
    const d = daemon;
    const [pid] = await startedWorkers(d, 2);
    await booted(d, pid!);
    expect([...nices(pid!).values()].every((n) => n === 10), 'booting at nice 10').toBe(true);
    const line = await waitFor(`the give-back of worker ${pid}`, () =>
      d.logs.find((l) => l.pid === pid && typeof l.msg === 'string' && l.msg.startsWith('worker still booting after half its readyTimeout')),
    );
    expect(line).toMatchObject({ group: 'web', bootNice: 10, afterMs: 2000 });
    expect(readyLogged(d, pid!), 'still not ready').toBe(false);
    const now = nices(pid!);
    expect([...now.values()], `nice of every thread of ${pid}, still booting`).toEqual([...now.keys()].map(() => 0));
  });

  it('bootNice: 0 leaves the priority alone', async () => {
    daemon = await startDaemon(config(0), { waitReady: false });
    const [pid] = await startedWorkers(daemon, 2);
    await booted(daemon, pid!);
    expect([...nices(pid!).values()].every((n) => n === 0)).toBe(true);
  });

  it.skipIf(process.getuid?.() !== 0)('an unprivileged smoothd, which could not give the priority back, does not lower it and warns once', async () => {
    const dir = tempDir();
    fs.chownSync(dir, 65534, 65534); // nobody's own folder, as the control socket's folder must be
    fs.chmodSync(dir, 0o755);
    daemon = await startDaemon(config(10), {
      dir,
      waitReady: false,
      wrap: ['setpriv', '--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', '--'],
    });
    const d = daemon;
    const pids = await startedWorkers(d, 2);
    for (const pid of pids) {
      await booted(d, pid);
      expect([...nices(pid).values()].every((n) => n === 0), `threads of ${pid}`).toBe(true);
    }
    if (autogroupsEnabled()) for (const pid of pids) expect(autogroupOf(pid)!.nice, `autogroup of ${pid}`).toBe(0);
    const warnings = d.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('bootNice is not applied'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ group: 'web', bootNice: 10, nice: 0 });
    expect(String(warnings[0]!.msg)).toContain('LimitNICE=20');
    for (const pid of pids) process.kill(pid, 'SIGUSR2');
    await waitFor('every worker ready', () => d.logs.some((l) => l.msg === 'every worker is ready'));
  });
});
