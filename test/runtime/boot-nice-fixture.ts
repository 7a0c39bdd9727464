// What the bootNice unit tests share: `sleep` processes to renice (killed after
// each test) and a pino logger that keeps its lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach } from 'vitest';
import pino from 'pino';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A `sleep 30`, its own session when `detached` (as every worker is); its pid. */
export function sleeper(detached: boolean): number {
  const c = spawn('sleep', ['30'], { detached, stdio: 'ignore' });
  children.push(c);
  return c.pid!;
}

/** A logger that keeps its lines. */
export function logger(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}
