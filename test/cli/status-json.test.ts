/**
 * `smoothctl status --json` off a terminal prints the status document as
 * smoothd sent it (one line, never serialized again: at 1 024 workers the
 * indented re-serialization cost more than the daemon's answer); on a
 * terminal it is indented. Both are the same JSON value, and characters
 * that could drive a terminal stay escaped.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resultText } from '../../src/control/client.js';
import { main } from '../../src/cli/smoothctl.js';
import { fakeHandlers, Harness } from '../control/helpers.js';

const doc = {
  version: 1,
  daemon: { pid: 4242, version: '0.1.0', state: 'running', startedAt: '2026-12-01T00:00:00.000Z', uptimeMs: 5, platform: 'linux', configPath: '/etc/smoothd/smoothd.yaml' },
  reload: { id: 0, state: 'idle', done: 0, total: 0 },
  groups: [{ name: 'web', workers: [{ id: 1, pid: 10, rssBytes: 4096, statusText: 'csi \u009b2J and bidi \u202e here' }] }],
};

let h: Harness;
beforeEach(() => {
  h = new Harness();
});
afterEach(async () => {
  await h.cleanup();
});

async function statusJson(isTTY: boolean): Promise<{ code: number; out: string; err: string }> {
  const server = await h.server({ handlers: fakeHandlers({ status: async () => doc }) });
  let out = '';
  let err = '';
  const code = await main(['--socket', server.path, 'status', '--json'], {
    stdout: { write: (s: string) => (out += s), isTTY },
    stderr: { write: (s: string) => (err += s) },
  });
  return { code, out, err };
}

describe('smoothctl status --json', () => {
  it("off a terminal: smoothd's JSON text on one line, the same value, terminal controls escaped", async () => {
    const r = await statusJson(false);
    expect(r.code, r.err).toBe(0);
    expect(r.out.endsWith('\n')).toBe(true);
    expect(r.out.slice(0, -1)).not.toContain('\n');
    expect(JSON.parse(r.out)).toEqual(doc);
    expect(r.out).not.toMatch(/[\u009b\u202e]/);
    expect(r.out).toContain('\\u009b2J');
    expect(r.out).toBe(`${JSON.stringify(doc).replace('\u009b', '\\u009b').replace('\u202e', '\\u202e')}\n`);
  });

  it('on a terminal: indented by two spaces, the same value', async () => {
    const r = await statusJson(true);
    expect(r.code, r.err).toBe(0);
    expect(r.out.startsWith('{\n  "version": 1,\n')).toBe(true);
    expect(JSON.parse(r.out)).toEqual(doc);
  });
});

describe('resultText', () => {
  it('is the result text of a reply line smoothd wrote', () => {
    const line = '{"jsonrpc":"2.0","id":1,"result":{"a":[1,"}"]}}';
    expect(resultText(line, JSON.parse(line) as object)).toBe('{"a":[1,"}"]}');
  });

  it('is null for any other shape (then smoothctl serializes the parsed value)', () => {
    for (const line of ['{"id":1,"jsonrpc":"2.0","result":1}', '{"jsonrpc":"2.0","id":1,"result":1,"x":2}', '{"jsonrpc": "2.0", "id": 1, "result": 1}']) {
      expect(resultText(line, JSON.parse(line) as object)).toBeNull();
    }
  });
});
