/**
 * Init mode (DESIGN §12): smoothd as PID 1 of a container, or with
 * `smoothd --init` as a child subreaper. Orphaned processes reparent to
 * smoothd and, once they exit, stay zombies until smoothd waits for them;
 * libuv waits only for the children it spawned.
 *
 * The reaper waits for the others, one pid at a time: a zombie whose parent
 * is smoothd and whose pid libuv did not spawn (own-children.ts). It never
 * calls waitpid(-1), which would steal the exit of a worker from libuv. The
 * race this leaves is none: libuv only ever waits for pids it spawned, so a
 * pid it did not spawn is one nobody else in smoothd waits for.
 *
 * Node exposes no SIGCHLD handler (libuv owns it), so smoothd scans: every
 * second in init mode, and after each worker exit. A scan reads smoothd's
 * child list (/proc/self/task/TID/children) and the stat of each child.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { isOwnChild, trackOwnChildren } from './own-children.js';

export interface Reaped {
  pid: number;
  code: number | null;
  signal: number | null;
}

/** The native part (native/smoothd_init.c). */
export interface InitAddon {
  setChildSubreaper(): boolean;
  reap(pid: number): Reaped | null;
}

/** Where the prebuilt addon lives, from dist/runtime/ (and src/runtime/ in tests). */
export const ADDON_PATH = new URL(`../../prebuilds/${process.platform}-${process.arch}/smoothd_init.node`, import.meta.url);

/** The addon, or an Error that says why it cannot load and what to run instead. */
export function loadInitAddon(path: URL | string = ADDON_PATH): InitAddon | Error {
  const file = typeof path === 'string' ? path : path.pathname;
  try {
    const mod = createRequire(import.meta.url)(file) as Partial<InitAddon>;
    if (typeof mod.reap !== 'function' || typeof mod.setChildSubreaper !== 'function') throw new Error('it lacks reap/setChildSubreaper');
    return mod as InitAddon;
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' ? `the file is missing; smoothd ships it prebuilt for linux-x64 only, this is ${process.platform}-${process.arch}` : (err as Error).message.split('\n')[0];
    return new Error(
      `smoothd cannot load its init helper ${file} (${why}): orphaned processes will not be reaped and stay zombies; ` +
        'run smoothd under tini instead (docker run --init, or tini -- smoothd ...)',
    );
  }
}

/** Children of process `pid` from /proc/PID/task/TID/children; null when the kernel lacks that file. */
export function childPids(pid: number | 'self' = 'self', procRoot = '/proc'): number[] | null {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`${procRoot}/${pid}/task`);
  } catch {
    return null;
  }
  const out: number[] = [];
  let readable = false;
  for (const tid of tasks) {
    let text: string;
    try {
      text = fs.readFileSync(`${procRoot}/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue; // the thread ended, or no such file
    }
    readable = true;
    for (const p of text.split(' ')) if (p !== '' && p !== '\n') out.push(Number(p));
  }
  return readable || tasks.length === 0 ? out : null;
}

/** Pids of all processes (the fallback when the children files are missing). */
function allPids(procRoot: string): number[] {
  try {
    return fs
      .readdirSync(procRoot)
      .filter((n) => n.charCodeAt(0) >= 48 && n.charCodeAt(0) <= 57)
      .map(Number);
  } catch {
    return [];
  }
}

/** State and parent of a process from /proc/PID/stat, or null once it is gone. */
export function stateAndParent(pid: number, procRoot = '/proc'): { state: string; ppid: number } | null {
  let text: string;
  try {
    text = fs.readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const rest = text.slice(close + 2).split(' ');
  const ppid = Number(rest[1]);
  return rest[0] && Number.isInteger(ppid) ? { state: rest[0], ppid } : null;
}

export interface ReaperOptions {
  addon: InitAddon;
  /** smoothd's pid as this /proc sees it. */
  pid?: number;
  procRoot?: string;
  isOwnChild?: (pid: number) => boolean;
  onReaped?: (r: Reaped) => void;
}

export class Reaper {
  private timer: NodeJS.Timeout | null = null;
  /** Orphans reaped so far. */
  reaped = 0;
  /** Told about each orphan reaped (smoothd logs it at debug level). */
  onReaped: ((r: Reaped) => void) | null = null;

  constructor(private readonly opts: ReaperOptions) {}

  /** Reaps every orphaned zombie of smoothd now; returns how many. */
  scan(): number {
    const pid = this.opts.pid ?? process.pid;
    const root = this.opts.procRoot ?? '/proc';
    const own = this.opts.isOwnChild ?? isOwnChild;
    const candidates = childPids(this.opts.pid === undefined ? 'self' : pid, root) ?? allPids(root);
    let n = 0;
    for (const child of candidates) {
      if (own(child)) continue; // libuv's: it waits for this one itself
      const st = stateAndParent(child, root);
      if (st === null || st.state !== 'Z' || st.ppid !== pid) continue;
      const r = this.opts.addon.reap(child);
      if (r === null) continue;
      n += 1;
      this.opts.onReaped?.(r);
      this.onReaped?.(r);
    }
    this.reaped += n;
    return n;
  }

  /** Scans every `intervalMs` until close(); the timer does not keep smoothd alive. */
  start(intervalMs = 1000): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.scan(), intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

export type InitMode = { on: false } | { on: true; reason: 'pid1' | 'flag' };

/** Init mode is on by itself as PID 1; `--init` forces it elsewhere. */
export function initMode(pid: number, flag: boolean): InitMode {
  if (pid === 1) return { on: true, reason: 'pid1' };
  return flag ? { on: true, reason: 'flag' } : { on: false };
}

/**
 * Turns init mode on: tracks libuv's children, loads the addon, becomes a
 * child subreaper (unless PID 1, where orphans come anyway) and returns the
 * reaper, or the Error to warn with (then smoothd runs without reaping).
 * Call before smoothd spawns any process.
 */
export function startInit(mode: Extract<InitMode, { on: true }>, addonPath?: URL | string): Reaper | Error {
  try {
    trackOwnChildren();
  } catch (err) {
    return new Error(`${(err as Error).message}; run smoothd under tini instead (docker run --init, or tini -- smoothd ...)`);
  }
  const addon = loadInitAddon(addonPath);
  if (addon instanceof Error) return addon;
  if (mode.reason === 'flag') {
    try {
      addon.setChildSubreaper();
    } catch (err) {
      return new Error(`smoothd --init could not become a child subreaper (${(err as Error).message}); orphans of workers will not come to smoothd`);
    }
  }
  return new Reaper({ addon });
}
