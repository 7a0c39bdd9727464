import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkSocketPath,
  ensurePrivateSocketFolder,
  privateSocketFolderProblem,
  privateSocketProblem,
  MAX_SOCKET_PATH_BYTES,
  resolveSocketPath,
  resolveSocketPathWithSource,
  SocketPathError,
} from '../src/paths.js';

const base = { cwd: '/home/op' };

describe('resolveSocketPath', () => {
  it('follows --socket > $SMOOTHD_SOCKET > $RUNTIME_DIRECTORY > root > $XDG_RUNTIME_DIR > /tmp', () => {
    const env = {
      SMOOTHD_SOCKET: '/e/s.sock',
      RUNTIME_DIRECTORY: '/run/unit',
      XDG_RUNTIME_DIR: '/run/user/1000',
    };
    expect(resolveSocketPath({ ...base, flag: '/f/s.sock', env, uid: 1000 })).toBe('/f/s.sock');
    expect(resolveSocketPath({ ...base, env, uid: 1000 })).toBe('/e/s.sock');
    expect(resolveSocketPath({ ...base, env: { ...env, SMOOTHD_SOCKET: undefined }, uid: 1000 })).toBe(
      '/run/unit/smoothd.sock',
    );
    expect(resolveSocketPath({ ...base, env: { XDG_RUNTIME_DIR: '/run/user/0' }, uid: 0 })).toBe(
      '/run/smoothd/smoothd.sock',
    );
    expect(resolveSocketPath({ ...base, env: { XDG_RUNTIME_DIR: '/run/user/1000' }, uid: 1000 })).toBe(
      '/run/user/1000/smoothd/smoothd.sock',
    );
    expect(resolveSocketPath({ ...base, env: {}, uid: 1000 })).toBe('/tmp/smoothd-1000/smoothd.sock');
  });

  it('reports which rule applied', () => {
    expect(resolveSocketPathWithSource({ ...base, env: {}, uid: 0 }).source).toBe('root');
    expect(resolveSocketPathWithSource({ ...base, env: { RUNTIME_DIRECTORY: '/r' }, uid: 0 }).source).toBe(
      'RUNTIME_DIRECTORY',
    );
    expect(resolveSocketPathWithSource({ ...base, env: {}, uid: 5 }).source).toBe('tmp');
  });

  it('treats empty values as unset', () => {
    const env = { SMOOTHD_SOCKET: '', RUNTIME_DIRECTORY: ' ', XDG_RUNTIME_DIR: '' };
    expect(resolveSocketPath({ ...base, flag: '', env, uid: 1000 })).toBe('/tmp/smoothd-1000/smoothd.sock');
  });

  it('uses the first of several RUNTIME_DIRECTORY folders', () => {
    expect(resolveSocketPath({ ...base, env: { RUNTIME_DIRECTORY: '/run/a:/run/b' }, uid: 0 })).toBe('/run/a/smoothd.sock');
  });

  it('ignores a relative XDG_RUNTIME_DIR and resolves relative --socket / $SMOOTHD_SOCKET against cwd', () => {
    expect(resolveSocketPath({ ...base, env: { XDG_RUNTIME_DIR: 'rel' }, uid: 7 })).toBe('/tmp/smoothd-7/smoothd.sock');
    expect(resolveSocketPath({ ...base, flag: 'x.sock', env: {}, uid: 7 })).toBe('/home/op/x.sock');
    expect(resolveSocketPath({ ...base, env: { SMOOTHD_SOCKET: '../y.sock' }, uid: 7 })).toBe('/home/y.sock');
  });

  it('refuses paths over 107 bytes, counted in UTF-8 bytes', () => {
    const ok = '/' + 'a'.repeat(MAX_SOCKET_PATH_BYTES - 1);
    expect(checkSocketPath(ok)).toBe(ok);
    const long = ok + 'b';
    expect(() => checkSocketPath(long)).toThrow(SocketPathError);
    expect(() => checkSocketPath(long)).toThrow(/108 bytes long, over the 107-byte limit/);
    // 54 two-byte characters: 54 characters but 109 bytes
    const multibyte = '/' + 'é'.repeat(54);
    expect(multibyte.length).toBeLessThan(MAX_SOCKET_PATH_BYTES);
    expect(() => checkSocketPath(multibyte)).toThrow(SocketPathError);
    expect(() => resolveSocketPath({ ...base, flag: long, env: {}, uid: 0 })).toThrow(SocketPathError);
  });

  it('refuses NUL bytes', () => {
    expect(() => checkSocketPath('/tmp/a\0b')).toThrow(/NUL/);
  });
});

describe('the private /tmp/smoothd-$UID folder', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const scratch = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'smoothd-paths-'));
    dirs.push(d);
    return d;
  };
  const me = process.getuid!();

  it('creates a missing folder 0700 and accepts it', () => {
    const dir = join(scratch(), 'smoothd-1000');
    expect(privateSocketFolderProblem(dir, me)).toBe('missing');
    const umask = process.umask(0o077);
    try {
      expect(ensurePrivateSocketFolder(dir, me)).toBeNull();
    } finally {
      process.umask(umask);
    }
    const info = lstatSync(dir);
    expect([info.isDirectory(), info.uid, info.mode & 0o7777]).toEqual([true, me, 0o700]);
    expect(privateSocketFolderProblem(dir, me)).toBeNull();
  });

  it('refuses a symlink, a file, another owner and any group/other permission, saying what to fix', () => {
    const base = scratch();
    const good = join(base, 'good');
    mkdirSync(good, { mode: 0o700 });
    const link = join(base, 'link');
    symlinkSync(good, link);
    expect(ensurePrivateSocketFolder(link, me)).toMatch(/is a symbolic link, which another user may have planted; refusing to use it — remove it \(rm -r /);
    const file = join(base, 'file');
    writeFileSync(file, '');
    expect(privateSocketFolderProblem(file, me)).toMatch(/exists but is not a folder/);
    chmodSync(good, 0o710);
    expect(privateSocketFolderProblem(good, me)).toMatch(/has mode 0710; it must be 0700 .* chmod 0700 /);
    chmodSync(good, 0o700);
    expect(privateSocketFolderProblem(good, me + 1)).toMatch(new RegExp(`belongs to uid ${me}, not to this user \\(uid ${me + 1}\\)`));
  });

  it('smoothctl accepts only its own socket there; nothing there is left to the connect', async () => {
    const folder = join(scratch(), 'smoothd-x');
    mkdirSync(folder, { mode: 0o700 });
    const sock = join(folder, 'smoothd.sock');
    expect(privateSocketProblem(sock, me)).toBeNull();
    expect(privateSocketProblem(join(scratch(), 'absent', 'smoothd.sock'), me)).toBeNull();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      expect(privateSocketProblem(sock, me)).toBeNull();
      if (me === 0) {
        chownSync(sock, 65534, 65534);
        expect(privateSocketProblem(sock, 0)).toMatch(/belongs to uid 65534, not to this user \(uid 0\); refusing to talk to it/);
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    writeFileSync(sock, '');
    expect(privateSocketProblem(sock, me)).toMatch(/is not a socket; refusing to talk to it/);
  });
});
