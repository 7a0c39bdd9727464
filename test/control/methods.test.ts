import { describe, expect, it } from 'vitest';
import { RpcError } from '../../src/control/errors.js';
import { findMethod, formatMethodHelp, METHODS, validateParams, type MethodSpec } from '../../src/control/methods.js';

const reload = findMethod('reload')!;
const restart = findMethod('restart')!;
const status = findMethod('status')!;

function invalid(spec: MethodSpec, params: unknown): RpcError {
  try {
    validateParams(spec, params);
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(-32602);
    return err as RpcError;
  }
  throw new Error('expected invalid params');
}

describe('method registry', () => {
  it('has exactly the contract methods, each documented', () => {
    expect(METHODS.map((m) => m.name)).toEqual(['reload', 'restart', 'rollback', 'status', 'stop', 'metrics', 'subscribe', 'logs']);
    for (const m of METHODS) {
      expect(m.summary).not.toBe('');
      expect(formatMethodHelp(m)).toContain(m.name);
    }
    expect(formatMethodHelp(reload)).toContain('-32001 RELOAD_FAILED');
    expect(findMethod('nope')).toBeUndefined();
  });

  it('accepts absent, named and positional params', () => {
    expect(validateParams(reload, undefined)).toEqual({});
    expect(validateParams(reload, { groups: ['web', 'api'], wait: true })).toEqual({ groups: ['web', 'api'], wait: true });
    expect(validateParams(restart, ['web', false])).toEqual({ group: 'web', wait: false });
    expect(validateParams(status, {})).toEqual({});
    expect(validateParams(status, [])).toEqual({});
  });

  it('names the bad field', () => {
    expect(invalid(reload, { groups: 'web' }).message).toMatch(/"groups" must be an array of strings, got the string "web"/);
    expect(invalid(reload, { groups: ['web', 3] }).data).toEqual({ field: 'groups[1]' });
    expect(invalid(reload, { groups: ['bad name'] }).message).toMatch(/groups\[0\].*invalid value "bad name"/);
    expect(invalid(reload, { groups: [] }).message).toMatch(/must not be empty/);
    expect(invalid(reload, { wait: 'yes' }).message).toMatch(/"wait" must be true or false/);
    expect(invalid(reload, { grups: ['web'] }).message).toMatch(/unknown param "grups" \(allowed: groups, wait, dryRun\)/);
    expect(invalid(restart, {}).message).toMatch(/"group" is required/);
    expect(invalid(restart, ['a', true, 3]).message).toMatch(/at most 2 positional params/);
    expect(invalid(status, { x: 1 }).message).toMatch(/unknown param "x" \(it takes none\)/);
  });

  it('refuses params that are neither object nor array', () => {
    expect(invalid(status, 'bar').message).toMatch(/params must be an object or an array, got the string "bar"/);
    expect(invalid(status, null).data).toEqual({ field: 'params' });
    expect(invalid(status, 5).message).toMatch(/number 5/);
  });
});
