/**
 * Process groups from /proc. A worker is its own process group (DESIGN §4);
 * when its leader exits, other members (a shell wrapper's helper child) can live
 * on with the inherited listen sockets (DESIGN §13). This module finds a group's
 * members, signals a group only while it has members (its id may be reused once
 * it is empty), and watches groups whose leader is gone until they are empty.
 */
import fs from 'node:fs';

export interface ProcStat {
  pid: number;
  state: string;
  pgrp: number;
}

/**
 * Parses /proc/PID/stat. The command name (field 2) is in parentheses and may
 * itself hold spaces and parentheses, so the fields are read after the last ')'.
 */
export function parseStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const pid = Number.parseInt(text, 10);
  // After ") ": state (field 3), ppid (4), pgrp (5).
  const rest = text.slice(close + 2).split(' ');
  const state = rest[0];
  const pgrp = Number(rest[2]);
  if (!Number.isInteger(pid) || !state || !Number.isInteger(pgrp)) return null;
  return { pid, state, pgrp };
}

/**
 * False when the kernel knows no process at all in group `pgid` (signal 0 sends
 * nothing): then /proc need not be read, which is the common case when a
 * worker exits. True means members, possibly only zombies.
 */
function anyProcessIn(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // members owned by another user
  }
}

const exited = (state: string): boolean => state === 'Z' || state === 'X';

/** Pids of the members of process group `pgid` that have not exited; zombies (state Z) count as gone (DESIGN §9). */
export function groupMembers(pgid: number, procRoot = '/proc'): number[] {
  if (procRoot === '/proc' && !anyProcessIn(pgid)) return [];
  let names: string[];
  try {
    names = fs.readdirSync(procRoot);
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const name of names) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue; // not a pid folder
    let text: string;
    try {
      text = fs.readFileSync(`${procRoot}/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    const st = parseStat(text);
    if (st && st.pgrp === pgid && !exited(st.state)) members.push(st.pid);
  }
  return members;
}

/**
 * Members of `pgid`, looking first at the `known` ones (a few reads): the whole
 * of /proc is read only when none of them is left, to find members forked since.
 */
export function membersSince(pgid: number, known: readonly number[]): number[] {
  const left = known.filter((pid) => {
    try {
      const st = parseStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      return st !== null && st.pgrp === pgid && !exited(st.state);
    } catch {
      return false;
    }
  });
  return left.length > 0 ? left : groupMembers(pgid);
}

/**
 * Sends `sig` to process group `pgid` only if /proc shows it still has members:
 * an empty group's id may already belong to a new process. True when sent.
 */
export function signalGroupIfMembers(pgid: number, sig: NodeJS.Signals, members: (pgid: number) => number[] = groupMembers): boolean {
  if (members(pgid).length === 0) return false;
  return signalGroup(pgid, sig);
}

function signalGroup(pgid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false; // emptied between the check and the signal
  }
}

export interface LingeringOptions {
  /** Called once when the group of `workerId` is empty. */
  onGone(workerId: number): void;
  /** Poll interval while some group lingers. */
  intervalMs?: number;
  /** Members of a group (tests pass a fake; default: /proc). */
  members?: (pgid: number) => number[];
}

/**
 * Groups whose leader has exited, watched until /proc shows them empty. Polls
 * only while at least one group lingers; nothing runs otherwise.
 */
export class LingeringGroups {
  /** workerId -> its group id and the members last seen. */
  private readonly groups = new Map<number, { pgid: number; known: number[] }>();
  private timer: NodeJS.Timeout | null = null;
  private readonly intervalMs: number;

  constructor(private readonly opts: LingeringOptions) {
    this.intervalMs = opts.intervalMs ?? 150;
  }

  /** The leader of `workerId` (pid = pgid) has exited: true if its group still has members, which are then watched. */
  leaderExited(workerId: number, pgid: number): boolean {
    const known = (this.opts.members ?? groupMembers)(pgid);
    if (known.length === 0) return false;
    this.groups.set(workerId, { pgid, known });
    this.schedule();
    return true;
  }

  has(workerId: number): boolean {
    return this.groups.has(workerId);
  }

  /** Signals a lingering group after checking it still has members; an empty one is reported gone instead. */
  signal(workerId: number, sig: NodeJS.Signals): void {
    const g = this.groups.get(workerId);
    if (!g) return;
    if (!this.stillThere(g) || !signalGroup(g.pgid, sig)) this.gone(workerId);
  }

  /** Stops watching (smoothd exits). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.groups.clear();
  }

  /** True while the group has members; remembers them for the next, cheaper look. */
  private stillThere(g: { pgid: number; known: number[] }): boolean {
    g.known = this.opts.members ? this.opts.members(g.pgid) : membersSince(g.pgid, g.known);
    return g.known.length > 0;
  }

  private gone(workerId: number): void {
    if (!this.groups.delete(workerId)) return;
    this.opts.onGone(workerId);
  }

  private schedule(): void {
    if (this.timer || this.groups.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      for (const [workerId, g] of [...this.groups]) if (!this.stillThere(g)) this.gone(workerId);
      this.schedule();
    }, this.intervalMs);
  }
}
