import { describe, expect, it } from 'vitest';
import {
  formatAge,
  formatBytes,
  formatReportSummary,
  main,
  parseArgs,
  parseDuration,
  UsageError,
} from '../../src/cli/smoothctl.js';
import { formatProgress } from '../../src/cli/progress.js';
import type { ReloadReport } from '../../src/supervisor/report.js';

describe('parseArgs (the fast path)', () => {
  it('parses the common commands with options anywhere', () => {
    expect(parseArgs(['status', '--json'])).toEqual({ command: { name: 'status', json: true } });
    expect(parseArgs(['--socket', '/s', 'status'])).toEqual({ socket: '/s', command: { name: 'status', json: false } });
    expect(parseArgs(['reload', '--socket=/s', '--timeout', '2m', '--no-wait', '-gweb'])).toEqual({
      socket: '/s',
      timeoutMs: 120_000,
      command: { name: 'reload', groups: ['web'], wait: false, json: false },
    });
    expect(parseArgs(['restart', 'web', '--json'])).toEqual({ command: { name: 'restart', group: 'web', wait: true, json: true } });
    expect(parseArgs(['stop', '--wait'])).toEqual({ command: { name: 'stop', wait: true } });
    expect(parseArgs(['--', 'status'])).toEqual({ command: { name: 'status', json: false } });
  });

  it('recognises help and version', () => {
    expect(parseArgs(['--help']).command).toEqual({ name: 'help', topic: null });
    expect(parseArgs(['-h', 'reload']).command).toEqual({ name: 'help', topic: 'reload' });
    expect(parseArgs(['help', 'stop']).command).toEqual({ name: 'help', topic: 'stop' });
    expect(parseArgs(['status', '--version']).command).toEqual({ name: 'version' });
    expect(parseArgs(['-V']).command).toEqual({ name: 'version' });
  });

  it('throws UsageError for bad input', () => {
    expect(() => parseArgs(['reload', '--no-json=1'])).toThrow(UsageError);
    expect(() => parseArgs(['reload', '--group'])).toThrow(/needs a value/);
    expect(() => parseArgs(['reload', '--group', '--json'])).toThrow(/needs a value/);
    expect(() => parseArgs(['reload', '--no-group'])).toThrow(/unknown option --no-group/);
    expect(() => parseArgs(['-x'])).toThrow(/unknown option -x/);
  });
});

describe('parseDuration', () => {
  it('accepts ms, s, m, h and plain milliseconds', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('250')).toBe(250);
  });
  it('accepts compound durations, the same syntax as the config', () => {
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('1h2m3s4ms')).toBe(3_723_004);
    expect(parseArgs(['--timeout', '1m30s', 'status']).timeoutMs).toBe(90_000);
  });
  it('refuses nonsense, zero and overlong values', () => {
    expect(() => parseDuration('10 sec')).toThrow(UsageError);
    expect(() => parseDuration('-1s')).toThrow(UsageError);
    expect(() => parseDuration('0')).toThrow(/more than 0/);
    expect(() => parseDuration('999h')).toThrow(/too long/);
    expect(() => parseDuration('1m30')).toThrow(/invalid duration "1m30" for --timeout/);
    expect(() => parseDuration('0s')).toThrow(/more than 0/);
  });
});

describe('formatting', () => {
  it('formats bytes and ages', () => {
    expect(formatBytes(null)).toBe('-');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(47_395_635)).toBe('45.2 MiB');
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MiB');
    expect(formatAge(5_000)).toBe('5s');
    expect(formatAge(125_000)).toBe('2m');
    expect(formatAge(3_720_000)).toBe('1h 2m');
    expect(formatAge(90_000_000)).toBe('1d 1h');
    expect(formatAge(null)).toBe('-');
  });

  it('formats progress notifications, tolerating unknown shapes', () => {
    expect(formatProgress({ group: 'web', message: 'worker 7 (pid 1) ready', done: 2, total: 4 })).toBe('web: worker 7 (pid 1) ready [2/4]');
    expect(formatProgress({ group: null, message: 'started', done: 0, total: 0 })).toBe('started');
    expect(formatProgress({ weird: true })).toBe('{"weird":true}');
    expect(formatProgress(null)).toBe('null');
  });

  it('summarises a report without durations or groups', () => {
    const r: ReloadReport = {
      id: 2,
      state: 'aborted',
      trigger: 'rpc',
      startedAt: null,
      readyAt: null,
      finishedAt: null,
      durationMs: null,
      readyMs: null,
      done: 0,
      total: 0,
      error: 'smoothd began stopping',
      errorCode: -32006,
      failure: null,
      queued: null,
      groups: [],
      rollback: null,
    };
    expect(formatReportSummary('reload', { ...r })).toBe('reload 2 aborted: smoothd began stopping');
    expect(formatReportSummary('reload', { ...r, state: 'succeeded', error: null })).toBe('reload 2 succeeded');
  });
});

describe('main() in process', () => {
  it('returns 64 with a one-line hint for usage errors', async () => {
    let err = '';
    const code = await main(['frobnicate'], { stderr: { write: (s: string) => (err += s) }, stdout: { write: () => true } });
    expect(code).toBe(64);
    expect(err).toBe('smoothctl: unknown command "frobnicate" (commands: reload, restart, rollback, status, stop, metrics, events, logs); see smoothctl --help\n');
  });

  it('suggests the command a typo was probably meant to be', async () => {
    let err = '';
    const code = await main(['relaod'], { stderr: { write: (s: string) => (err += s) }, stdout: { write: () => true } });
    expect(code).toBe(64);
    expect(err).toBe('smoothctl: unknown command "relaod" (did you mean "reload"?) (commands: reload, restart, rollback, status, stop, metrics, events, logs); see smoothctl --help\n');
  });

  it('resolves the socket from the injected environment', async () => {
    let err = '';
    const code = await main(['status'], {
      env: { XDG_RUNTIME_DIR: '/nonexistent-run' },
      uid: 1000,
      stderr: { write: (s: string) => (err += s) },
      stdout: { write: () => true },
    });
    expect(code).toBe(69);
    expect(err).toContain('no socket at /nonexistent-run/smoothd/smoothd.sock');
  });
});
