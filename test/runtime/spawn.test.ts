import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/schema.js';
import type { WorkerAccount } from '../../src/config/types.js';
import { describeSpawnFailure, findSetpriv, SETPRIV_DIRS, workerArgv, type WorkerLaunch } from '../../src/runtime/spawn.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-spawn-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function launch(o: { user?: string; group?: string; account?: WorkerAccount | null; setpriv?: string | null }): WorkerLaunch {
  const [g] = validateConfig({ groups: { web: { command: ['node', 'server.js'], cwd: dir } } }, path.join(dir, 'smoothd.yaml')).groups;
  return {
    workerId: 1,
    group: 'web',
    slot: 0,
    generation: 1,
    spec: { ...g!, user: o.user ?? null, group: o.group ?? null, account: o.account ?? null, cwdReal: dir, executable: '/usr/bin/node' },
    fds: [],
    setpriv: o.setpriv === undefined ? '/usr/bin/setpriv' : o.setpriv,
    baseEnv: {},
  };
}

describe('findSetpriv', () => {
  const systemHasOne = SETPRIV_DIRS.some((d) => fs.existsSync(path.join(d, 'setpriv')));

  it('finds setpriv through PATH when the system folders have none (NixOS)', () => {
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'setpriv'), '#!/bin/sh\n', { mode: 0o755 });
    expect(findSetpriv({ PATH: `relative:/nonexistent:${bin}` }, [])).toBe(path.join(bin, 'setpriv'));
    expect(findSetpriv({ PATH: '/nonexistent' }, [])).toBeNull();
    expect(findSetpriv({}, [])).toBeNull();
  });

  it.skipIf(!systemHasOne)('prefers the system folders to PATH', () => {
    const bin = path.join(dir, 'bin2');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'setpriv'), '#!/bin/sh\n', { mode: 0o755 });
    expect(SETPRIV_DIRS.map((d) => `${d}/setpriv`)).toContain(findSetpriv({ PATH: bin }));
  });

  it('SMOOTHD_SETPRIV (for tests) names one, or none when empty; a non-executable file is none', () => {
    const fake = path.join(dir, 'fake-setpriv');
    fs.writeFileSync(fake, '#!/bin/sh\n', { mode: 0o755 });
    expect(findSetpriv({ SMOOTHD_SETPRIV: fake, PATH: '/usr/bin' })).toBe(fake);
    expect(findSetpriv({ SMOOTHD_SETPRIV: '', PATH: '/usr/bin:/bin' })).toBeNull();
    fs.chmodSync(fake, 0o644);
    expect(findSetpriv({ SMOOTHD_SETPRIV: fake })).toBeNull();
  });
});

describe('workerArgv', () => {
  it('switches to the resolved ids, with the user\'s groups when it has a passwd entry', () => {
    const { file, args } = workerArgv(launch({ user: 'www-data', account: { uid: 33, gid: 33, initGroups: true } }));
    expect(file).toBe('/usr/bin/setpriv');
    expect(args.slice(0, args.indexOf('--'))).toEqual(['--pdeathsig', 'TERM', '--reuid', '33', '--regid', '33', '--init-groups']);
  });

  it('clears supplementary groups for a numeric uid without an entry, and for group only', () => {
    const numeric = workerArgv(launch({ user: '4242', group: '4343', account: { uid: 4242, gid: 4343, initGroups: false } })).args;
    expect(numeric.slice(0, numeric.indexOf('--'))).toEqual(['--pdeathsig', 'TERM', '--reuid', '4242', '--regid', '4343', '--clear-groups']);
    const groupOnly = workerArgv(launch({ group: 'ops', account: { uid: null, gid: 1500, initGroups: false } })).args;
    expect(groupOnly.slice(0, groupOnly.indexOf('--'))).toEqual(['--pdeathsig', 'TERM', '--regid', '1500', '--clear-groups']);
  });

  it('never starts a worker with user/group as root: no setpriv, or no resolved account, is an error', () => {
    expect(() => workerArgv(launch({ user: 'www-data', account: { uid: 33, gid: 33, initGroups: true }, setpriv: null }))).toThrow(
      /sets user\/group but setpriv is not available, and smoothd never runs such a worker as root; install util-linux's setpriv/,
    );
    expect(() => workerArgv(launch({ group: 'ops', account: null }))).toThrow(/its account was not resolved/);
  });

  it('runs the plain wrapper without setpriv when no account is asked for', () => {
    expect(workerArgv(launch({ setpriv: null })).file).toBe('/bin/sh');
  });
});

describe('describeSpawnFailure', () => {
  it('names the missing cwd with its errno before blaming the program', () => {
    const gone = path.join(dir, 'releases', '3');
    expect(describeSpawnFailure('/usr/bin/setpriv', gone)).toBe(`cwd ${gone} does not exist (ENOENT)`);
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, '');
    expect(describeSpawnFailure('/bin/sh', file)).toBe(`cwd ${file} is not a folder (ENOTDIR)`);
    expect(describeSpawnFailure(path.join(dir, 'no-such-program'), dir)).toBe(`${path.join(dir, 'no-such-program')} does not exist (ENOENT)`);
  });
});
