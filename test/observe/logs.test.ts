/**
 * The workers' log rings (`smoothctl logs`) stay within their bound over many
 * worker lifecycles: the lines a ring still references (dropped ones waiting
 * for compaction included) never exceed `logs.lines` by more than a small
 * slack, and every kept line shares one hidden class (V8 gave each line made
 * by object spread a map of its own, ~350 bytes more per line).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LogStore, RING_SLACK } from '../../src/observe/logs.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** What a reload of `workers` workers writes: each new worker one stdout and one stderr line. */
function reload(store: LogStore, generation: number, workers: number, limits = { lines: 1000, bytes: 1024 * 1024 }): void {
  for (let i = 0; i < workers; i++) {
    const workerId = generation * workers + i;
    const pid = 10_000 + workerId;
    store.add({ at: 1_700_000_000_000 + workerId + 0.5, group: 'web', workerId, pid, generation, stream: 'stdout', text: `worker ${pid} up` }, limits);
    store.add({ at: 1_700_000_000_000 + workerId + 0.5, group: 'web', workerId, pid, generation, stream: 'stderr', text: `worker ${pid} note on stderr` }, limits);
  }
}

describe('log rings over many reloads', () => {
  it('keep at most logs.lines (+ a small slack) line objects, and the newest lines', () => {
    const store = new LogStore({ lines: 1000, bytes: 1024 * 1024 });
    let most = 0;
    for (let g = 1; g <= 1000; g++) {
      reload(store, g, 16);
      most = Math.max(most, store.retainedLines());
    }
    expect(most).toBeLessThanOrEqual(1000 + RING_SLACK);
    const tail = store.tail('web', 5000);
    expect(tail).toHaveLength(1000);
    expect(tail.at(-1)).toMatchObject({ generation: 1000, workerId: 1000 * 16 + 15, stream: 'stderr', text: `worker ${10_000 + 1000 * 16 + 15} note on stderr` });
    expect(tail.map((l) => l.seq)).toEqual([...tail.map((l) => l.seq)].sort((a, b) => a - b));
  });

  it('stay within the byte bound too, per group', () => {
    const store = new LogStore({ lines: 1000, bytes: 1024 * 1024 });
    const small = { lines: 1000, bytes: 2000 };
    let most = 0;
    for (let g = 1; g <= 500; g++) {
      reload(store, g, 16, small);
      most = Math.max(most, store.retainedLines());
    }
    const tail = store.tail(null, 5000);
    expect(tail.reduce((n, l) => n + Buffer.byteLength(l.text), 0)).toBeLessThanOrEqual(2000);
    expect(most).toBeLessThanOrEqual(tail.length + RING_SLACK);
  });

  it('give every kept line one hidden class (compiled code, V8 natives)', () => {
    const script = `
      import { LogStore } from ${JSON.stringify(path.join(ROOT, 'dist/observe/logs.js'))};
      const store = new LogStore({ lines: 1000, bytes: 1 << 20 });
      for (let i = 0; i < 3000; i++) store.add({ at: Date.now() + 0.5, group: 'web', workerId: i, pid: 1000 + i, generation: i >> 4, stream: i % 2 ? 'stdout' : 'stderr', text: 'line ' + i }, undefined);
      const t = store.tail('web', 1000);
      let distinct = 0;
      for (let i = 1; i < t.length; i++) if (!%HaveSameMap(t[i - 1], t[i])) distinct++;
      process.stdout.write(String(distinct));
    `;
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('0');
  });
});
