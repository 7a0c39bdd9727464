// NODE_COMPILE_CACHE for workers: which folder, who owns it, when a worker gets it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/schema.js';
import { CompileCacheFolders, compileCacheRoot, prepareCompileCache } from '../../src/runtime/compile-cache.js';
import { workerEnv, type WorkerLaunch } from '../../src/runtime/spawn.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-compile-cache-'));
fs.chmodSync(dir, 0o755); // a worker with another uid must be able to enter it (one test closes a folder on purpose)
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function launch(group: Record<string, unknown>, baseEnv: NodeJS.ProcessEnv = {}): WorkerLaunch {
  const [g] = validateConfig({ groups: { web: { command: ['node', 'server.js'], cwd: dir, ...group } } }, path.join(dir, 'smoothd.yaml')).groups;
  return { workerId: 1, group: 'web', slot: 0, generation: 1, spec: { ...g!, cwdReal: dir, executable: '/usr/bin/node' }, fds: [], setpriv: null, baseEnv };
}

describe('compileCacheRoot', () => {
  it("is under systemd's CacheDirectory= when set, else next to the control socket, else none", () => {
    expect(compileCacheRoot({ CACHE_DIRECTORY: '/var/cache/smoothd' }, '/run/smoothd')).toBe('/var/cache/smoothd/compile-cache');
    expect(compileCacheRoot({ CACHE_DIRECTORY: '/var/cache/smoothd:/var/cache/other' }, undefined)).toBe('/var/cache/smoothd/compile-cache');
    expect(compileCacheRoot({}, '/run/smoothd')).toBe('/run/smoothd/compile-cache');
    expect(compileCacheRoot({}, undefined)).toBeNull();
  });
});

describe('workerEnv and NODE_COMPILE_CACHE', () => {
  it("sets the group's folder by default; compileCache: false or the worker's own value leave it alone", () => {
    expect(launch({}).spec.compileCache).toBe(true);
    expect(workerEnv(launch({}), '/run/smoothd/compile-cache/web').NODE_COMPILE_CACHE).toBe('/run/smoothd/compile-cache/web');
    expect(workerEnv(launch({ compileCache: false }), '/run/smoothd/compile-cache/web').NODE_COMPILE_CACHE).toBeUndefined();
    expect(workerEnv(launch({ env: { NODE_COMPILE_CACHE: '/srv/app/.cache' } }), '/run/smoothd/compile-cache/web').NODE_COMPILE_CACHE).toBe('/srv/app/.cache');
    expect(workerEnv(launch({}, { NODE_COMPILE_CACHE: '/opt/cache' }), '/run/smoothd/compile-cache/web').NODE_COMPILE_CACHE).toBe('/opt/cache');
    expect(workerEnv(launch({}), null).NODE_COMPILE_CACHE).toBeUndefined();
  });

  it('refuses a compileCache that is not a boolean, naming the key', () => {
    expect(() => validateConfig({ groups: { web: { command: ['node'], compileCache: 'yes' } } }, path.join(dir, 'x.yaml'))).toThrow(/groups\.web\.compileCache.*true or false/s);
  });
});

describe('prepareCompileCache', () => {
  it("creates ROOT/GROUP (0700) for a worker running as smoothd's own user", () => {
    const root = path.join(dir, 'a', 'compile-cache');
    const got = prepareCompileCache(root, 'web', null);
    expect(got).toBe(path.join(root, 'web'));
    expect(fs.statSync(path.join(root, 'web')).mode & 0o777).toBe(0o700);
    expect(prepareCompileCache(root, 'web', null)).toBe(path.join(root, 'web')); // again: the same folder
  });

  it.skipIf(process.getuid?.() !== 0)("gives the folder to the group's account (root only)", () => {
    const root = path.join(dir, 'b', 'compile-cache');
    expect(prepareCompileCache(root, 'web', { uid: 65534, gid: 65534, initGroups: false })).toBe(path.join(root, 'web'));
    const st = fs.statSync(path.join(root, 'web'));
    expect([st.uid, st.gid]).toEqual([65534, 65534]);
    // The group's user: changed: the folder is handed over.
    expect(prepareCompileCache(root, 'web', { uid: 65533, gid: 65533, initGroups: false })).toBe(path.join(root, 'web'));
    expect(fs.statSync(path.join(root, 'web')).uid).toBe(65533);
  });

  it('never uses a symlink, and says why', () => {
    const root = path.join(dir, 'c', 'compile-cache');
    fs.mkdirSync(root, { recursive: true });
    fs.mkdirSync(path.join(dir, 'c', 'elsewhere'));
    fs.symlinkSync(path.join(dir, 'c', 'elsewhere'), path.join(root, 'web'));
    const got = prepareCompileCache(root, 'web', null);
    expect(got).toBeInstanceOf(Error);
    expect((got as Error).message).toBe(`${path.join(root, 'web')} is not a folder (a symlink or a file): not used`);
    fs.symlinkSync(path.join(dir, 'c', 'elsewhere'), path.join(dir, 'c', 'root-link'));
    expect(String(prepareCompileCache(path.join(dir, 'c', 'root-link'), 'web', null))).toMatch(/is not a folder \(a symlink or a file\): not used/);
  });

  it.skipIf(process.getuid?.() !== 0)('does not offer a folder inside one the worker cannot enter', () => {
    const closed = path.join(dir, 'e');
    fs.mkdirSync(closed, { mode: 0o700 });
    fs.chmodSync(closed, 0o700);
    const got = prepareCompileCache(path.join(closed, 'compile-cache'), 'web', { uid: 65534, gid: 65534, initGroups: false });
    expect(String(got)).toBe(`Error: ${closed} (mode 700) cannot be entered by the worker's uid 65534: not used`);
  });

  it('does not offer a folder the worker cannot enter', () => {
    const root = path.join(dir, 'd', 'compile-cache');
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    fs.chmodSync(root, 0o700);
    if (process.getuid?.() === 0) {
      expect(String(prepareCompileCache(root, 'web', { uid: 65534, gid: 65534, initGroups: false }))).toMatch(/mode 700\) cannot be entered by the worker's uid 65534: not used/);
    }
    expect(prepareCompileCache(root, 'web', null)).toBe(path.join(root, 'web'));
  });
});

describe('CompileCacheFolders (one per runtime)', () => {
  it('prepares a group\'s folder once; later spawns only check it, and prepare it again when it is gone or replaced', () => {
    const root = path.join(dir, 'f', 'compile-cache');
    const web = path.join(root, 'web');
    const folders = new CompileCacheFolders(root);
    expect(folders.folderFor('web', null)).toBe(web);
    const mkdir = vi.spyOn(fs, 'mkdirSync');
    try {
      expect(folders.folderFor('web', null)).toBe(web);
      expect(folders.folderFor('web', null)).toBe(web);
      expect(mkdir).not.toHaveBeenCalled(); // the second and third spawn: one lstat each, nothing created
      // Deleted while smoothd runs (the README says the cache is safe to delete): made again.
      fs.rmSync(web, { recursive: true });
      expect(folders.folderFor('web', null)).toBe(web);
      expect(fs.lstatSync(web).isDirectory()).toBe(true);
      expect(mkdir).toHaveBeenCalled();
    } finally {
      mkdir.mockRestore();
    }
    // Replaced by a symlink: never used, and said why.
    fs.rmSync(web, { recursive: true });
    fs.mkdirSync(path.join(dir, 'f', 'elsewhere'));
    fs.symlinkSync(path.join(dir, 'f', 'elsewhere'), web);
    expect(String(folders.folderFor('web', null))).toBe(`Error: ${web} is not a folder (a symlink or a file): not used`);
    expect(String(folders.folderFor('web', null))).toBe(`Error: ${web} is not a folder (a symlink or a file): not used`);
  });

  it.skipIf(process.getuid?.() !== 0)("prepares the folder again when the group's account changed", () => {
    const root = path.join(dir, 'g', 'compile-cache');
    const folders = new CompileCacheFolders(root);
    expect(folders.folderFor('web', { uid: 65534, gid: 65534, initGroups: false })).toBe(path.join(root, 'web'));
    expect(folders.folderFor('web', { uid: 65533, gid: 65533, initGroups: false })).toBe(path.join(root, 'web'));
    expect(fs.statSync(path.join(root, 'web')).uid).toBe(65533);
  });
});
