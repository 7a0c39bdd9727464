/**
 * Starting one worker process: its own process group, the listen sockets as
 * fds 3.., the environment of DESIGN §4, a parent-death signal, output lines
 * re-emitted to smoothd's log, and the tail of stderr kept for reports.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { GenerationSpec } from '../supervisor/types.js';
import { LineSplitter } from './lines.js';

/** Makes LISTEN_PID the worker's own pid: `$$` of this shell is the pid the command keeps after exec (DESIGN §9). */
const EXEC_WRAPPER = 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"';

/** Variables from smoothd's own environment that must not leak into workers. */
const PRIVATE_ENV = ['LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID', 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE'];

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
}

export interface WorkerCallbacks {
  onReady(): void;
  onStatus(text: string): void;
  onStats(requests: number | null, errors: number | null): void;
  onExit(code: number | null, signal: string | null, stderrTail: string[]): void;
}

export interface RunningWorker {
  pid: number;
  child: ChildProcess;
  /** Signals the worker's whole process group. */
  signal(sig: NodeJS.Signals): void;
}

export const STDERR_TAIL = 20;

export function findSetpriv(): string | null {
  for (const p of ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv']) {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // try the next
    }
  }
  return null;
}

export function workerEnv(l: WorkerLaunch): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...l.baseEnv };
  for (const k of PRIVATE_ENV) delete env[k];
  Object.assign(env, l.spec.env);
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

export function workerArgv(l: WorkerLaunch): { file: string; args: string[] } {
  const [, ...rest] = l.spec.command;
  const inner = ['/bin/sh', '-c', EXEC_WRAPPER, l.spec.executable, ...rest];
  if (!l.setpriv) return { file: inner[0]!, args: inner.slice(1) };
  const ids: string[] = [];
  if (l.spec.user !== null) {
    ids.push('--reuid', l.spec.user, '--init-groups');
    ids.push('--regid', l.spec.group ?? primaryGroupOf(l.spec.user));
  } else if (l.spec.group !== null) {
    ids.push('--regid', l.spec.group, '--clear-groups');
  }
  return { file: l.setpriv, args: ['--pdeathsig', 'TERM', ...ids, '--', ...inner] };
}

/** The primary gid of a user from /etc/passwd (setpriv needs an explicit --regid). */
function primaryGroupOf(user: string): string {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === user || f[2] === user) return f[3] ?? user;
    }
  } catch {
    // fall through
  }
  return user;
}

export function startWorker(l: WorkerLaunch, log: Logger, cb: WorkerCallbacks): RunningWorker | Error {
  const useIpc = l.spec.ready.kind === 'ipc';
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...l.fds, ...(useIpc ? (['ipc'] as const) : [])];
  const { file, args } = workerArgv(l);
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      cwd: l.spec.cwdReal,
      env: workerEnv(l),
      stdio,
      detached: true, // setsid: its own process group, signalled as a whole
    });
  } catch (err) {
    return err as Error;
  }
  if (child.pid === undefined) {
    const err = new Error(`could not start ${l.spec.executable}`);
    child.once('error', () => undefined);
    return err;
  }
  const pid = child.pid;
  const fields = { group: l.group, workerId: l.workerId, pid };
  const tail: string[] = [];
  const out = new LineSplitter((line) => log.info({ ...fields, stream: 'stdout' }, line));
  const err = new LineSplitter((line) => {
    tail.push(line);
    if (tail.length > STDERR_TAIL) tail.shift();
    log.info({ ...fields, stream: 'stderr' }, line);
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
    signal(sig) {
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
