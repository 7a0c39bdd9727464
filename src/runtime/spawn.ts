/**
 * Starting one worker process: its own process group, the listen sockets as
 * fds 3.., the environment of DESIGN §4, a parent-death signal, output lines
 * re-emitted to smoothd's log, and the tail of stderr kept for reports.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { GenerationSpec } from '../supervisor/types.js';
import { INSTALL_SETPRIV } from '../config/accounts.js';
import type { CompileCacheFolders } from './compile-cache.js';
import { LineSplitter } from './lines.js';
import { signalGroupIfMembers } from './procgroup.js';

/** Makes LISTEN_PID the worker's own pid: `$$` of this shell is the pid the command keeps after exec (DESIGN §9). */
const EXEC_WRAPPER = 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"';

/** Variables from smoothd's own environment that must not leak into workers. */
const PRIVATE_ENV = ['SMOOTHD_YOUNG_GENERATION', 'LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID', 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE'];

export interface WorkerLaunch {
  workerId: number;
  group: string;
  slot: number;
  generation: number;
  spec: GenerationSpec;
  /** fd of each listen entry, in `spec.listen` order. */
  fds: number[];
  /** Path of setpriv when available: used for the parent-death signal and user switching. */
  setpriv: string | null;
  baseEnv: NodeJS.ProcessEnv;
  /** The worker's own NOTIFY_SOCKET (`ready: notify`), bound by smoothd. */
  notifySocket?: string | undefined;
  /** The groups' NODE_COMPILE_CACHE folders (compile-cache.ts); null or absent: none. */
  compileCache?: CompileCacheFolders | null | undefined;
}

export interface WorkerCallbacks {
  onReady(): void;
  onStatus(text: string): void;
  onStats(requests: number | null, errors: number | null): void;
  onExit(code: number | null, signal: string | null, stderrTail: string[]): void;
  /** Each line the worker wrote (`smoothctl logs`). */
  onLine?(stream: 'stdout' | 'stderr', line: string): void;
}

export interface RunningWorker {
  pid: number;
  child: ChildProcess;
  /** Signals the worker's whole process group (after its leader exited, only while the group has members). */
  signal(sig: NodeJS.Signals): void;
  /** The last lines of stderr so far, with a line not yet ended, for reports made while it runs. */
  stderrTail(): string[];
}

export const STDERR_TAIL = 20;

/** Where setpriv is looked for before PATH (trusted system folders first). */
export const SETPRIV_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

/**
 * The setpriv workers are spawned through: the first executable `setpriv` in
 * SETPRIV_DIRS, then in smoothd's PATH (NixOS keeps it in
 * /run/current-system/sw/bin); null when there is none.
 *
 * For tests only (undocumented for operators): SMOOTHD_SETPRIV names the
 * setpriv to use instead of searching, and an empty value means "none", so a
 * test can show what happens on a machine without it.
 */
export function findSetpriv(env: NodeJS.ProcessEnv = process.env, systemDirs: readonly string[] = SETPRIV_DIRS): string | null {
  const forced = env.SMOOTHD_SETPRIV;
  if (forced !== undefined) return forced !== '' && isExecutableFile(forced) ? forced : null;
  const fromPath = (env.PATH ?? '').split(':').filter((d) => d.startsWith('/'));
  for (const dir of [...systemDirs, ...fromPath]) {
    const candidate = `${dir.replace(/\/+$/, '')}/setpriv`;
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function workerEnv(l: WorkerLaunch, compileCacheDir: string | null = null): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...l.baseEnv };
  for (const k of PRIVATE_ENV) delete env[k];
  Object.assign(env, l.spec.env);
  // A NODE_COMPILE_CACHE of the worker's own (smoothd's environment or the group's env:) wins.
  if (compileCacheDir !== null && l.spec.compileCache !== false && env.NODE_COMPILE_CACHE === undefined) env.NODE_COMPILE_CACHE = compileCacheDir;
  if (l.spec.listen.length > 0) {
    env.LISTEN_FDS = String(l.spec.listen.length);
    env.LISTEN_FDNAMES = l.spec.listen.map((e) => e.name).join(':');
  }
  env.SMOOTHD_GROUP = l.group;
  env.SMOOTHD_WORKER_ID = String(l.workerId);
  env.SMOOTHD_WORKER_SLOT = String(l.slot);
  env.SMOOTHD_GENERATION = String(l.generation);
  if (l.notifySocket) env.NOTIFY_SOCKET = l.notifySocket;
  env.SMOOTHD_READY = l.spec.ready.kind === 'delay' ? `${l.spec.ready.ms}ms` : l.spec.ready.kind;
  return env;
}

/**
 * The program and arguments that start a worker: the LISTEN_PID wrapper, run
 * through setpriv (parent-death signal, and the account of `user`/`group`)
 * when there is one. A worker with `user`/`group` is never started without
 * setpriv or without its resolved ids: that would run it as root. Throws
 * then (the config check refuses such a config before it gets here).
 */
export function workerArgv(l: WorkerLaunch): { file: string; args: string[] } {
  const [, ...rest] = l.spec.command;
  const inner = ['/bin/sh', '-c', EXEC_WRAPPER, l.spec.executable, ...rest];
  const switching = l.spec.user !== null || l.spec.group !== null;
  const account = l.spec.account ?? null;
  if (switching && !l.setpriv) {
    throw new Error(`group ${l.group} sets user/group but setpriv is not available, and smoothd never runs such a worker as root; ${INSTALL_SETPRIV}`);
  }
  if (switching && account === null) {
    throw new Error(`group ${l.group} sets user/group but its account was not resolved when the config was checked`);
  }
  if (!l.setpriv) return { file: inner[0]!, args: inner.slice(1) };
  const ids: string[] = [];
  if (account !== null) {
    if (account.uid !== null) ids.push('--reuid', String(account.uid));
    ids.push('--regid', String(account.gid));
    ids.push(account.uid !== null && account.initGroups ? '--init-groups' : '--clear-groups');
  }
  return { file: l.setpriv, args: ['--pdeathsig', 'TERM', ...ids, '--', ...inner] };
}

/**
 * Why a spawn failed, with the path and errno that explain it: Node reports
 * a missing cwd as ENOENT of the program, so look at the cwd first.
 */
export function describeSpawnFailure(file: string, cwd: string, err?: NodeJS.ErrnoException): string {
  const cwdProblem = pathProblem(cwd, true);
  if (cwdProblem) return `cwd ${cwd} ${cwdProblem}`;
  const fileProblem = pathProblem(file, false);
  if (fileProblem) return `${file} ${fileProblem}`;
  return `could not start ${file} in ${cwd}${err ? `: ${err.message}${err.code ? ` (${err.code})` : ''}` : ''}`;
}

function pathProblem(p: string, folder: boolean): string | null {
  try {
    const info = fs.statSync(p);
    if (folder && !info.isDirectory()) return 'is not a folder (ENOTDIR)';
    if (!folder && !info.isFile()) return 'is not a regular file (EACCES)';
    fs.accessSync(p, fs.constants.X_OK);
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    if (code === 'ENOENT') return 'does not exist (ENOENT)';
    if (code === 'ENOTDIR') return 'does not exist: a part of its path is not a folder (ENOTDIR)';
    if (code === 'EACCES') return `cannot be ${folder ? 'entered' : 'run'}: permission denied (EACCES)`;
    return `cannot be used (${code})`;
  }
}

/** Groups whose compile cache could not be prepared, each reported once. */
const compileCacheWarned = new Set<string>();

/** The group's NODE_COMPILE_CACHE folder for this worker, or null (turned off, none offered, or unusable). */
function compileCacheFor(l: WorkerLaunch, log: Logger): string | null {
  if (!l.compileCache || l.spec.compileCache === false) return null;
  if (l.spec.env.NODE_COMPILE_CACHE !== undefined || l.baseEnv.NODE_COMPILE_CACHE !== undefined) return null; // the worker's own wins
  const dir = l.compileCache.folderFor(l.group, l.spec.account);
  if (!(dir instanceof Error)) {
    compileCacheWarned.delete(l.group);
    return dir;
  }
  if (!compileCacheWarned.has(l.group)) {
    compileCacheWarned.add(l.group);
    log.warn({ group: l.group, err: dir.message }, 'workers of this group start without NODE_COMPILE_CACHE (set compileCache: false to say so)');
  }
  return null;
}

export function startWorker(l: WorkerLaunch, log: Logger, cb: WorkerCallbacks): RunningWorker | Error {
  const useIpc = l.spec.ready.kind === 'ipc';
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...l.fds, ...(useIpc ? (['ipc'] as const) : [])];
  let file = l.spec.executable;
  let child: ChildProcess;
  try {
    const argv = workerArgv(l);
    file = argv.file;
    child = spawn(file, argv.args, {
      cwd: l.spec.cwdReal,
      env: workerEnv(l, compileCacheFor(l, log)),
      stdio,
      detached: true, // setsid: its own process group, signalled as a whole
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return new Error(e.syscall === undefined ? e.message : describeSpawnFailure(file, l.spec.cwdReal, e));
  }
  if (child.pid === undefined) {
    // The errno comes with an 'error' event on the next tick: log it, describe it from the paths now.
    child.once('error', (e: NodeJS.ErrnoException) => log.warn({ group: l.group, workerId: l.workerId, err: e.message, code: e.code }, 'spawn failed'));
    return new Error(describeSpawnFailure(file, l.spec.cwdReal));
  }
  const pid = child.pid;
  const fields = { group: l.group, workerId: l.workerId, pid };
  const tail: string[] = [];
  const out = new LineSplitter((line) => {
    log.info({ ...fields, stream: 'stdout' }, line);
    cb.onLine?.('stdout', line);
  });
  const err = new LineSplitter((line) => {
    tail.push(line);
    if (tail.length > STDERR_TAIL) tail.shift();
    log.info({ ...fields, stream: 'stderr' }, line);
    cb.onLine?.('stderr', line);
  });
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => err.push(b));
  child.on('error', (e) => log.warn({ ...fields, err: e.message }, 'worker process error'));
  if (useIpc) {
    child.on('message', (m: unknown) => {
      if (m === 'ready' || (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'ready')) cb.onReady();
      else if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'status') {
        const text = (m as { text?: unknown }).text;
        if (typeof text === 'string') cb.onStatus(text.slice(0, 200));
      } else if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'stats') {
        const { requests, errors } = m as { requests?: unknown; errors?: unknown };
        const count = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);
        if (count(requests) !== null || count(errors) !== null) cb.onStats(count(requests), count(errors));
      }
    });
    // A worker that never talks must not keep smoothd busy, and a write to a dead channel is not fatal.
    child.channel?.unref();
  }

  // 'exit' can come before the last output is read: wait for both pipes (bounded,
  // since a grandchild may keep them open) so the stderr tail is complete.
  child.once('exit', (code, signal) => {
    let pending = 2;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      out.flush();
      err.flush();
      cb.onExit(code, signal, [...tail]);
    };
    const timer = setTimeout(finish, 250);
    const closed = (): void => {
      pending -= 1;
      if (pending === 0) finish();
    };
    for (const s of [child.stdout, child.stderr]) {
      if (!s || s.readableEnded || s.destroyed) closed();
      else s.once('close', closed);
    }
  });

  return {
    pid,
    child,
    stderrTail: () => (err.pending === '' ? [...tail] : [...tail, err.pending].slice(-STDERR_TAIL)),
    signal(sig) {
      // Once the leader has been reaped its pid may be reused, and so may the group id
      // when the group is empty: signal the group only while /proc shows members.
      if (child.exitCode !== null || child.signalCode !== null) {
        signalGroupIfMembers(pid, sig);
        return;
      }
      try {
        process.kill(-pid, sig);
      } catch {
        try {
          process.kill(pid, sig);
        } catch {
          // already gone
        }
      }
    },
  };
}
