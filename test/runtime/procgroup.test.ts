import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LingeringGroups, groupMembers, membersSince, parseStat, signalGroupIfMembers } from '../../src/runtime/procgroup.js';

const started: number[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const pid of started.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** A fake /proc with the given stat lines. */
function fakeProc(stats: string[]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-proc-'));
  for (const line of stats) {
    const pid = line.split(' ')[0]!;
    fs.mkdirSync(path.join(root, pid));
    fs.writeFileSync(path.join(root, pid, 'stat'), `${line}\n`);
  }
  fs.mkdirSync(path.join(root, 'self'));
  fs.mkdirSync(path.join(root, 'sys'));
  return root;
}

describe('parseStat', () => {
  it('reads state and pgrp after the last ")", whatever the command name holds', () => {
    expect(parseStat('4321 (node) S 1 4321 4321 0 -1 4194560')).toEqual({ pid: 4321, state: 'S', pgrp: 4321 });
    expect(parseStat('77 (my (odd) prog) R 5 70 70 0')).toEqual({ pid: 77, state: 'R', pgrp: 70 });
    expect(parseStat('78 (a) b) 9 9) Z 5 71 71 0')).toEqual({ pid: 78, state: 'Z', pgrp: 71 });
    expect(parseStat('79 ( ) S 1 72 72')).toEqual({ pid: 79, state: 'S', pgrp: 72 });
  });

  it('refuses text that is not a stat line', () => {
    expect(parseStat('')).toBeNull();
    expect(parseStat('garbage without parens')).toBeNull();
    expect(parseStat('12 (x) S 1 notanumber')).toBeNull();
  });
});

describe('groupMembers', () => {
  it('lists the group\'s processes, not zombies, not other groups, not a command that looks like a pgrp', () => {
    const root = fakeProc([
      '100 (sh) S 1 100 100 0',
      '101 (node) S 100 100 100 0',
      '102 (dead) Z 100 100 100 0',
      '103 (x 100 100) S 1 200 200 0',
      '104 (other) S 1 200 200 0',
    ]);
    expect(groupMembers(100, root).sort()).toEqual([100, 101]);
    expect(groupMembers(200, root).sort()).toEqual([103, 104]);
    expect(groupMembers(300, root)).toEqual([]);
    expect(groupMembers(100, path.join(root, 'missing'))).toEqual([]);
  });

  it('sees a real process group and its end', async () => {
    const child = spawn('/bin/sh', ['-c', 'sleep 30 & wait'], { detached: true, stdio: 'ignore' });
    started.push(child.pid!);
    // The shell has started its `sleep` once the group has two members.
    for (let i = 0; i < 400 && groupMembers(child.pid!).length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    const both = groupMembers(child.pid!);
    expect(both.length).toBe(2);
    // Known members are checked first; when none is left, /proc is read again to find the others.
    expect(membersSince(child.pid!, [both[1]!])).toEqual([both[1]]);
    expect(membersSince(child.pid!, [2 ** 22 + 1]).sort()).toEqual([...both].sort());
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    // The orphaned sleep may be a zombie for a moment: it counts as gone.
    for (let i = 0; i < 40 && groupMembers(child.pid!).length > 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(groupMembers(child.pid!)).toEqual([]);
  });
});

describe('signalling a group whose leader is gone', () => {
  it('never signals a group id without members (it may have been reused)', () => {
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    expect(signalGroupIfMembers(4242, 'SIGKILL', () => [])).toBe(false);
    expect(kill).not.toHaveBeenCalled();
    expect(signalGroupIfMembers(4242, 'SIGTERM', () => [4243])).toBe(true);
    expect(kill).toHaveBeenCalledWith(-4242, 'SIGTERM');
  });

  it('LingeringGroups: watches only groups with members, polls only while one lingers, reports each once', async () => {
    const live = new Map<number, number[]>([[500, [501]]]);
    const gone: number[] = [];
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    const g = new LingeringGroups({ onGone: (id) => gone.push(id), intervalMs: 10, members: (pgid) => live.get(pgid) ?? [] });
    expect(g.leaderExited(1, 600)).toBe(false); // empty group: a plain exit
    expect(g.leaderExited(2, 500)).toBe(true);
    g.signal(2, 'SIGTERM');
    expect(kill).toHaveBeenCalledWith(-500, 'SIGTERM');
    live.delete(500);
    await vi.waitFor(() => expect(gone).toEqual([2]), { timeout: 1000, interval: 5 });
    // Gone: a late SIGKILL reaches nothing.
    kill.mockClear();
    g.signal(2, 'SIGKILL');
    expect(kill).not.toHaveBeenCalled();
    expect(g.has(2)).toBe(false);
    // A signal that finds the group empty before the poll does reports it gone at once, unsignalled.
    live.set(700, [701]);
    expect(g.leaderExited(3, 700)).toBe(true);
    live.delete(700);
    g.signal(3, 'SIGKILL');
    expect(kill).not.toHaveBeenCalled();
    expect(gone).toEqual([2, 3]);
    g.close();
  });
});
