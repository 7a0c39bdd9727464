/**
 * src/log.ts and src/log-sink.ts on real file descriptors: the journald
 * priority prefix when JOURNAL_STREAM names the fd, colour switches for pretty
 * logs, and the sink on a FIFO nobody reads (bounded buffer, whole lines
 * dropped and counted, one warning once the reader is back), plus the flush
 * on a normal exit, in a child process.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, isJournalStream, useColor } from '../src/log.js';
import { StdoutSink, syslogPriority } from '../src/log-sink.js';
import { ROOT, killAll, track } from './integration/harness.js';

let cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup.reverse()) fn();
  cleanup = [];
  killAll();
});

function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-log-'));
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function openFile(): { fd: number; file: string; stream: string } {
  const file = path.join(tmp(), 'out.log');
  const fd = fs.openSync(file, 'w');
  cleanup.push(() => fs.closeSync(fd));
  const st = fs.fstatSync(fd, { bigint: true });
  return { fd, file, stream: `${st.dev}:${st.ino}` };
}

async function logAllLevels(fd: number, env: NodeJS.ProcessEnv, format: 'json' | 'pretty' = 'json'): Promise<void> {
  const log = await createLogger('trace', format, { fd, env, flushOnExit: false });
  log.trace('t');
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.error('e');
  log.fatal('f');
  await new Promise<void>((resolve) => log.flush(() => resolve()));
}

describe('journald priority prefix', () => {
  it('prefixes every line with its sd-daemon priority when JOURNAL_STREAM is the fd', async () => {
    const { fd, file, stream } = openFile();
    expect(isJournalStream({ JOURNAL_STREAM: stream }, fd)).toBe(true);
    await logAllLevels(fd, { JOURNAL_STREAM: stream });
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => l.slice(0, 3))).toEqual(['<7>', '<7>', '<6>', '<4>', '<3>', '<3>']);
    expect(lines.map((l) => JSON.parse(l.slice(3)).msg)).toEqual(['t', 'd', 'i', 'w', 'e', 'f']);
  });

  it('adds no prefix when JOURNAL_STREAM names another stream, is malformed or unset', async () => {
    const other = openFile();
    for (const env of [{ JOURNAL_STREAM: other.stream }, { JOURNAL_STREAM: 'garbage' }, {}]) {
      const { fd, file } = openFile();
      expect(isJournalStream(env, fd)).toBe(false);
      await logAllLevels(fd, env);
      const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
      expect(lines).toHaveLength(6);
      for (const l of lines) expect(l.startsWith('{"level":')).toBe(true);
    }
  });

  it('prefixes every line of a multi-line pretty record', async () => {
    const { fd, file, stream } = openFile();
    const log = await createLogger('info', 'pretty', { fd, env: { JOURNAL_STREAM: stream, NO_COLOR: '1' }, flushOnExit: false });
    log.warn({ group: 'web', workerId: 3 }, 'worker crashed');
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(1);
    expect(lines[0]).toMatch(/^<4>\[.*\] WARN: worker crashed$/);
    for (const l of lines) expect(l.startsWith('<4>')).toBe(true);
  });

  it('maps pino levels to syslog priorities', () => {
    expect([10, 20, 30, 40, 50, 60].map(syslogPriority)).toEqual([7, 7, 6, 4, 3, 3]);
  });
});

describe('colour in pretty logs', () => {
  it('FORCE_COLOR turns it on (0 or false off), a non-empty NO_COLOR off, else a terminal decides', () => {
    expect(useColor({}, true)).toBe(true);
    expect(useColor({}, false)).toBe(false);
    expect(useColor({ NO_COLOR: '1' }, true)).toBe(false);
    expect(useColor({ NO_COLOR: '' }, true)).toBe(true);
    expect(useColor({ FORCE_COLOR: '1' }, false)).toBe(true);
    expect(useColor({ FORCE_COLOR: '' }, false)).toBe(true);
    expect(useColor({ FORCE_COLOR: '0' }, true)).toBe(false);
    expect(useColor({ FORCE_COLOR: 'false' }, true)).toBe(false);
  });

  it('writes ANSI colours with FORCE_COLOR and none with NO_COLOR', async () => {
    const forced = openFile();
    await logAllLevels(forced.fd, { FORCE_COLOR: '1' }, 'pretty');
    expect(fs.readFileSync(forced.file, 'utf8')).toContain('\x1b[');
    const plain = openFile();
    await logAllLevels(plain.fd, { NO_COLOR: '1' }, 'pretty');
    const text = fs.readFileSync(plain.file, 'utf8');
    expect(text).toContain('WARN: w');
    expect(text).not.toContain('\x1b[');
  });
});

/** A FIFO with its read end open (non-blocking) and a non-blocking write end, like fd 1 under `smoothd | less`. */
function fifo(): { reader: number; writer: number } {
  const p = path.join(tmp(), 'stdout.fifo');
  execFileSync('mkfifo', [p]);
  const reader = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const writer = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  cleanup.push(() => {
    fs.closeSync(writer);
    fs.closeSync(reader);
  });
  return { reader, writer };
}

function readAvailable(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    try {
      const n = fs.readSync(fd, buf);
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw err;
    }
  }
  return Buffer.concat(chunks).toString();
}

describe('StdoutSink on a reader that reads', () => {
  it('writes the lines of one task in one write once the task is done, whole and in order', async () => {
    const { reader, writer } = fifo();
    const sink = new StdoutSink({ fd: writer, flushOnExit: false });
    cleanup.push(() => sink.close());
    expect(sink.mode).toBe('nonblocking');
    const writes = vi.spyOn(fs, 'writeSync');
    cleanup.push(() => writes.mockRestore());
    const lines = ['worker ready', 'stopping worker', 'worker started'].map((msg, i) => `{"level":30,"time":"t","workerId":${i},"msg":"${msg}"}\n`);
    for (const l of lines) sink.write(l);
    expect(readAvailable(reader)).toBe(''); // still inside the task that logged them
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    expect(readAvailable(reader)).toBe(lines.join(''));
    expect(writes.mock.calls.filter((c) => c[0] === writer)).toHaveLength(1);
    expect(sink.stats()).toEqual({ bufferedBytes: 0, dropping: 0, droppedTotal: 0 });
  });
});

describe('StdoutSink on a reader that does not read', () => {
  it('buffers a bounded amount, drops whole lines beyond it and reports the count once the reader drains', async () => {
    const { reader, writer } = fifo();
    const maxBytes = 16 * 1024;
    const sink = new StdoutSink({ fd: writer, maxBytes, flushOnExit: false });
    cleanup.push(() => sink.close());
    expect(sink.mode).toBe('nonblocking');
    const total = 3000;
    for (let i = 0; i < total; i++) sink.write(`{"level":30,"time":"t","i":${i},"msg":"${'x'.repeat(80)}"}\n`);
    const stats = sink.stats();
    // The pipe holds 64 KiB, the sink at most maxBytes: the rest (~100 B a line) is dropped.
    expect(stats.bufferedBytes).toBeLessThanOrEqual(maxBytes);
    expect(stats.bufferedBytes).toBeGreaterThan(maxBytes - 200);
    expect(stats.dropping).toBeGreaterThan(total - (64 * 1024 + maxBytes) / 100);

    // The reader comes back: everything buffered arrives, then one warning with the count.
    let text = '';
    const flushed = new Promise<void>((resolve) => sink.flush(() => resolve()));
    const reading = setInterval(() => (text += readAvailable(reader)), 5);
    await flushed;
    clearInterval(reading);
    text += readAvailable(reader);
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { i?: number; level: number; msg: string; dropped?: number });
    const warning = lines.at(-1)!;
    expect(warning.level).toBe(40);
    expect(warning.msg).toBe(`${stats.dropping} log lines dropped while stdout was blocked`);
    expect(warning.dropped).toBe(stats.dropping);
    // Every line that arrived is whole, they are the first ones, and with the dropped ones they account for all.
    const seen = lines.slice(0, -1).map((l) => l.i!);
    expect(seen).toEqual(seen.map((_, i) => i));
    expect(seen.length + stats.dropping).toBe(total);

    // Logging goes on normally after the warning.
    sink.write('{"level":30,"time":"t","msg":"after"}\n');
    const after = await new Promise<string>((resolve) => sink.flush(() => resolve(readAvailable(reader))));
    expect(after).toBe('{"level":30,"time":"t","msg":"after"}\n');
    expect(sink.stats()).toEqual({ bufferedBytes: 0, dropping: 0, droppedTotal: stats.dropping });
  });
});

describe('exit flush', () => {
  // A child whose stdout is a pipe the test reads only after the child has logged "the end" and gone idle.
  const script = (lines: number): string =>
    `import { createLogger } from ${JSON.stringify(path.join(ROOT, 'dist/log.js'))};
     const log = await createLogger('info', 'json');
     for (let i = 0; i < ${lines}; i++) log.info({ i }, 'x'.repeat(100));
     log.info('the end');
     process.stderr.write('logged\\n');`;

  function child(lines: number) {
    const proc = spawn(process.execPath, ['--input-type=module', '-e', script(lines)], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(proc.pid);
    const started = Date.now();
    const exited = new Promise<number>((resolve) => proc.once('exit', () => resolve(Date.now() - started)));
    const logged = new Promise<void>((resolve) => proc.stderr!.on('data', (b: Buffer) => b.toString().includes('logged') && resolve()));
    return { proc, exited, logged };
  }

  it('a normal exit waits for a slow reader to take the last lines', async () => {
    const { proc, exited, logged } = child(5000);
    proc.stdout!.pause();
    await logged;
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    proc.stdout!.resume();
    await exited;
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(5001);
    expect(JSON.parse(lines.at(-1)!).msg).toBe('the end');
  });

  it('a reader that never reads holds the exit about 2 s, not forever', async () => {
    // 40 000 lines (~6 MB) fill the pipe and the 4 MiB buffer.
    const { proc, exited } = child(40_000);
    proc.stdout!.pause();
    const ms = await exited;
    expect(ms).toBeGreaterThanOrEqual(2_000);
    expect(ms).toBeLessThan(15_000);
  });
});
