/**
 * The `warmup` option of smoothd/worker's listen(): defaults and the errors a
 * bad value gets (what was wrong, what is allowed, what to do).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_WARMUP, parseWarmup } from '../../src/worker/warmup.js';

describe('smoothd/worker warmup option', () => {
  it('is off unless asked for; true means the defaults', () => {
    expect(parseWarmup(undefined)).toBeNull();
    expect(parseWarmup(false)).toBeNull();
    expect(parseWarmup(true)).toEqual({ requests: 10, paths: ['/'], method: 'GET', headers: {}, timeoutMs: 5000 });
    expect(parseWarmup({})).toEqual(DEFAULT_WARMUP);
  });

  it('fills in what an object leaves out and upper-cases the method', () => {
    expect(parseWarmup({ requests: 5, paths: ['/a', '/b?x=1'], method: 'head', headers: { accept: 'text/html' } })).toEqual({
      requests: 5,
      paths: ['/a', '/b?x=1'],
      method: 'HEAD',
      headers: { accept: 'text/html' },
      timeoutMs: 5000,
    });
  });

  it.each([
    [{ requests: 0 }, 'warmup.requests is 0; it must be a positive integer (1 to 10000)'],
    [{ requests: 2.5 }, 'warmup.requests is 2.5; it must be a positive integer'],
    [{ requests: '50' }, 'warmup.requests is "50"; it must be a positive integer'],
    [{ paths: [] }, "warmup.paths is []; it must be a non-empty array of paths such as ['/', '/api/health']"],
    [{ paths: '/' }, 'warmup.paths is "/"; it must be a non-empty array'],
    [{ paths: ['/', 'health'] }, `warmup.paths[1] is "health"; each path must be a string starting with '/'`],
    [{ method: 'GET /' }, `warmup.method is "GET /"; it must be an HTTP method name`],
    [{ headers: { 'x-n': 1 } }, 'warmup.headers["x-n"] is 1; header values must be strings'],
    [{ timeoutMs: 0 }, 'warmup.timeoutMs is 0; it must be a positive number of milliseconds'],
    [{ request: 5 }, 'warmup has an unknown key "request"; the keys are requests, paths, method, headers and timeoutMs'],
    [50, 'warmup is 50; it must be true, false or an object {requests, paths, method, headers, timeoutMs}'],
  ])('refuses %j', (value, message) => {
    expect(() => parseWarmup(value)).toThrow(message);
  });

  it('says where to fix it', () => {
    expect(() => parseWarmup({ requests: -1 })).toThrow(
      /^smoothd\/worker: listen\(\) option warmup\.requests is -1; .*Fix the warmup option passed to listen\(\) \(or pass warmup: true for the defaults\)\.$/,
    );
  });
});
