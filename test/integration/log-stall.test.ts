/**
 * A stdout reader that never reads (journald under pressure, `smoothd | less`
 * left alone) must not stall the supervisor. smoothd runs with stdout on a
 * FIFO the test does not read and two workers that flood their output (which
 * smoothd logs line by line); while the log is blocked, `status` answers, a
 * reload completes, a SIGKILLed worker is replaced and the systemd watchdog is
 * fed. Then the test reads the FIFO: the lines logged during the stall are
 * gone, and one warning says how many were dropped.
 *
 * Prints the measured figures (README "Logs" quotes them); rerun with
 * `npm run build && npx vitest run test/integration/log-stall.test.ts`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadUnixDgram } from '../../src/runtime/notify-socket.js';
import { FIXTURES, SMOOTHD, alive, rpc, smoothctl, tempDir, track, waitFor, cleanup as cleanupProcesses } from './harness.js';

let cleanup: Array<() => void> = [];
afterEach(async () => {
  await cleanupProcesses();
  for (const fn of cleanup.reverse()) fn();
  cleanup = [];
});

/** systemd's notify socket, played by the test: every datagram with its arrival time. */
function notifyReceiver(dir: string): { path: string; messages: { at: number; text: string }[] } {
  const mod = loadUnixDgram();
  if (!mod) throw new Error('unix-dgram is not installed (npm ci installs it: it is an optionalDependency)');
  const file = path.join(dir, 'notify.sock');
  const messages: { at: number; text: string }[] = [];
  const sock = mod.createSocket('unix_dgram');
  sock.on('message', (buf: Buffer) => messages.push({ at: Date.now(), text: buf.toString('utf8') }));
  sock.bind(file);
  cleanup.push(() => sock.close());
  return { path: file, messages };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = Date.now();
  const value = await fn();
  return { ms: Date.now() - t, value };
}

describe('a stdout reader that never reads', () => {
  it('does not stall status, reloads, crash restarts or the watchdog; the dropped lines are counted', async () => {
    const dir = tempDir();
    const fifoPath = path.join(dir, 'stdout.fifo');
    execFileSync('mkfifo', [fifoPath]);
    // The test holds the read end and does not read it until the end.
    const reader = fs.openSync(fifoPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const writer = fs.openSync(fifoPath, fs.constants.O_WRONLY);
    let readerOwned = false;
    cleanup.push(() => readerOwned || fs.closeSync(reader));
    const notify = notifyReceiver(dir);
    const configPath = path.join(dir, 'smoothd.yaml');
    fs.writeFileSync(configPath, `groups:\n  chat:\n    command: [node, ${path.join(FIXTURES, 'chatty-worker.mjs')}]\n    count: 2\n    ready: 300ms\n    stopTimeout: 2s\n    env: { CHATTY_MARK_DIR: ${dir} }\n`);
    const socket = path.join(dir, 'ctl.sock');
    // 3 s: well above what CPU starvation on a loaded 2-core machine causes (gaps of ~1.5 s seen
    // there), well below a loop blocked on the log, which stays blocked for the whole window.
    const watchdogMs = 3_000;
    const daemon: ChildProcess = spawn(process.execPath, [SMOOTHD, '--config', configPath, '--socket', socket, '--log-format', 'json'], {
      stdio: ['ignore', writer, 'pipe'],
      env: { ...process.env, NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: String(watchdogMs * 1000) },
    });
    fs.closeSync(writer);
    track(daemon.pid);
    const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
    let stderr = '';
    daemon.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));

    await waitFor('READY=1 from smoothd', () => notify.messages.some((m) => m.text.startsWith('READY=1')), 20_000);
    const first = await rpc(socket, 'status');
    for (const w of first.groups[0].workers) track(w.pid);

    // Each worker's burst (20 000 lines, ~4 MB as smoothd's log lines) has gone through smoothd
    // (at most one pipe's 64 KiB behind): more than the FIFO (64 KiB) and the log buffer (4 MiB)
    // hold, so from here on the log is blocked. Measure with it blocked.
    await waitFor('both workers to finish their burst', () => first.groups[0].workers.every((w: any) => fs.existsSync(path.join(dir, `burst-${w.pid}`))), 20_000);
    const windowStart = Date.now();
    const statusMs: number[] = [];
    for (let i = 0; i < 20; i++) statusMs.push((await timed(() => rpc(socket, 'status'))).ms);

    const reload = await timed(() => smoothctl(socket, ['reload', '--json']));
    expect(reload.value.code, reload.value.stderr).toBe(0);
    const report = JSON.parse(reload.value.stdout);
    expect(report.state).toBe('succeeded');

    const before = (await rpc(socket, 'status')).groups[0].workers.map((w: any) => w.pid as number);
    for (const pid of before) track(pid);
    process.kill(before[0]!, 'SIGKILL');
    const replaced = await timed(() =>
      waitFor('the killed worker to be replaced by a ready one', async () => {
        const ws = (await rpc(socket, 'status')).groups[0].workers as any[];
        const fresh = ws.find((w) => !before.includes(w.pid) && w.state === 'ready');
        if (fresh) track(fresh.pid);
        return fresh;
      }, 15_000),
    );
    for (let i = 0; i < 20; i++) statusMs.push((await timed(() => rpc(socket, 'status'))).ms);
    // smoothd pings every half WATCHDOG_USEC; on a fast machine all of the above takes less
    // than one interval, which would judge the watchdog on a single ping. Keep the log
    // blocked and status polled until the window spans two whole WATCHDOG_USEC (4 intervals).
    while (Date.now() < windowStart + 2 * watchdogMs) {
      statusMs.push((await timed(() => rpc(socket, 'status'))).ms);
      await new Promise((r) => setTimeout(r, 100));
    }
    const windowEnd = Date.now();

    // The watchdog was fed all along: from the window's start, through every ping inside it, to
    // its end, no stretch as long as WATCHDOG_USEC.
    const pings = notify.messages.filter((m) => m.text === 'WATCHDOG=1' && m.at > windowStart && m.at <= windowEnd).map((m) => m.at);
    const marks = [windowStart, ...pings, windowEnd];
    const gaps = marks.slice(1).map((t, i) => t - marks[i]!);
    expect(pings.length, `WATCHDOG=1 pings in the ${windowEnd - windowStart} ms window`).toBeGreaterThanOrEqual(2);
    expect(Math.max(...gaps), `gaps ${gaps.join(', ')} ms`).toBeLessThan(watchdogMs);
    expect(Math.max(...statusMs)).toBeLessThan(2_000);

    // Now the reader reads (as fast as it can, like journald): what was buffered arrives,
    // then the warning with the count.
    let out = '';
    const stdout = new net.Socket({ fd: reader, readable: true, writable: false });
    readerOwned = true;
    cleanup.push(() => stdout.destroy());
    const warning = await new Promise<{ level: number; msg: string; dropped: number }>((resolve, reject) => {
      let tail = '';
      const timer = setTimeout(() => reject(new Error(`no "dropped" warning within 20 s; read ${out.length} bytes`)), 20_000);
      stdout.on('data', (b: Buffer) => {
        const text = tail + b.toString();
        out += b.toString();
        const lines = text.split('\n');
        tail = lines.pop()!;
        const hit = lines.find((l) => l.includes('log lines dropped while stdout was blocked'));
        if (hit) {
          clearTimeout(timer);
          resolve(JSON.parse(hit));
        }
      });
    });
    expect(warning.level).toBe(40);
    expect(warning.dropped).toBeGreaterThan(0);
    expect(warning.msg).toBe(`${warning.dropped} log lines dropped while stdout was blocked`);
    // The log was blocked for the whole measurement: no line logged inside the window got through.
    const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { time: string; msg: string });
    expect(lines.filter((l) => Date.parse(l.time) >= windowStart && Date.parse(l.time) <= windowEnd)).toEqual([]);

    // A normal stop still gets its last lines out.
    daemon.kill('SIGTERM');
    const ended = new Promise<void>((resolve) => stdout.once('end', () => resolve()));
    expect(await exited, stderr).toBe(0);
    await ended;
    expect(out).toContain('"msg":"smoothd stopped"');
    expect(alive(daemon.pid!)).toBe(false);

    const sorted = [...statusMs].sort((a, b) => a - b);
    console.log(
      `stalled stdout: status p50 ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms over ${sorted.length} calls; ` +
        `reload of 2 workers ${reload.ms} ms (smoothctl); SIGKILLed worker replaced and ready in ${replaced.ms} ms; ` +
        `watchdog max gap ${Math.max(...gaps)} ms (WATCHDOG_USEC ${watchdogMs} ms); ${warning.dropped} lines dropped`,
    );
  }, 90_000);
});
