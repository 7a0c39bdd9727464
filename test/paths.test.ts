import { describe, expect, it } from 'vitest';
import {
  checkSocketPath,
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
