import { describe, expect, it } from 'vitest';
import {
  ERROR_CODES,
  ERROR_TABLE,
  EXIT,
  errorInfo,
  exitCodeForError,
  PROTOCOL_ERRORS,
  RpcError,
  rpcErrors,
} from '../../src/control/errors.js';

describe('error codes', () => {
  it('application codes are unique, in -32000..-32099, and all in the table', () => {
    const codes = Object.values(ERROR_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) {
      expect(c).toBeGreaterThanOrEqual(-32099);
      expect(c).toBeLessThanOrEqual(-32000);
    }
    for (const [name, code] of Object.entries({ ...ERROR_CODES, ...PROTOCOL_ERRORS })) {
      expect(errorInfo(code)?.name).toBe(name);
    }
    expect(ERROR_TABLE).toHaveLength(codes.length + Object.keys(PROTOCOL_ERRORS).length);
  });

  it('keeps the stable numbers', () => {
    expect(ERROR_CODES).toMatchObject({
      RELOAD_FAILED: -32001,
      RELOAD_REFUSED_WINDOWS: -32002,
      DAEMON_STOPPING: -32003,
      CONFIG_INVALID: -32004,
      UNKNOWN_GROUP: -32005,
      RELOAD_ABORTED: -32006,
      NEEDS_RESTART: -32007,
      TOO_MANY_CONNECTIONS: -32008,
      ROLLBACK_FAILED: -32009,
      ROLLBACK_REFUSED: -32010,
      INTERNAL: -32099,
    });
  });

  it('maps to smoothctl exit codes', () => {
    expect(exitCodeForError(ERROR_CODES.RELOAD_FAILED)).toBe(EXIT.FAILED);
    expect(exitCodeForError(ERROR_CODES.RELOAD_REFUSED_WINDOWS)).toBe(EXIT.REFUSED);
    expect(exitCodeForError(ERROR_CODES.DAEMON_STOPPING)).toBe(EXIT.REFUSED);
    // DESIGN §10: a failed rollback means mixed generations serve (3); a refused rollback is 2.
    expect(exitCodeForError(ERROR_CODES.ROLLBACK_FAILED)).toBe(3);
    expect(exitCodeForError(ERROR_CODES.ROLLBACK_REFUSED)).toBe(2);
    expect(exitCodeForError(PROTOCOL_ERRORS.INVALID_PARAMS)).toBe(EXIT.USAGE);
    expect(exitCodeForError(-32050)).toBe(EXIT.FAILED);
    for (const e of ERROR_TABLE) expect(e.meaning).not.toMatch(/\n/);
  });

  it('RpcError carries code, message and data; the Windows refusal says Windows', () => {
    const e = new RpcError(-32001, 'boom', { id: 3 });
    expect(e).toBeInstanceOf(Error);
    expect(e.toJSON()).toEqual({ code: -32001, message: 'boom', data: { id: 3 } });
    expect(new RpcError(-32003, 'x').toJSON()).toEqual({ code: -32003, message: 'x' });
    const w = rpcErrors.reloadRefusedWindows();
    expect(w.code).toBe(ERROR_CODES.RELOAD_REFUSED_WINDOWS);
    expect(w.message).toContain('Windows');
    expect(rpcErrors.unknownGroup('wbe', ['web']).message).toBe('unknown group "wbe" (groups: web)');
  });
});
