import { describe, it, expect } from 'vitest';
import { parseMode, renderValue, validateConfig } from '../../src/config/schema.js';
import { ConfigError, type ConfigIssue, type GroupConfig } from '../../src/config/types.js';

const FILE = '/etc/smoothd/smoothd.yaml';

function withGroup(group: Record<string, unknown>, top: Record<string, unknown> = {}): unknown {
  return { ...top, groups: { web: { command: ['node', 'server.js'], ...group } } };
}

function web(group: Record<string, unknown> = {}, top: Record<string, unknown> = {}): GroupConfig {
  return validateConfig(withGroup(group, top), FILE).groups[0] as GroupConfig;
}

function issuesOf(doc: unknown): ConfigIssue[] {
  try {
    validateConfig(doc, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error('expected the config to be refused');
}

/** The single issue for one bad group key. */
function issueFor(group: Record<string, unknown>, top: Record<string, unknown> = {}): ConfigIssue {
  const issues = issuesOf(withGroup(group, top));
  expect(issues).toHaveLength(1);
  return issues[0] as ConfigIssue;
}

describe('validateConfig: defaults', () => {
  it('fills every default for a minimal group', () => {
    const config = validateConfig(withGroup({}), 'smoothd.yaml');
    expect(config.path).toBe(`${process.cwd()}/smoothd.yaml`);
    expect(config.socketMode).toBe(0o600);
    expect(config.socketGroup).toBeNull();
    expect(config.groups).toEqual([
      {
        name: 'web',
        command: ['node', 'server.js'],
        cwd: process.cwd(),
        env: {},
        user: null,
        group: null,
        count: 1,
        listen: [],
        reloadable: true,
        ready: { kind: 'delay', ms: 1000 },
        readyTimeoutMs: 30_000,
        stopSignal: 'SIGTERM',
        stopTimeoutMs: 30_000,
        rolling: { surge: 1, unavailable: 0 },
        restartDelayMs: 100,
        maxRestartDelayMs: 30_000,
        verify: { bakeMs: 0, maxErrorRate: null, minRequests: 20, watchMs: 0 },
        onFailure: 'rollback',
        history: 5,
        compileCache: true,
        bootNice: 0,
        logs: { lines: 1000, bytes: 1048576 },
      },
    ]);
  });

  it('reads every key when set', () => {
    const group = web({
      cwd: '/srv/app/current',
      env: { NODE_ENV: 'production' },
      user: 'www-data',
      group: 'www-data',
      count: 4,
      listen: ['127.0.0.1:8080'],
      reloadable: false,
      ready: 'ipc',
      readyTimeout: '10s',
      stopSignal: 'SIGQUIT',
      stopTimeout: '5s',
      rolling: { surge: 0, unavailable: 1 },
      restartDelay: '250ms',
      maxRestartDelay: '1m',
      verify: { bake: '10s', maxErrorRate: 0.05, minRequests: 50, watch: '1m' },
      onFailure: 'keep',
      history: 10,
    });
    expect(group).toMatchObject({
      verify: { bakeMs: 10_000, maxErrorRate: 0.05, minRequests: 50, watchMs: 60_000 },
      onFailure: 'keep',
      history: 10,
      cwd: '/srv/app/current',
      env: { NODE_ENV: 'production' },
      user: 'www-data',
      group: 'www-data',
      count: 4,
      reloadable: false,
      ready: { kind: 'ipc' },
      readyTimeoutMs: 10_000,
      stopSignal: 'SIGQUIT',
      stopTimeoutMs: 5000,
      rolling: { surge: 0, unavailable: 1 },
      restartDelayMs: 250,
      maxRestartDelayMs: 60_000,
    });
    expect(group.listen[0]?.address.key).toBe('tcp:127.0.0.1:8080');
  });

  it('treats null values as not set', () => {
    const group = web({ user: null, count: null, env: null, listen: null });
    expect(group).toMatchObject({ user: null, count: 1, env: {}, listen: [] });
  });

  it('keeps the order of the groups (= roll order), also for Maps with integer-like names', () => {
    const doc = new Map<string, unknown>([
      ['groups', new Map<string, unknown>([
        ['zeta', { command: ['a'] }],
        ['2', { command: ['b'] }],
        ['alpha', { command: ['c'] }],
        ['1', { command: ['d'] }],
      ])],
    ]);
    expect(validateConfig(doc, FILE).groups.map((g) => g.name)).toEqual(['zeta', '2', 'alpha', '1']);
  });

  it('resolves a relative cwd against the config folder', () => {
    expect(web({ cwd: 'app' }).cwd).toBe('/etc/smoothd/app');
    expect(web({ cwd: '../srv' }).cwd).toBe('/etc/srv');
    expect(web().cwd).toBe('/etc/smoothd');
  });
});

describe('validateConfig: errors name the path, the value and what is allowed', () => {
  it('refuses unknown keys with a suggestion and the allowed keys', () => {
    const issue = issueFor({ comand: ['node'] });
    expect(issue.path).toBe('groups.web.comand');
    expect(issue.message).toMatch(/unknown key "comand" \(did you mean "command"\?\)/);
    expect(issue.message).toMatch(/allowed keys here: command, cwd, env/);

    const top = issuesOf({ ...(withGroup({}) as object), socketmode: '0600' });
    expect(top).toEqual([{ path: 'socketmode', message: expect.stringMatching(/did you mean "socketMode"/) as unknown }]);

    const rolling = issueFor({ rolling: { surge: 1, unavail: 0 } });
    expect(rolling.path).toBe('groups.web.rolling.unavail');
    expect(rolling.message).toMatch(/did you mean "unavailable"/);

    const far = issueFor({ xyzzy: 1 });
    expect(far.message).not.toMatch(/did you mean/);
  });

  it('collects every problem, not only the first', () => {
    const issues = issuesOf({
      socketMode: 660,
      groups: {
        web: { command: 'node server.js', count: 0, ready: 'soon', stopSignal: 'SIGKILL' },
        'bad name!': { command: ['x'], rolling: { surge: -1 } },
      },
    });
    expect(issues.map((i) => i.path)).toEqual([
      'socketMode',
      'groups.web.command',
      'groups.web.count',
      'groups.web.ready',
      'groups.web.stopSignal',
      'groups.bad name!',
      'groups.bad name!.rolling.surge',
    ]);
    const error = (() => {
      try {
        validateConfig({ groups: { web: { count: 0 } } }, FILE);
      } catch (e) {
        return e as ConfigError;
      }
      return null;
    })();
    expect(error?.message).toMatch(/^\/etc\/smoothd\/smoothd\.yaml: 2 problems:\n {2}groups\.web\.command: missing;/);
  });

  it('requires a non-empty groups map', () => {
    expect(issuesOf({})).toEqual([{ path: 'groups', message: expect.stringMatching(/^missing; expected a map of group name/) as unknown }]);
    expect(issuesOf({ groups: {} })[0]?.message).toMatch(/at least one group/);
    expect(issuesOf({ groups: [{ name: 'web' }] })[0]?.message).toMatch(/^got \[\{"name":"web"\}\]; expected a map/);
    expect(issuesOf(['x'])[0]).toMatchObject({ path: '', message: expect.stringMatching(/expected a map/) as unknown });
    expect(issuesOf({ groups: { web: null } })[0]).toMatchObject({ path: 'groups.web', message: expect.stringMatching(/^got null; expected a map/) as unknown });
  });

  it('checks group names', () => {
    const long = 'a'.repeat(65);
    const issues = issuesOf({ groups: { [long]: { command: ['x'] }, 'a/b': { command: ['x'] }, 'ok.name-1_2': { command: ['x'] } } });
    expect(issues.map((i) => i.path)).toEqual([`groups.${long}`, 'groups.a/b']);
    expect(issues[1]?.message).toMatch(/use 1 to 64 letters, digits, "_", "." or "-"/);
  });

  describe('command', () => {
    it('suggests the list form for a string', () => {
      const issue = issueFor({ command: 'node server.js --port 80' });
      expect(issue).toEqual({
        path: 'groups.web.command',
        message: 'got "node server.js --port 80"; expected a list of arguments (no shell is used); write command: [node, server.js, --port, 80]',
      });
    });

    it('suggests sh -c for shell syntax', () => {
      expect(issueFor({ command: 'node a.js && echo hi' }).message).toMatch(/command: \[\/bin\/sh, -c, "node a\.js && echo hi"\]/);
    });

    it('refuses an empty list, an empty program and non-scalar arguments', () => {
      expect(issueFor({ command: [] }).message).toMatch(/^got \[\]; expected the program and its arguments as a list/);
      expect(issueFor({ command: [''] })).toMatchObject({ path: 'groups.web.command[0]' });
      expect(issueFor({ command: ['node', { a: 1 }] })).toMatchObject({ path: 'groups.web.command[1]', message: 'got {"a":1}; expected a string (an argument)' });
      const missing = issuesOf({ groups: { web: {} } })[0];
      expect(missing).toEqual({ path: 'groups.web.command', message: expect.stringMatching(/^missing; expected the program/) as unknown });
    });

    it('turns number and boolean arguments into text', () => {
      expect(web({ command: ['node', 'a.js', 8080, true] }).command).toEqual(['node', 'a.js', '8080', 'true']);
    });
  });

  describe('env', () => {
    it('accepts strings and turns numbers and booleans into text', () => {
      expect(web({ env: { A: 'x', PORT: 8080, DEBUG: false, EMPTY: '' } }).env).toEqual({ A: 'x', PORT: '8080', DEBUG: 'false', EMPTY: '' });
    });

    it('refuses bad names, reserved names, nulls and nested values', () => {
      const issues = issuesOf(withGroup({ env: { 'A=B': 'x', LISTEN_FDS: '3', EMPTY: null, NESTED: { a: 1 }, OK: 'y' } }));
      expect(issues).toEqual([
        { path: 'groups.web.env.A=B', message: expect.stringMatching(/not a valid variable name; names must be non-empty without "="/) as unknown },
        { path: 'groups.web.env.LISTEN_FDS', message: 'LISTEN_FDS is set by smoothd for each worker; remove it from env' },
        { path: 'groups.web.env.EMPTY', message: 'got null; expected a string value (for an empty value write EMPTY: "")' },
        { path: 'groups.web.env.NESTED', message: 'got {"a":1}; expected a string value' },
      ]);
    });

    it('refuses a list', () => {
      expect(issueFor({ env: ['A=1'] }).message).toMatch(/^got \["A=1"\]; expected a map of variable name to value/);
    });
  });

  describe('cwd, user, group', () => {
    it('refuses a non-string or ~ cwd', () => {
      expect(issueFor({ cwd: 42 }).message).toMatch(/^got 42; expected a folder path/);
      expect(issueFor({ cwd: '~/app' }).message).toMatch(/"~" is not expanded/);
    });

    it('accepts names and numeric ids, group without user', () => {
      expect(web({ user: 1000 }).user).toBe('1000');
      expect(web({ group: 'ops' })).toMatchObject({ user: null, group: 'ops' });
      expect(issueFor({ user: '' }).message).toMatch(/^got ""; expected a user \(a name or a numeric id\)/);
      expect(issueFor({ group: -1 }).path).toBe('groups.web.group');
    });
  });

  describe('count', () => {
    it.each([0, 1025, 1.5, '4', -1])('refuses %j', (count) => {
      const issue = issueFor({ count });
      expect(issue.path).toBe('groups.web.count');
      expect(issue.message).toMatch(/expected a whole number from 1 to 1024/);
      expect(issue.message).toContain(`got ${JSON.stringify(count)}`);
    });

    it('accepts 1 and 1024', () => {
      expect(web({ count: 1024 }).count).toBe(1024);
    });
  });

  describe('bootNice', () => {
    it('accepts 0 (off) to 19', () => {
      expect(web({ bootNice: 10 }).bootNice).toBe(10);
      expect(web({ bootNice: 0 }).bootNice).toBe(0);
      expect(web({ bootNice: 19 }).bootNice).toBe(19);
    });

    it.each([-1, 20, 2.5, '10', true])('refuses %j with the range and what it means', (bootNice) => {
      const issue = issueFor({ bootNice });
      expect(issue.path).toBe('groups.web.bootNice');
      expect(issue.message).toMatch(/expected a whole number from 0 to 19 \(nice levels added while a worker boots; 0 = off\)/);
    });
  });

  describe('socketMode', () => {
    it('accepts octal strings', () => {
      for (const text of ['0660', '660', '0o660']) {
        expect(validateConfig(withGroup({}, { socketMode: text }), FILE).socketMode).toBe(0o660);
      }
    });

    it('refuses a plain 0660 (decimal 660) and says to quote it', () => {
      const issue = issueFor({}, { socketMode: 660 });
      expect(issue).toEqual({
        path: 'socketMode',
        message: 'got 660; a plain 660 is the decimal number 660, not octal; write it in quotes ("0660") or as 0o660',
      });
    });

    it('accepts numbers that cannot be a misread octal', () => {
      expect(validateConfig(withGroup({}, { socketMode: 0o600 }), FILE).socketMode).toBe(0o600); // 384
      expect(validateConfig(withGroup({}, { socketMode: 0 }), FILE).socketMode).toBe(0);
    });

    it('refuses out-of-range values and garbage', () => {
      expect(issueFor({}, { socketMode: '0800' }).message).toMatch(/expected an octal file mode/);
      expect(issueFor({}, { socketMode: 999 }).message).toMatch(/expected an octal file mode/);
      expect(issueFor({}, { socketMode: '1777' }).message).toMatch(/"000" to "777"/);
      expect(issueFor({}, { socketMode: true }).path).toBe('socketMode');
    });

    it('reads socketGroup', () => {
      expect(validateConfig(withGroup({}, { socketGroup: 'ops' }), FILE).socketGroup).toBe('ops');
      expect(issueFor({}, { socketGroup: '' }).path).toBe('socketGroup');
    });
  });

  describe('durations and readiness', () => {
    it('reads ready modes', () => {
      expect(web({ ready: 'notify' }).ready).toEqual({ kind: 'notify' });
      expect(web({ ready: '2s' }).ready).toEqual({ kind: 'delay', ms: 2000 });
      expect(web({ ready: 0 }).ready).toEqual({ kind: 'delay', ms: 0 });
    });

    it('refuses an unknown ready mode', () => {
      expect(issueFor({ ready: 'http' }).message).toMatch(/^got "http"; expected ipc .*notify .*or a duration/);
    });

    it('requires a delay ready to be shorter than readyTimeout', () => {
      const issue = issueFor({ ready: '30s' });
      expect(issue.path).toBe('groups.web.ready');
      expect(issue.message).toMatch(/shorter than readyTimeout \(30s\)/);
      expect(web({ ready: '30s', readyTimeout: '1m' }).ready).toEqual({ kind: 'delay', ms: 30_000 });
    });

    it('refuses bad durations with the path and the allowed forms', () => {
      const issue = issueFor({ stopTimeout: '10 minutes' });
      expect(issue.path).toBe('groups.web.stopTimeout');
      expect(issue.message).toMatch(/^got "10 minutes"; expected a duration: .*ms, s, m or h/);
      expect(issueFor({ readyTimeout: 0 }).message).toMatch(/at least 1ms/);
      expect(issueFor({ restartDelay: '0s' }).message).toMatch(/at least 1ms/);
      expect(web({ stopTimeout: 0 }).stopTimeoutMs).toBe(0);
    });

    it('requires maxRestartDelay >= restartDelay', () => {
      expect(issueFor({ restartDelay: '2s', maxRestartDelay: '1s' })).toEqual({
        path: 'groups.web.maxRestartDelay',
        message: expect.stringMatching(/^got "1s"; expected at least restartDelay \(2s\)/) as unknown,
      });
      expect(issueFor({ restartDelay: '1m' })).toMatchObject({
        path: 'groups.web.restartDelay',
        message: expect.stringMatching(/at most maxRestartDelay \(30s, the default\)/) as unknown,
      });
      expect(web({ restartDelay: '1s', maxRestartDelay: '1s' }).maxRestartDelayMs).toBe(1000);
    });
  });

  describe('stopSignal', () => {
    it.each([
      ['SIGTERM', 'SIGTERM'],
      ['TERM', 'SIGTERM'],
      ['quit', 'SIGQUIT'],
      ['SIGWINCH', 'SIGWINCH'],
      ['USR2', 'SIGUSR2'],
    ])('reads %s as %s', (input, expected) => {
      expect(web({ stopSignal: input }).stopSignal).toBe(expected);
    });

    it('refuses SIGKILL and SIGSTOP with the reason', () => {
      expect(issueFor({ stopSignal: 'SIGKILL' }).message).toMatch(/cannot be caught.*smoothd sends SIGKILL itself after stopTimeout/);
      expect(issueFor({ stopSignal: 'STOP' }).message).toMatch(/SIGSTOP cannot be caught/);
    });

    it('refuses other names and numbers, listing the allowed ones', () => {
      expect(issueFor({ stopSignal: 'SIGPWR' }).message).toMatch(/expected one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH/);
      expect(issueFor({ stopSignal: 15 }).message).toMatch(/^got 15;/);
    });
  });

  describe('rolling', () => {
    it('fills a missing half from the default', () => {
      expect(web({ count: 2, rolling: { unavailable: 1 } }).rolling).toEqual({ surge: 1, unavailable: 1 });
      expect(web({ count: 4, rolling: { surge: 4 } }).rolling).toEqual({ surge: 4, unavailable: 0 });
    });

    it('refuses both 0 and explains the two orders', () => {
      const issue = issueFor({ rolling: { surge: 0, unavailable: 0 } });
      expect(issue.path).toBe('groups.web.rolling');
      expect(issue.message).toMatch(/cannot both be 0.*\{ surge: 0, unavailable: 1 \}/);
    });

    it('limits unavailable and surge to count', () => {
      expect(issueFor({ count: 2, rolling: { unavailable: 3 } })).toEqual({
        path: 'groups.web.rolling.unavailable',
        message: 'got 3; expected a whole number from 0 to 2 (count is 2)',
      });
      expect(issueFor({ count: 2, rolling: { surge: 3 } }).path).toBe('groups.web.rolling.surge');
      expect(issueFor({ rolling: { surge: 1.5 } }).path).toBe('groups.web.rolling.surge');
      expect(issueFor({ rolling: '1' }).message).toMatch(/expected a map, e.g. rolling: \{ surge: 1, unavailable: 0 \}/);
    });
  });

  describe('verify, onFailure, history', () => {
    it('fills verify from the defaults, key by key', () => {
      expect(web({ ready: 'ipc', verify: { bake: '3s' } }).verify).toEqual({ bakeMs: 3000, maxErrorRate: null, minRequests: 20, watchMs: 0 });
      expect(web({ ready: 'notify', verify: { maxErrorRate: 0 } }).verify.maxErrorRate).toBe(0);
    });

    it('refuses an error rate outside [0, 1), naming the key', () => {
      for (const bad of [1, 1.5, -0.1, '5%']) {
        const issue = issueFor({ ready: 'ipc', verify: { maxErrorRate: bad } });
        expect(issue.path).toBe('groups.web.verify.maxErrorRate');
        expect(issue.message).toMatch(/expected a share of responses from 0 up to \(not including\) 1/);
      }
    });

    it('refuses maxErrorRate with a duration ready: there is no channel for the counters', () => {
      const issue = issueFor({ ready: '500ms', verify: { maxErrorRate: 0.05 } });
      expect(issue.path).toBe('groups.web.verify.maxErrorRate');
      expect(issue.message).toMatch(/Use ready: ipc .* or ready: notify/);
      // bake and watch judge exits only: fine with a duration
      expect(web({ ready: '500ms', verify: { bake: '2s', watch: '10s' } }).verify.bakeMs).toBe(2000);
    });

    it('refuses unknown verify keys, bad durations and bad minRequests', () => {
      expect(issueFor({ verify: { bakeTime: '3s' } }).path).toBe('groups.web.verify.bakeTime');
      expect(issueFor({ verify: { watch: 'soon' } }).path).toBe('groups.web.verify.watch');
      expect(issueFor({ verify: { minRequests: 0 } }).path).toBe('groups.web.verify.minRequests');
    });

    it('takes onFailure rollback or keep, and history 1..100', () => {
      expect(web({ onFailure: 'keep' }).onFailure).toBe('keep');
      expect(issueFor({ onFailure: 'revert' })).toMatchObject({ path: 'groups.web.onFailure', message: expect.stringMatching(/^got "revert"; expected rollback .* or keep/) });
      expect(web({ history: 100 }).history).toBe(100);
      expect(issueFor({ history: 0 }).message).toBe('got 0; expected a whole number from 1 to 100 (generations kept)');
    });
  });

  it('refuses a non-boolean reloadable', () => {
    expect(issueFor({ reloadable: 'yes' })).toEqual({ path: 'groups.web.reloadable', message: 'got "yes"; expected true or false' });
  });

  it('renders long values truncated', () => {
    const rendered = renderValue('x'.repeat(500));
    expect(rendered.length).toBe(80);
    expect(rendered.endsWith('…')).toBe(true);
    expect(issueFor({ cwd: ['y'.repeat(300)] }).message.length).toBeLessThan(250);
    expect(renderValue(new Map([['a', 1]]))).toBe('{"a":1}');
    expect(renderValue(undefined)).toBe('nothing');
  });
});

describe('validateConfig: listen', () => {
  it('reads every form with default names, backlog and mode', () => {
    const listen = web({
      listen: ['127.0.0.1:8080', '[::1]:8080', ':9000', 'unix:app.sock', 'systemd:http', 'localhost:81'],
    }).listen;
    expect(listen.map((l) => [l.name, l.address.key, l.backlog, l.mode, l.text])).toEqual([
      ['listen0', 'tcp:127.0.0.1:8080', 511, null, '127.0.0.1:8080'],
      ['listen1', 'tcp:[::1]:8080', 511, null, '[::1]:8080'],
      ['listen2', 'tcp:0.0.0.0:9000', 511, null, ':9000'],
      ['listen3', 'unix:/etc/smoothd/app.sock', 511, null, 'unix:app.sock'],
      ['listen4', 'systemd:http', 511, null, 'systemd:http'],
      ['listen5', 'tcp:127.0.0.1:81', 511, null, 'localhost:81'],
    ]);
  });

  it('reads the object form', () => {
    const [entry] = web({ listen: [{ address: 'unix:/run/app.sock', name: 'http', backlog: 1024, mode: '0660' }] }).listen;
    expect(entry).toEqual({
      address: { kind: 'unix', path: '/run/app.sock', key: 'unix:/run/app.sock' },
      name: 'http',
      backlog: 1024,
      mode: 0o660,
      text: 'unix:/run/app.sock',
    });
  });

  it('gives port-0 entries distinct, stable keys', () => {
    const listen = web({ listen: ['127.0.0.1:0', { address: '127.0.0.1:0', name: 'admin' }] }).listen;
    expect(listen.map((l) => l.address.key)).toEqual(['tcp:127.0.0.1:0#web.listen0', 'tcp:127.0.0.1:0#web.admin']);
  });

  it('reports problems in entries with their index', () => {
    const issues = issuesOf(
      withGroup({
        listen: [
          'example.com:80',
          8080,
          { address: '127.0.0.1:1', name: 'a:b' },
          { address: '127.0.0.1:2', backlog: 0 },
          { address: '127.0.0.1:3', mode: '0600' },
          { name: 'x' },
          { address: '127.0.0.1:4', port: 4 },
          null,
        ],
      }),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'groups.web.listen[0]',
      'groups.web.listen[1]',
      'groups.web.listen[2].name',
      'groups.web.listen[3].backlog',
      'groups.web.listen[4].mode',
      'groups.web.listen[5].address',
      'groups.web.listen[6].port',
      'groups.web.listen[7]',
    ]);
    expect(issues[0]?.message).toMatch(/^got "example\.com:80"; "example\.com" is not an IP address/);
    expect(issues[1]?.message).toMatch(/write ":8080" for all IPv4 interfaces/);
    expect(issues[2]?.message).toMatch(/no ":"/);
    expect(issues[4]?.message).toMatch(/unix sockets only/);
    expect(issues[5]?.message).toMatch(/^missing; expected an address/);
  });

  it('refuses a string instead of a list', () => {
    expect(issueFor({ listen: '127.0.0.1:80' }).message).toMatch(/write listen: \["127\.0\.0\.1:80"\]/);
  });

  it('refuses duplicate names within a group', () => {
    const issue = issueFor({ listen: [':80', { address: ':81', name: 'listen0' }] });
    expect(issue).toEqual({
      path: 'groups.web.listen[1]',
      message: 'the name "listen0" is already used by groups.web.listen[0]; give each entry its own name',
    });
  });

  it('refuses overlapping addresses within and across groups', () => {
    const issues = issuesOf({
      groups: {
        web: { command: ['a'], listen: ['127.0.0.1:8080', 'unix:/run/a.sock', '127.0.0.1:0'] },
        api: { command: ['b'], listen: [':8080', 'unix:/run/a.sock', '127.0.0.1:0', '127.0.0.1:9000'] },
        admin: { command: ['c'], listen: ['[::]:9000'] },
      },
    });
    expect(issues.map((i) => i.path)).toEqual([
      'groups.api.listen[0]',
      'groups.api.listen[1]',
      'groups.admin.listen[0]',
    ]);
    expect(issues[0]?.message).toBe(
      'got ":8080"; it overlaps "127.0.0.1:8080" at groups.web.listen[0] (0.0.0.0 takes the port on every IPv4 address), ' +
        'and one address cannot be held twice. Use a different address or port, or remove one of them',
    );
    expect(issues[2]?.message).toMatch(/dual-stack/);
    expect(issueFor({ listen: ['127.0.0.1:80', 'localhost:80'] }).path).toBe('groups.web.listen[1]');
  });
});

describe('parseMode', () => {
  it.each([
    ['0600', 0o600],
    ['600', 0o600],
    ['0o600', 0o600],
    ['0', 0],
    ['777', 0o777],
    [0o600, 0o600],
    [7, 7],
    [0o644 + 0, 'error'], // 420: reads like octal 420
    [0o660, 'error'], // 432: a YAML 0o660 arrives as the string "0o660" from loadConfig
    [77, 'error'],
    [512, 'error'],
    ['0o1000', 'error'],
    ['rw-r--r--', 'error'],
  ])('%j -> %j', (input, expected) => {
    const result = parseMode(input);
    if (expected === 'error') expect(typeof result).toBe('string');
    else expect(result).toBe(expected);
  });
});
