// Every process the benchmark starts, by pid, so that all of them are ended at
// the end of the run, on an error and on SIGINT/SIGTERM. Pids the daemon or the
// cluster primary report for their own workers are added too, so nothing
// outlives the benchmark even if the daemon dies first.
import { spawn, fork } from 'node:child_process';
import fs from 'node:fs';

const tracked = new Map(); // pid -> { name, child|null }

export function track(pid, name, child = null) {
  if (pid) tracked.set(pid, { name, child });
}

export function untrack(pid) {
  tracked.delete(pid);
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function trackChild(child, name) {
  track(child.pid, name, child);
  child.once('exit', () => untrack(child.pid));
  return child;
}

export function spawnTracked(name, file, args, opts = {}) {
  return trackChild(spawn(file, args, opts), name);
}

export function forkTracked(name, file, args, opts = {}) {
  return trackChild(fork(file, args, opts), name);
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM the pid, SIGKILL after graceMs if it is still there. */
export async function stopPid(pid, graceMs = 5000) {
  if (!alive(pid)) return untrack(pid);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return untrack(pid);
  }
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    if (!alive(pid) || isZombie(pid)) return untrack(pid);
    await sleep(25);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
  untrack(pid);
}

function isZombie(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** Ends every tracked process, children started by us first. */
export async function stopAll() {
  const pids = [...tracked.keys()];
  await Promise.all(pids.map((pid) => stopPid(pid, 3000)));
}

/** Last resort on process exit: SIGKILL whatever is still tracked. */
export function killAllSync() {
  for (const pid of tracked.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  tracked.clear();
}

/** Installs the SIGINT/SIGTERM/exit handlers; onSignal runs once every process has ended. */
export function installCleanup(onSignal) {
  let stopping = false;
  const handler = (sig) => {
    if (stopping) {
      killAllSync();
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(`\nbench: ${sig}: stopping every process it started...\n`);
    stopAll()
      .then(() => onSignal?.())
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('exit', killAllSync);
}

export function trackedCount() {
  return tracked.size;
}

/**
 * Calls `fn(entry)` for each line of `stream` (smoothd's `--log-format json`
 * stdout) that parses as JSON; with `want`, only for lines it matches, which
 * are the only ones parsed.
 */
export function onJsonLines(stream, fn, want = null) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (want !== null && !want.test(line)) continue;
      let e;
      try {
        e = JSON.parse(line);
      } catch {
        continue;
      }
      fn(e);
    }
  });
}

/**
 * Starts smoothd (`argv` after the node binary; it must log JSON) and resolves
 * once its log says every worker is ready, within `timeoutMs`. Each worker pid
 * it logs as started is tracked (killed by pid if the bench stops) and kept in
 * `workerPids` until smoothd logs it exited or crashed. Rejects, with the tail of smoothd's stderr, when smoothd exits
 * first or the time runs out.
 */
export async function startSmoothdReady(tag, argv, { cwd, timeoutMs, workerLabel }) {
  const child = spawnTracked(tag, process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  const d = { child, pid: child.pid, workerPids: new Set(), stderr: '' };
  let onReady = null;
  const want = /"(worker started|worker exited|worker crashed|every worker is ready)"/;
  onJsonLines(
    child.stdout,
    (e) => {
      if (e.msg === 'worker started' && e.pid) {
        d.workerPids.add(e.pid);
        track(e.pid, `${workerLabel} ${e.workerId}`);
      } else if ((e.msg === 'worker exited' || e.msg === 'worker crashed') && e.pid) {
        // Reaped: its pid is free for any other process (a long run spawns more
        // workers than pid_max), so it must never be killed by pid from here on.
        d.workerPids.delete(e.pid);
        untrack(e.pid);
      } else if (e.msg === 'every worker is ready') onReady?.();
    },
    want,
  );
  child.stderr.on('data', (b) => (d.stderr += b));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${tag}: not every worker ready within ${timeoutMs / 1000} s; stderr: ${d.stderr.slice(-500)}`)), timeoutMs);
    onReady = () => (clearTimeout(timer), resolve());
    child.once('exit', (code) => reject(new Error(`${tag} exited with ${code} before every worker was ready; stderr: ${d.stderr.slice(-500)}`)));
  });
  return d;
}

/**
 * Stops a smoothd from startSmoothdReady (or any `{pid, child, workerPids}`)
 * and then, by pid, any of its workers still alive (smoothd was killed): only
 * a pid whose /proc cmdline still `isWorker` (it may have been reused).
 */
export async function stopSmoothd(d, timeoutMs, isWorker) {
  await stopPid(d.pid, timeoutMs);
  await exited(d.child);
  for (const pid of d.workerPids) {
    let cmd = null;
    try {
      if (alive(pid)) cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      // gone
    }
    if (cmd !== null && isWorker(cmd)) await stopPid(pid, 3000);
    else untrack(pid);
  }
}
