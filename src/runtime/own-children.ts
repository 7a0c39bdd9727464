/**
 * The pids of every child process libuv spawned for smoothd and has not yet
 * reaped: the children the init-mode reaper must never touch (DESIGN §12).
 *
 * Workers are not the only ones: a reload's `getent` lookups and the
 * `systemd-notify` fallback are libuv children too. So the list is kept where
 * every asynchronous spawn passes — `ChildProcess.prototype.spawn`, which
 * `spawn`, `execFile`, `exec` and `fork` all call. A pid enters the list in
 * the same synchronous step that forks it, and leaves it on the child's
 * 'exit' event, which Node emits right after libuv's own waitpid for it.
 * Both happen on the main thread, as does every reaper scan, so a scan never
 * sees a libuv child's zombie that is not in the list. (The `*Sync` spawns
 * wait for their child before they return, so no scan can see theirs.)
 */
import { ChildProcess } from 'node:child_process';

const live = new Set<number>();
let installed = false;

/** Starts tracking; call before smoothd spawns anything. Idempotent. */
export function trackOwnChildren(): void {
  if (installed) return;
  installed = true;
  // Not in Node's type declarations, but the method every async spawn calls (lib/child_process.js).
  const proto = ChildProcess.prototype as unknown as { spawn: (this: ChildProcess, ...args: unknown[]) => unknown };
  const original = proto.spawn;
  if (typeof original !== 'function') throw new Error('this Node has no ChildProcess.prototype.spawn; init mode cannot tell its own children apart');
  proto.spawn = function spawnTracked(this: ChildProcess, ...args: unknown[]) {
    try {
      return original.apply(this, args);
    } finally {
      const pid = this.pid;
      if (pid !== undefined) {
        live.add(pid);
        this.once('exit', () => live.delete(pid));
      }
    }
  };
}

/** True when libuv spawned `pid` and still has to wait for it. */
export function isOwnChild(pid: number): boolean {
  return live.has(pid);
}

/** How many children libuv waits for now (for the reaper's log). */
export function ownChildCount(): number {
  return live.size;
}
