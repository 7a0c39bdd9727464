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
