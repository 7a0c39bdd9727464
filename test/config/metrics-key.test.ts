/** The `metrics: {listen}` key (DESIGN §11): TCP only, no overlap with a group's address, off by default. */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/schema.js';
import { ConfigError, type ConfigIssue } from '../../src/config/types.js';
import { metricsChange } from '../../src/daemon.js';

const FILE = '/etc/smoothd/smoothd.yaml';
const doc = (metrics: unknown, listen: string[] = ['127.0.0.1:8080']): unknown => ({ metrics, groups: { web: { command: ['node', 'server.js'], listen } } });

function issues(d: unknown): ConfigIssue[] {
  try {
    validateConfig(d, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected the config to be refused');
}

describe('metrics.listen', () => {
  it('is off by default and accepts HOST:PORT, :PORT and port 0', () => {
    expect(validateConfig(doc(undefined), FILE).metrics).toBeNull();
    expect(validateConfig(doc({ listen: '127.0.0.1:9464' }), FILE).metrics).toMatchObject({ listen: '127.0.0.1:9464', address: { kind: 'tcp', host: '127.0.0.1', port: 9464 } });
    expect(validateConfig(doc({ listen: ':9464' }), FILE).metrics?.address.port).toBe(9464);
    expect(validateConfig(doc({ listen: '127.0.0.1:0' }, ['127.0.0.1:0']), FILE).metrics?.address.port).toBe(0);
  });

  it('refuses unix and systemd addresses, a missing listen and unknown keys, naming the key', () => {
    expect(issues(doc({ listen: 'unix:/run/m.sock' }))).toEqual([{ path: 'metrics.listen', message: expect.stringMatching(/^got "unix:\/run\/m\.sock"; expected a TCP address .*TCP only$/) }]);
    expect(issues(doc({ listen: 'systemd:metrics' }))[0]!.path).toBe('metrics.listen');
    expect(issues(doc({}))).toEqual([{ path: 'metrics.listen', message: expect.stringMatching(/^missing; expected a TCP address "HOST:PORT"/) }]);
    expect(issues(doc({ listen: '127.0.0.1:9464', port: 1 }))).toEqual([{ path: 'metrics.port', message: expect.stringContaining('unknown key "port"') }]);
    expect(issues(doc('127.0.0.1:9464'))[0]!.path).toBe('metrics');
  });

  it("refuses an address that overlaps a group's listen address", () => {
    expect(issues(doc({ listen: '0.0.0.0:8080' }))).toEqual([
      { path: 'metrics.listen', message: expect.stringMatching(/^got "0\.0\.0\.0:8080"; it overlaps "127\.0\.0\.1:8080" at groups\.web\.listen\[0\].*; give the metrics listener its own port$/) },
    ]);
  });

  it('cannot change at reload: the change needs a restart', () => {
    const a = validateConfig(doc({ listen: '127.0.0.1:9464' }), FILE);
    const b = validateConfig(doc({ listen: '127.0.0.1:9465' }), FILE);
    const off = validateConfig(doc(undefined), FILE);
    expect(metricsChange(a, a)).toBeNull();
    expect(metricsChange(off, off)).toBeNull();
    expect(metricsChange(a, b)?.message).toMatch(/^changed from "127\.0\.0\.1:9464" to "127\.0\.0\.1:9465"; .*needs a restart of smoothd/);
    expect(metricsChange(off, a)?.message).toMatch(/^changed from off to "127\.0\.0\.1:9464"/);
  });
});

describe('groups.NAME.logs', () => {
  const withLogs = (logs: unknown): unknown => ({ groups: { web: { command: ['node', 'server.js'], logs } } });
  it('defaults to 1000 lines and 1 MiB, and takes sizes with a unit', () => {
    expect(validateConfig(withLogs(undefined), FILE).groups[0]!.logs).toEqual({ lines: 1000, bytes: 1048576 });
    expect(validateConfig(withLogs({ lines: 50, bytes: '512KiB' }), FILE).groups[0]!.logs).toEqual({ lines: 50, bytes: 524288 });
    expect(validateConfig(withLogs({ bytes: 2048 }), FILE).groups[0]!.logs).toEqual({ lines: 1000, bytes: 2048 });
  });
  it('names the bad key, the value and what is allowed', () => {
    expect(issues(withLogs({ lines: 0 }))).toEqual([{ path: 'groups.web.logs.lines', message: 'got 0; expected a whole number from 1 to 1000000 (lines kept)' }]);
    expect(issues(withLogs({ bytes: '1 lot' }))).toEqual([{ path: 'groups.web.logs.bytes', message: 'got "1 lot"; expected a size such as 1048576, "512KiB" or "1MiB"' }]);
    expect(issues(withLogs({ bytes: 10 }))).toEqual([{ path: 'groups.web.logs.bytes', message: 'got 10; expected a size from 1KiB to 1GiB' }]);
    expect(issues(withLogs({ line: 5 }))[0]!.message).toMatch(/unknown key "line" \(did you mean "lines"\?\)/);
  });
});
