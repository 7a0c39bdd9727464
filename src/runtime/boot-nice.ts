/**
 * Boot priority (`bootNice`): a new worker starts with every thread `bootNice`
 * nice levels below the group's normal priority, so that its start-up (module
 * loading, compiling, JIT warm-up) yields the CPU to the workers that serve;
 * once it is ready each of its threads gets the normal priority back.
 *
 * Linux nice values are per thread (DESIGN §13). The leader is reniced right
 * after spawn, while it is still smoothd's exec wrapper (`sh -c exec`, setpriv):
 * the threads Node creates later (V8 platform, libuv pool) inherit the value,
 * and the threads already in /proc/PID/task are reniced one by one as well.
 * At ready every thread of every process of the worker's process group that
 * still has the boot value is set back; a thread whose value the app changed
 * itself is left alone.
 *
 * Lowering a nice value again needs root, CAP_SYS_NICE or a RLIMIT_NICE that
 * allows it; without that smoothd could not restore the priority and the
 * worker would serve at the boot priority for good. Then smoothd does not
 * lower it at all and says so once per group.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import { groupMembers } from './procgroup.js';

/** Linux's lowest priority. */
const MAX_NICE = 19;
/** CAP_SYS_NICE in the capability bit sets of /proc/PID/status. */
const CAP_SYS_NICE = 23n;

/** Thread ids of a process (/proc/PID/task), empty when it is gone. */
export function threadsOf(pid: number, procRoot = '/proc'): number[] {
  try {
    return fs
      .readdirSync(`${procRoot}/${pid}/task`)
      .map(Number)
      .filter((tid) => Number.isInteger(tid) && tid > 0);
  } catch {
    return [];
  }
}

/** The nice value in a /proc stat line (field 19), or null. */
export function niceOfStat(text: string): number | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // After ") ": state is field 3, so field 19 is index 16.
  const nice = Number(text.slice(close + 2).split(' ')[16]);
  return Number.isInteger(nice) ? nice : null;
}

/** Nice value of thread `tid` of process `pid`, or null when it is gone. */
export function threadNice(pid: number, tid: number, procRoot = '/proc'): number | null {
  try {
    return niceOfStat(fs.readFileSync(`${procRoot}/${pid}/task/${tid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * Whether this process may set a nice value as low as `nice` (lower means more
 * CPU): root's or any holder's CAP_SYS_NICE, or a soft RLIMIT_NICE of at least
 * 20 - nice ("Max nice priority" in /proc/self/limits).
 */
export function mayLowerTo(nice: number, procSelf = '/proc/self'): boolean {
  try {
    const status = fs.readFileSync(`${procSelf}/status`, 'utf8');
    const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (capEff !== undefined && (BigInt(`0x${capEff}`) >> CAP_SYS_NICE) & 1n) return true;
  } catch {
    // no /proc: fall through to the limit
  }
  try {
    const limits = fs.readFileSync(`${procSelf}/limits`, 'utf8');
    const soft = /^Max nice priority\s+(\S+)/m.exec(limits)?.[1];
    if (soft === 'unlimited') return true;
    if (soft !== undefined && Number.isInteger(Number(soft))) return 20 - nice <= Number(soft);
  } catch {
    // unknown: assume not
  }
  return false;
}

interface Booting {
  pid: number;
  group: string;
  /** The nice value the worker inherited from smoothd, restored at ready. */
  base: number;
  /** The value it boots with. */
  boot: number;
}

export interface BootPriorityOptions {
  /** Whether smoothd may lower a nice value to this again (tests inject it). */
  mayLowerTo?: (nice: number) => boolean;
}

/** The workers smoothd started at boot priority and has not restored yet. */
export class BootPriority {
  private readonly booting = new Map<number, Booting>();
  /** Groups told that their bootNice cannot be applied, each once. */
  private readonly warned = new Set<string>();
  private readonly mayLower: (nice: number) => boolean;

  constructor(
    private readonly log: Logger,
    opts: BootPriorityOptions = {},
  ) {
    this.mayLower = opts.mayLowerTo ?? ((n) => mayLowerTo(n));
  }

  /** Right after spawn: start worker `workerId` (pid `pid`) `bootNice` levels lower. */
  lower(workerId: number, pid: number, group: string, bootNice: number): void {
    if (!(bootNice > 0)) return;
    let base: number;
    try {
      base = os.getPriority(pid);
    } catch {
      return; // already gone
    }
    const boot = Math.min(MAX_NICE, base + bootNice);
    if (boot === base) return;
    if (!this.mayLower(base)) {
      if (!this.warned.has(group)) {
        this.warned.add(group);
        this.log.warn(
          { group, bootNice, nice: base, uid: process.getuid?.() },
          `bootNice is not applied: smoothd could lower the priority of a booting worker but not give it back (nice ${boot} -> ${base} needs root, ` +
            `CAP_SYS_NICE or a RLIMIT_NICE of at least ${20 - base}, e.g. LimitNICE=${20 - base} in the unit), so workers start at normal priority; ` +
            'remove bootNice or give smoothd that right',
        );
      }
      return;
    }
    // The leader first: the threads it creates from now on inherit the value.
    trySetPriority(pid, boot);
    for (const tid of threadsOf(pid)) if (tid !== pid) trySetPriority(tid, boot);
    this.booting.set(workerId, { pid, group, base, boot });
  }

  /** The worker is ready: every thread of its process group still at the boot value gets the normal priority back. */
  restore(workerId: number): void {
    const b = this.booting.get(workerId);
    if (!b) return;
    this.booting.delete(workerId);
    const pids = new Set([b.pid, ...groupMembers(b.pid)]);
    let failed: string | null = null;
    for (const pid of pids) {
      for (const tid of threadsOf(pid)) {
        if (threadNice(pid, tid) !== b.boot) continue; // changed by the app itself, or gone
        const err = trySetPriority(tid, b.base);
        if (err && err.code !== 'ESRCH') failed = err.code ?? err.message;
      }
    }
    if (failed !== null) {
      this.log.warn({ group: b.group, workerId, pid: b.pid, err: failed }, `could not give the worker its normal priority back (nice ${b.base}); it runs at nice ${b.boot}`);
    }
  }

  /** The worker exited (or was never ready): nothing to restore. */
  forget(workerId: number): void {
    this.booting.delete(workerId);
  }

  /** Worker ids still at boot priority (for tests and status). */
  get pending(): number[] {
    return [...this.booting.keys()];
  }
}

function trySetPriority(tid: number, nice: number): NodeJS.ErrnoException | null {
  try {
    os.setPriority(tid, nice);
    return null;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { info?: { code?: string } };
    // Node reports uv errors as ERR_SYSTEM_ERROR with the errno name in info.code.
    if (e.info?.code) e.code = e.info.code.toUpperCase();
    return e;
  }
}
