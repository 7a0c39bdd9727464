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
 *
 * Scheduler autogroups (found on these machines, DESIGN §13): with
 * kernel.sched_autogroup_enabled=1 (Debian's default) and smoothd in the root
 * cpu cgroup, the kernel first shares the CPU equally between sessions, and a
 * thread's nice value only orders the threads of its own session. Every
 * worker is a session of its own (setsid), so thread nice values alone change
 * nothing: two CPU-bound loops pinned to one core, one at nice 19, each in its
 * own session, got 37.5% and 36.9%; in one session 0.8% and 62.4%. The
 * session's weight is its autogroup's nice value (/proc/PID/autogroup): with
 * the booting one's at 10 they got 5.5% and 53.5%. So smoothd sets the
 * booting worker's autogroup too, when the worker has one of its own, and
 * gives it back with the threads'. The kernel lets anyone raise an
 * autogroup's value and lower it back to >= 0, but without CAP_SYS_ADMIN only
 * one change per 100 ms on the whole machine (EAGAIN otherwise), so a
 * restore could fail; an unprivileged smoothd leaves autogroups alone and says
 * once per group that bootNice has little effect there. Where smoothd runs in
 * a cpu cgroup of its own (systemd with `CPUWeight=` or other cpu settings)
 * autogroups do not apply and the autogroup's value is ignored.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import { groupMembers } from './procgroup.js';

/** Linux's lowest priority. */
const MAX_NICE = 19;
/** CAP_SYS_NICE in the capability bit sets of /proc/PID/status. */
const CAP_SYS_NICE = 23n;
/** CAP_SYS_ADMIN: changes an autogroup's nice value without the kernel's rate limit. */
const CAP_SYS_ADMIN = 21n;

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

/** Whether this process holds capability `bit` (its CapEff in /proc/self/status); false when /proc cannot tell. */
export function hasCapability(bit: bigint, procSelf = '/proc/self'): boolean {
  try {
    const status = fs.readFileSync(`${procSelf}/status`, 'utf8');
    const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return capEff !== undefined && ((BigInt(`0x${capEff}`) >> bit) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** A process's scheduler autogroup, from /proc/PID/autogroup ("/autogroup-12 nice 0"). */
export interface Autogroup {
  name: string;
  nice: number;
}

/**
 * The autogroup of `pid` ('self': smoothd's), or null when the kernel has none,
 * the process is gone, or it is in the kernel's default autogroup: init's
 * session and every process that never called setsid (smoothd as a container's
 * PID 1, or under a CI runner) read an empty file there, and that group's
 * priority cannot be changed. Workers are sessions of their own, so they have
 * an autogroup even then.
 */
export function autogroupOf(pid: number | 'self', procRoot = '/proc'): Autogroup | null {
  try {
    const m = /^(\S+) nice (-?\d+)/.exec(fs.readFileSync(`${procRoot}/${pid}/autogroup`, 'utf8'));
    return m ? { name: m[1]!, nice: Number(m[2]) } : null;
  } catch {
    return null;
  }
}

/** Whether the kernel schedules by autogroup (kernel.sched_autogroup_enabled). */
export function autogroupsEnabled(procRoot = '/proc'): boolean {
  try {
    return fs.readFileSync(`${procRoot}/sys/kernel/sched_autogroup_enabled`, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** Sets the nice value of `pid`'s autogroup; the error, or null. */
function trySetAutogroupNice(pid: number, nice: number, procRoot = '/proc'): NodeJS.ErrnoException | null {
  try {
    fs.writeFileSync(`${procRoot}/${pid}/autogroup`, String(nice));
    return null;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
}

/**
 * Whether this process may set a nice value as low as `nice` (lower means more
 * CPU): root's or any holder's CAP_SYS_NICE, or a soft RLIMIT_NICE of at least
 * 20 - nice ("Max nice priority" in /proc/self/limits).
 */
export function mayLowerTo(nice: number, procSelf = '/proc/self'): boolean {
  if (hasCapability(CAP_SYS_NICE, procSelf)) return true;
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
  /** Its own autogroup's nice value before and during boot, when smoothd changed it. */
  autogroup: { base: number; boot: number } | null;
  /** The timer that gives the priority back if the worker is still booting by then, or null. */
  giveBack: unknown;
}

/** The timer functions BootPriority uses (the runtime's clock; tests pass a fake one). */
export interface BootTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface BootPriorityOptions {
  /** Whether smoothd may lower a nice value to this again (tests inject it). */
  mayLowerTo?: (nice: number) => boolean;
  /** Where /proc is (tests point it at a fake one for autogroups). */
  procRoot?: string;
  /** Whether smoothd may change autogroups without the kernel's rate limit (CAP_SYS_ADMIN; tests inject it). */
  mayChangeAutogroups?: () => boolean;
  /** Timers for the give-back deadline (default: the global ones). */
  timers?: BootTimers;
}

/** The workers smoothd started at boot priority and has not restored yet. */
export class BootPriority {
  private readonly booting = new Map<number, Booting>();
  /** Groups told that their bootNice cannot be applied, each once. */
  private readonly warned = new Set<string>();
  /** Groups told that autogroups blunt their bootNice, each once. */
  private readonly warnedAutogroup = new Set<string>();
  private readonly mayLower: (nice: number) => boolean;
  private readonly procRoot: string;
  private readonly mayChangeAutogroups: () => boolean;
  private readonly timers: BootTimers;
  /** smoothd's own autogroup and whether autogroups are on, read once (null: not read yet). */
  private autogroupSetting: { own: Autogroup | null; enabled: boolean } | null = null;

  constructor(
    private readonly log: Logger,
    opts: BootPriorityOptions = {},
  ) {
    this.mayLower = opts.mayLowerTo ?? ((n) => mayLowerTo(n));
    this.procRoot = opts.procRoot ?? '/proc';
    this.mayChangeAutogroups = opts.mayChangeAutogroups ?? (() => hasCapability(CAP_SYS_ADMIN));
    this.timers = opts.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
  }

  /**
   * Right after spawn: start worker `workerId` (pid `pid`) `bootNice` levels
   * lower. A worker still booting at half its `readyTimeoutMs` gets its
   * normal priority back then: where the
   * serving workers leave no CPU idle a start at low priority could take
   * until its readyTimeout, and the boot priority must never turn a slow
   * start into a failed one.
   */
  lower(workerId: number, pid: number, group: string, bootNice: number, readyTimeoutMs = Infinity): void {
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
    for (const tid of threadsOf(pid, this.procRoot)) if (tid !== pid) trySetPriority(tid, boot);
    const autogroup = this.lowerAutogroup(pid, group, bootNice);
    const giveBackAfterMs = readyTimeoutMs / 2;
    const giveBack =
      giveBackAfterMs > 0 && Number.isFinite(giveBackAfterMs)
        ? this.timers.setTimeout(() => {
            if (!this.booting.has(workerId)) return;
            this.log.info(
              { group, workerId, pid, bootNice, afterMs: giveBackAfterMs },
              `worker still booting after half its readyTimeout (${giveBackAfterMs} ms): it gets its normal priority back now so that it can get ready in time`,
            );
            this.restore(workerId);
          }, giveBackAfterMs)
        : null;
    this.booting.set(workerId, { pid, group, base, boot, autogroup, giveBack });
  }

  /** When the worker is an autogroup of its own, that autogroup boots `bootNice` lower too; what was set, or null. */
  private lowerAutogroup(pid: number, group: string, bootNice: number): { base: number; boot: number } | null {
    this.autogroupSetting ??= { own: autogroupOf('self', this.procRoot), enabled: autogroupsEnabled(this.procRoot) };
    const { own, enabled } = this.autogroupSetting;
    const ag = autogroupOf(pid, this.procRoot);
    if (!enabled || ag === null || ag.name === own?.name) return null;
    if (!this.mayChangeAutogroups()) {
      if (!this.warnedAutogroup.has(group)) {
        this.warnedAutogroup.add(group);
        this.log.warn(
          { group, bootNice, autogroup: ag.name },
          'bootNice has little effect here: the kernel shares the CPU between sessions first (kernel.sched_autogroup_enabled=1) and every worker is a session ' +
            "of its own, and only root (CAP_SYS_ADMIN) may change a session's priority without the kernel's limit of one change per 100 ms; " +
            'run smoothd as root, or in a cpu cgroup of its own (systemd: CPUWeight=100 in the unit), or set kernel.sched_autogroup_enabled=0',
        );
      }
      return null;
    }
    const boot = Math.min(MAX_NICE, ag.nice + bootNice);
    if (boot === ag.nice || trySetAutogroupNice(pid, boot, this.procRoot) !== null) return null;
    return { base: ag.nice, boot };
  }

  /** The worker is ready: every thread of its process group still at the boot value gets the normal priority back. */
  restore(workerId: number): void {
    const b = this.booting.get(workerId);
    if (!b) return;
    this.forget(workerId);
    const pids = new Set([b.pid, ...groupMembers(b.pid, this.procRoot)]);
    let failed: string | null = null;
    for (const pid of pids) {
      for (const tid of threadsOf(pid, this.procRoot)) {
        if (threadNice(pid, tid, this.procRoot) !== b.boot) continue; // changed by the app itself, or gone
        const err = trySetPriority(tid, b.base);
        if (err && err.code !== 'ESRCH') failed = err.code ?? err.message;
      }
    }
    if (b.autogroup) {
      // Any live member of the session names its autogroup; one still at the boot value gets the base back.
      for (const pid of pids) {
        const ag = autogroupOf(pid, this.procRoot);
        if (ag === null) continue; // gone
        if (ag.nice === b.autogroup.boot) {
          const err = trySetAutogroupNice(pid, b.autogroup.base, this.procRoot);
          if (err) failed = err.code ?? err.message;
        }
        break;
      }
    }
    if (failed !== null) {
      this.log.warn({ group: b.group, workerId, pid: b.pid, err: failed }, `could not give the worker its normal priority back (nice ${b.base}); it runs at nice ${b.boot}`);
    }
  }

  /** The worker exited (or was never ready): nothing to restore. */
  forget(workerId: number): void {
    const b = this.booting.get(workerId);
    if (!b) return;
    if (b.giveBack !== null) this.timers.clearTimeout(b.giveBack);
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
