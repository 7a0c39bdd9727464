/**
 * The init-mode reaper (DESIGN §12) on a fake /proc with a fake addon: it
 * waits only for zombies whose parent is smoothd and whose pid libuv did not
 * spawn. Plus the real child tracking and the real addon's load failure.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isOwnChild, trackOwnChildren } from '../../src/runtime/own-children.js';
import { ADDON_PATH, childPids, initMode, loadInitAddon, Reaper, type InitAddon, type Reaped } from '../../src/runtime/reaper.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A /proc with smoothd (pid 50, two threads) and the given children. */
function fakeProc(children: { pid: number; state: string; ppid?: number; tid?: number }[]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-fakeproc-'));
  dirs.push(root);
  for (const tid of [50, 51]) {
    fs.mkdirSync(`${root}/50/task/${tid}`, { recursive: true });
    const mine = children.filter((c) => (c.tid ?? 50) === tid).map((c) => c.pid);
    fs.writeFileSync(`${root}/50/task/${tid}/children`, mine.map((p) => `${p} `).join(''));
  }
  for (const c of children) {
    fs.mkdirSync(`${root}/${c.pid}`, { recursive: true });
    fs.writeFileSync(`${root}/${c.pid}/stat`, `${c.pid} (sle ep) ${c.state} ${c.ppid ?? 50} ${c.pid} ${c.pid} 0 -1\n`);
  }
  return root;
}

function fakeAddon(): InitAddon & { calls: number[] } {
  const calls: number[] = [];
  return { calls, setChildSubreaper: () => true, reap: (pid) => (calls.push(pid), { pid, code: 0, signal: null }) };
}

describe('Reaper.scan', () => {
  it('reaps zombie children of smoothd on every thread, but never a pid libuv spawned, a live child or another parent', () => {
    const root = fakeProc([
      { pid: 60, state: 'Z' }, // orphan zombie: reaped
      { pid: 61, state: 'Z', tid: 51 }, // orphan zombie forked/reparented on another thread: reaped
      { pid: 62, state: 'Z' }, // a worker's zombie libuv has not waited for yet: never
      { pid: 63, state: 'S' }, // an orphan still running
      { pid: 64, state: 'Z', ppid: 99 }, // listed, but its parent changed meanwhile
    ]);
    const addon = fakeAddon();
    const seen: Reaped[] = [];
    const r = new Reaper({ addon, pid: 50, procRoot: root, isOwnChild: (p) => p === 62, onReaped: (x) => seen.push(x) });
    expect(r.scan()).toBe(2);
    expect(addon.calls.sort()).toEqual([60, 61]);
    expect(seen.map((x) => x.pid).sort()).toEqual([60, 61]);
    expect(r.reaped).toBe(2);
  });

  it('does not count a pid the addon could not wait for (already gone)', () => {
    const root = fakeProc([{ pid: 70, state: 'Z' }]);
    const r = new Reaper({ addon: { setChildSubreaper: () => true, reap: () => null }, pid: 50, procRoot: root, isOwnChild: () => false });
    expect(r.scan()).toBe(0);
  });

  it('reads the children of every thread', () => {
    const root = fakeProc([{ pid: 80, state: 'S' }, { pid: 81, state: 'S', tid: 51 }]);
    expect(childPids(50, root)?.sort()).toEqual([80, 81]);
  });
});

describe('init mode', () => {
  it('is on by itself as PID 1 (--init changes nothing there) and with --init elsewhere', () => {
    expect(initMode(1, false)).toEqual({ on: true, reason: 'pid1' });
    expect(initMode(1, true)).toEqual({ on: true, reason: 'pid1' });
    expect(initMode(4242, true)).toEqual({ on: true, reason: 'flag' });
    expect(initMode(4242, false)).toEqual({ on: false });
  });

  it('tracks every child libuv spawned until libuv has waited for it', async () => {
    trackOwnChildren();
    const child = spawn('sleep', ['0.05']);
    const pid = child.pid!;
    expect(isOwnChild(pid)).toBe(true);
    await new Promise((r) => child.once('exit', r));
    expect(isOwnChild(pid)).toBe(false);
  });

  it('loads the prebuilt addon here (linux-x64)', () => {
    const a = loadInitAddon();
    if (process.arch !== 'x64') return expect(a).toBeInstanceOf(Error);
    expect(a).not.toBeInstanceOf(Error);
    expect((a as InitAddon).reap(2 ** 22 + 1)).toBeNull(); // not a child: nothing to wait for
  });

  it('where it cannot load, says so and names tini', () => {
    const a = loadInitAddon(path.join(path.dirname(ADDON_PATH.pathname), '../linux-riscv64/smoothd_init.node'));
    expect(a).toBeInstanceOf(Error);
    expect((a as Error).message).toMatch(/cannot load its init helper .*linux-riscv64.*: orphaned processes will not be reaped .*tini instead \(docker run --init, or tini -- smoothd \.\.\.\)/);
  });
});
