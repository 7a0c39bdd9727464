import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkConfig,
  loadCheckedConfig,
  loadConfig,
  parseConfigText,
  resolveCommand,
} from '../../src/config/load.js';
import { type Getent, GetentUnavailable, getentFromText, lookupGroup, lookupUser } from '../../src/config/accounts.js';
import { validateConfig } from '../../src/config/schema.js';
import { ConfigError, type Config, type ConfigIssue, type GroupConfig } from '../../src/config/types.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smoothd-config-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string, mode = 0o644): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text, { mode });
  await chmod(file, mode);
  return file;
}

async function loadIssues(file: string): Promise<ConfigIssue[]> {
  try {
    await loadConfig(file);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error('expected loadConfig to fail');
}

function textIssues(text: string): ConfigIssue[] {
  try {
    parseConfigText(text, join(dir, 'inline.yaml'));
  } catch (error) {
    return (error as ConfigError).issues;
  }
  throw new Error('expected the text to be refused');
}

describe('loadConfig', () => {
  it('loads a YAML file, resolving paths against its folder and keeping group order', async () => {
    const file = await write(
      'ok.yaml',
      [
        'socketMode: "0660"',
        'groups:',
        '  web:',
        '    command: [node, server.js]',
        '    cwd: app',
        '    listen: ["127.0.0.1:8080", "unix:web.sock"]',
        '  "2":',
        '    command: [worker]',
        '  api:',
        '    command: [api]',
        '',
      ].join('\n'),
    );
    const config = await loadConfig(file);
    expect(config.path).toBe(file);
    expect(config.socketMode).toBe(0o660);
    expect(config.groups.map((g) => g.name)).toEqual(['web', '2', 'api']);
    expect(config.groups[0]?.cwd).toBe(join(dir, 'app'));
    expect(config.groups[0]?.listen[1]?.address).toMatchObject({ kind: 'unix', path: join(dir, 'web.sock') });
  });

  it('loads a JSON file', async () => {
    const file = await write('ok.json', JSON.stringify({ groups: { web: { command: ['node', 'a.js'], count: 2, env: { PORT: 8080 } } } }));
    const config = await loadConfig(file);
    expect(config.groups[0]).toMatchObject({ name: 'web', count: 2, env: { PORT: '8080' } });
  });

  it('reports a missing file with what to do', async () => {
    const issues = await loadIssues(join(dir, 'nope.yaml'));
    expect(issues).toEqual([
      { path: '', message: `config file not found: ${join(dir, 'nope.yaml')}; create it or pass --config FILE` },
    ]);
  });

  it('reports a folder passed as the file', async () => {
    expect((await loadIssues(dir))[0]?.message).toMatch(/is a folder, not a config file/);
  });

  it('reports an unreadable file as a permission problem', async () => {
    const file = await write('secret.yaml', 'groups: {}\n', 0o000);
    if (process.getuid?.() !== 0) {
      expect((await loadIssues(file))[0]?.message).toMatch(/permission denied/);
      return;
    }
    // root reads every file: check as an unprivileged user, through the real smoothd --check.
    await chmod(dir, 0o755);
    const smoothd = fileURLToPath(new URL('../../bin/smoothd.js', import.meta.url));
    const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, smoothd, '--check', '--config', file], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/permission denied/);
    expect(r.status).toBe(78);
  });

  it('reports YAML syntax errors with line and column', async () => {
    const file = await write('bad.yaml', 'groups:\n  web:\n    command: [node,\n  api: {}\n');
    const issues = await loadIssues(file);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]?.message).toMatch(/^YAML syntax error at line \d+, column \d+: /);
  });

  it('refuses duplicate keys, naming the line', () => {
    const issues = textIssues('groups:\n  web:\n    command: [a]\n    count: 1\n    count: 2\n');
    expect(issues).toEqual([
      {
        path: '',
        message: expect.stringMatching(/^YAML syntax error at line 5, column 5: .*unique.*\(line 5: "count: 2"\); remove or rename/) as unknown,
      },
    ]);
  });

  it('explains an empty or comment-only file', () => {
    expect(textIssues('')[0]?.message).toMatch(/the config file is empty; it needs at least groups:/);
    expect(textIssues('  \n\n')[0]?.message).toMatch(/is empty/);
    expect(textIssues('# nothing yet\n')[0]?.message).toMatch(/only comments/);
  });

  it('refuses a second document', () => {
    expect(textIssues('groups: {}\n---\ngroups: {}\n')[0]?.message).toMatch(/line 2: .*more than one document.*remove the extra "---"/);
  });

  it('refuses a plain 0660 socketMode and accepts "0660" and 0o660', () => {
    const base = 'groups: { web: { command: [a] } }\n';
    expect(textIssues(`socketMode: 0660\n${base}`)).toEqual([
      { path: 'socketMode', message: expect.stringMatching(/quotes \("0660"\) or as 0o660/) as unknown },
    ]);
    expect(parseConfigText(`socketMode: "0660"\n${base}`, 'x.yaml').socketMode).toBe(0o660);
    expect(parseConfigText(`socketMode: 0o660\n${base}`, 'x.yaml').socketMode).toBe(0o660);
    expect(parseConfigText(`socketMode: 0o640\n${base}`, 'x.yaml').socketMode).toBe(0o640);
    const listen = parseConfigText(
      'groups: { web: { command: [a], listen: [{ address: "unix:/run/a.sock", mode: 0o660 }] } }\n',
      'x.yaml',
    ).groups[0]?.listen[0];
    expect(listen?.mode).toBe(0o660);
  });

  it('keeps env values and arguments as written', () => {
    const config = parseConfigText(
      'groups:\n  web:\n    command: [node, a.js, 08080, 1.50]\n    env: { VERSION: 1.10, ZIP: 01234, DEBUG: True, HEX: 0x1F, S: "007" }\n',
      'x.yaml',
    );
    expect(config.groups[0]?.command).toEqual(['node', 'a.js', '08080', '1.50']);
    expect(config.groups[0]?.env).toEqual({ VERSION: '1.10', ZIP: '01234', DEBUG: 'True', HEX: '0x1F', S: '007' });
  });

  it('resolves aliases', () => {
    const config = parseConfigText(
      'groups:\n  web:\n    command: [a]\n    env: &env { PORT: 0080 }\n  api:\n    command: [b]\n    env: *env\n',
      'x.yaml',
    );
    expect(config.groups.map((g) => g.env)).toEqual([{ PORT: '0080' }, { PORT: '0080' }]);
  });

  it('reports validation problems from the file', async () => {
    const file = await write('invalid.yaml', 'groups:\n  web:\n    comand: [node]\n');
    const issues = await loadIssues(file);
    expect(issues.map((i) => i.path)).toEqual(['groups.web.comand', 'groups.web.command']);
  });
});

describe('resolveCommand', () => {
  it('finds a program in PATH, honouring order', async () => {
    const bin1 = join(dir, 'bin1');
    const bin2 = join(dir, 'bin2');
    await mkdir(bin1, { recursive: true });
    await mkdir(bin2, { recursive: true });
    await writeFile(join(bin2, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
    expect(await resolveCommand('tool', '/', `${bin1}:${bin2}`)).toBe(join(bin2, 'tool'));
    expect(await resolveCommand('tool', '/', bin1)).toBeNull();
    expect(await resolveCommand('sh', '/', '/usr/bin:/bin')).toMatch(/\/sh$/);
  });

  it('resolves names with a slash against cwd, not PATH', async () => {
    await writeFile(join(dir, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    expect(await resolveCommand('./run.sh', dir, '/nowhere')).toBe(join(dir, 'run.sh'));
    expect(await resolveCommand(join(dir, 'run.sh'), '/', '')).toBe(join(dir, 'run.sh'));
    expect(await resolveCommand('./missing.sh', dir, '/usr/bin')).toBeNull();
  });

  it('searches relative PATH entries from cwd', async () => {
    await mkdir(join(dir, 'local', 'bin'), { recursive: true });
    await writeFile(join(dir, 'local', 'bin', 'rel'), '#!/bin/sh\n', { mode: 0o755 });
    expect(await resolveCommand('rel', dir, 'local/bin')).toBe(join(dir, 'local', 'bin', 'rel'));
  });

  it('skips folders and non-executable files', async () => {
    await writeFile(join(dir, 'plain.txt'), 'x', { mode: 0o644 });
    expect(await resolveCommand('./plain.txt', dir, '')).toBeNull();
    expect(await resolveCommand('bin1', dir, dir)).toBeNull();
  });
});

/** A valid config with groups g0, g1, ... overridden by `groups` (bypassing the schema, as a test shortcut). */
function configWith(groups: Array<Partial<GroupConfig> & { command: string[] }>): Config {
  const doc = { groups: Object.fromEntries(groups.map((_, i) => [`g${i}`, { command: ['x'] }])) };
  const base = validateConfig(doc, join(dir, 'smoothd.yaml'));
  return { ...base, groups: base.groups.map((g, i) => ({ ...g, ...groups[i] })) };
}

describe('checkConfig', () => {
  it('passes a config whose commands and folders exist', async () => {
    const config = configWith([{ command: ['sh', '-c', 'exit 0'], cwd: dir }]);
    expect(await checkConfig(config, { uid: 0, path: '/usr/bin:/bin' })).toEqual([]);
  });

  it('reports a command missing from PATH', async () => {
    const config = configWith([{ command: ['no-such-program-smoothd'], cwd: dir, env: { PATH: '/usr/bin:/bin' } }]);
    expect(await checkConfig(config, { uid: 0 })).toEqual([
      {
        path: 'groups.g0.command[0]',
        message:
          '"no-such-program-smoothd" was not found in PATH (/usr/bin:/bin); install it, fix the name, give a full path, or set PATH in the group\'s env',
      },
    ]);
  });

  it('uses the group env PATH before the daemon PATH', async () => {
    const config = configWith([{ command: ['tool'], cwd: dir, env: { PATH: join(dir, 'bin2') } }]);
    expect(await checkConfig(config, { uid: 0, path: '/usr/bin' })).toEqual([]);
    const without = configWith([{ command: ['tool'], cwd: dir }]);
    expect(await checkConfig(without, { uid: 0, path: '/usr/bin' })).toHaveLength(1);
  });

  it('reports a file that is not executable, with the fix', async () => {
    const file = await write('app.js', 'x', 0o644);
    const issues = await checkConfig(configWith([{ command: ['./app.js'], cwd: dir }]), { uid: 0 });
    expect(issues).toEqual([
      { path: 'groups.g0.command[0]', message: expect.stringContaining(`${file} is not executable; make it executable (chmod +x ${file})`) as unknown },
    ]);
    await mkdir(join(dir, 'nx'), { recursive: true });
    await writeFile(join(dir, 'nx', 'prog'), 'x', { mode: 0o644 });
    const inPath = await checkConfig(configWith([{ command: ['prog'], cwd: dir, env: { PATH: join(dir, 'nx') } }]), { uid: 0 });
    expect(inPath[0]?.message).toMatch(/^"prog" found in PATH, but .* is not executable/);
  });

  it('reports a missing cwd and a cwd that is a file', async () => {
    const missing = join(dir, 'missing-folder');
    const file = await write('afile', 'x');
    const issues = await checkConfig(
      configWith([
        { command: ['./server'], cwd: missing },
        { command: ['sh'], cwd: file, env: { PATH: '/usr/bin:/bin' } },
      ]),
      { uid: 0 },
    );
    expect(issues).toEqual([
      { path: 'groups.g0.cwd', message: `${missing} does not exist; create it or fix cwd` },
      { path: 'groups.g1.cwd', message: expect.stringMatching(/is not a folder/) as unknown },
    ]);
  });

  const accounts = getentFromText(
    'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/usr/sbin/nologin\n',
    'root:x:0:\nwww-data:x:33:\nops:x:1500:alice\n',
  );
  const asRoot = { uid: 0, path: '/usr/bin:/bin', getent: accounts, setpriv: '/usr/bin/setpriv' };

  it('checks users and groups through NSS (getent)', async () => {
    const ok = configWith([{ command: ['sh'], cwd: dir, user: 'www-data', group: 'ops' }]);
    expect(await checkConfig({ ...ok, socketGroup: 'ops' }, asRoot)).toEqual([]);
    expect(await checkConfig(configWith([{ command: ['sh'], cwd: dir, user: '4242', group: '4242' }]), asRoot)).toEqual([]);

    const bad = configWith([{ command: ['sh'], cwd: dir, user: 'nobody-here', group: 'nogroup-here' }]);
    expect(await checkConfig({ ...bad, socketGroup: 'wheel-here' }, asRoot)).toEqual([
      { path: 'socketGroup', message: expect.stringMatching(/no group "wheel-here"/) as unknown },
      { path: 'groups.g0.group', message: expect.stringMatching(/^no group "nogroup-here"/) as unknown },
    ]);
    expect(await checkConfig(configWith([{ command: ['sh'], cwd: dir, user: 'nobody-here' }]), asRoot)).toEqual([
      { path: 'groups.g0.user', message: expect.stringMatching(/^no user "nobody-here" on this machine; create it/) as unknown },
    ]);

    expect(await lookupUser('www-data', accounts)).toEqual({ name: 'www-data', uid: 33, gid: 33, home: '/var/www' });
    expect(await lookupUser('33', accounts)).toMatchObject({ name: 'www-data' });
    expect(await lookupGroup('ops', accounts)).toEqual({ name: 'ops', gid: 1500 });
    expect(await lookupGroup('nope', accounts)).toBeNull();
  });

  it('resolves each account to numeric ids once, at check time', async () => {
    const file = await write(
      'accounts.yaml',
      [
        'groups:',
        `  named: { command: [sh], cwd: ${dir}, user: www-data }`,
        `  regrouped: { command: [sh], cwd: ${dir}, user: www-data, group: ops }`,
        `  numeric: { command: [sh], cwd: ${dir}, user: "4242", group: "4343" }`,
        `  grouponly: { command: [sh], cwd: ${dir}, group: ops }`,
        `  plain: { command: [sh], cwd: ${dir} }`,
      ].join('\n'),
    );
    const config = await loadCheckedConfig(file, asRoot);
    expect(config.groups.map((g) => [g.name, g.account])).toEqual([
      ['named', { uid: 33, gid: 33, initGroups: true }],
      ['regrouped', { uid: 33, gid: 1500, initGroups: true }],
      ['numeric', { uid: 4242, gid: 4343, initGroups: false }],
      ['grouponly', { uid: null, gid: 1500, initGroups: false }],
      ['plain', null],
    ]);
  });

  it('refuses a numeric uid without a passwd entry unless a group is given', async () => {
    const config = configWith([{ command: ['sh'], cwd: dir, user: '4242' }]);
    expect(await checkConfig(config, asRoot)).toEqual([
      { path: 'groups.g0.user', message: expect.stringMatching(/^user 4242 has no passwd entry, so it has no primary group: add group:/) as unknown },
    ]);
  });

  it('refuses user and group without setpriv, saying what to install', async () => {
    const config = configWith([
      { command: ['sh'], cwd: dir, user: 'www-data' },
      { command: ['sh'], cwd: dir, group: 'ops' },
    ]);
    const issues = await checkConfig(config, { ...asRoot, setpriv: null });
    expect(issues.map((i) => i.path)).toEqual(['groups.g0.user', 'groups.g1.group']);
    for (const i of issues) {
      expect(i.message).toMatch(/needs setpriv, which was not found .*never runs such a worker as root: install util-linux's setpriv/);
    }
  });

  it('says so when getent cannot be run at all', async () => {
    const missing: Getent = async () => {
      throw new GetentUnavailable('ENOENT');
    };
    const config = configWith([{ command: ['sh'], cwd: dir, user: 'www-data' }]);
    expect(await checkConfig(config, { ...asRoot, getent: missing })).toEqual([
      { path: 'groups.g0.user', message: expect.stringMatching(/^cannot look up accounts: getent could not be run \(ENOENT\); install it/) as unknown },
    ]);
  });

  it('refuses user/group when smoothd is not root', async () => {
    const config = configWith([{ command: ['sh'], cwd: dir, user: 'www-data' }]);
    expect(await checkConfig(config, { ...asRoot, uid: 1000 })).toEqual([
      { path: 'groups.g0.user', message: expect.stringMatching(/^user: needs smoothd to run as root \(it runs as uid 1000\)/) as unknown },
    ]);
  });

  it('loadCheckedConfig throws one error with the check issues', async () => {
    const file = await write('checked.yaml', 'groups:\n  web:\n    command: [no-such-program-smoothd]\n    env: { PATH: /usr/bin }\n');
    await expect(loadCheckedConfig(file, { uid: 0 })).rejects.toThrow(/groups\.web\.command\[0\]: "no-such-program-smoothd" was not found/);
    const good = await write('good.yaml', 'groups:\n  web:\n    command: [sh]\n');
    await expect(loadCheckedConfig(good, { uid: 0, path: '/usr/bin:/bin' })).resolves.toMatchObject({ path: good });
  });
});

describe('loadConfig: YAML conveniences', () => {
  it('lets a group merge another group\'s settings with <<', () => {
    const config = parseConfigText(
      [
        'groups:',
        '  web: &web',
        '    command: [node, web.js]',
        '    count: 4',
        '    stopTimeout: 10s',
        '    env: { PORT: 01 }',
        '  api:',
        '    <<: *web',
        '    command: [node, api.js]',
        '',
      ].join('\n'),
      'x.yaml',
    );
    expect(config.groups.map((g) => [g.name, g.command[1], g.count, g.stopTimeoutMs, g.env])).toEqual([
      ['web', 'web.js', 4, 10_000, { PORT: '01' }],
      ['api', 'api.js', 4, 10_000, { PORT: '01' }],
    ]);
  });
});

describe('loadConfig: every unreadable config is a ConfigError', () => {
  const late = (text: string): string => {
    const issues = textIssues(text);
    expect(issues).toHaveLength(1);
    return issues[0]!.message;
  };

  it('refuses a merge key that does not name a map (`<<: 5`), saying what it takes', () => {
    expect(late('groups:\n  web:\n    <<: 5\n    command: [sleep, "10"]\n')).toMatch(/merge error.*<<: \*web/);
  });

  it('refuses an alias bomb', () => {
    const text = [
      'a: &a [x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
      'groups: {}',
    ].join('\n');
    expect(late(text)).toMatch(/alias bombs/);
  });

  it('refuses more than 100 alias merges', () => {
    const lines = ['base: &b { command: [sleep, "1"] }', 'groups:'];
    for (let i = 0; i < 101; i++) lines.push(`  g${i}: { <<: *b }`);
    expect(late(lines.join('\n'))).toMatch(/over 100 alias uses/);
  });

  it('refuses a NUL byte and bytes that are not UTF-8', async () => {
    expect(late('groups:\0\n')).toMatch(/NUL byte.*not a text file/);
    const file = join(dir, 'binary.yaml');
    await writeFile(file, Buffer.from([0x67, 0x72, 0xff, 0xfe, 0x80, 0x0a]));
    expect((await loadIssues(file))[0]!.message).toMatch(/is not UTF-8 text \(is it a binary file\?\)/);
  });

  it('refuses a file over 1 MiB before parsing it', async () => {
    const file = await write('huge.yaml', `groups: {}\n# ${'x'.repeat(1024 * 1024)}\n`);
    expect((await loadIssues(file))[0]!.message).toMatch(/over the 1048576-byte limit/);
  });

  it('refuses a FIFO and a device without waiting on them', async () => {
    const fifo = join(dir, 'config.fifo');
    await new Promise<void>((done, fail) =>
      execFile('mkfifo', [fifo], (err) => (err ? fail(err) : done())),
    );
    expect((await loadIssues(fifo))[0]!.message).toMatch(/is a FIFO \(named pipe\), not a regular file/);
    expect((await loadIssues('/dev/zero'))[0]!.message).toMatch(/is a device, not a regular file/);
  });

  it('refuses an empty file, a folder and a document that is not a map', async () => {
    expect((await loadIssues(await write('empty.yaml', '')))[0]!.message).toMatch(/is empty/);
    expect((await loadIssues(dir))[0]!.message).toMatch(/is a folder/);
    expect(late('- web\n- api\n')).toMatch(/expected a map/);
    expect(late('just text\n')).toMatch(/expected a map/);
  });
});
