/**
 * `smoothctl status --json` runs every few seconds from monitoring, so its
 * start-up is part of what it costs: smoothctl's top-level imports are the
 * few dependency-free modules that path uses; what only other commands (or
 * only errors) need is imported when it is needed. These tests pin that set
 * and check that the commands whose modules moved off it still work: the
 * "did you mean" of an unknown command, `status --ready`, help. And the
 * output of `status --json` off a terminal is still exactly smoothd's text.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/smoothctl.js';
import { terminalSafeJson } from '../../src/cli/escape.js';
import { fakeHandlers, Harness } from '../control/helpers.js';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Every module a file loads before its code runs: static imports, not `import type`, not `await import()`. */
function staticGraph(file: string, seen = new Set<string>()): Set<string> {
  const rel = relative(SRC, file);
  if (seen.has(rel)) return seen;
  seen.add(rel);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\s+from\s+)?'([^']+)';/gm)) {
    const spec = m[1]!;
    if (spec.startsWith('.')) staticGraph(join(dirname(file), spec.replace(/\.js$/, '.ts')), seen);
    else seen.add(spec);
  }
  return seen;
}

describe("smoothctl's start-up imports", () => {
  it('are the fast-path modules only: no method table, suggestions, readiness, progress bar or yargs', () => {
    expect([...staticGraph(join(SRC, 'cli/smoothctl.ts'))].sort()).toEqual(
      [
        'cli/escape.ts',
        'cli/smoothctl.ts',
        'config/duration.ts',
        'control/client.ts',
        'control/errors.ts',
        'control/framing.ts',
        'control/group-name.ts',
        'node:fs',
        'node:net',
        'node:path',
        'paths.ts',
      ].sort(),
    );
  });
});

describe('terminalSafeJson', () => {
  it('returns plain ASCII JSON as it is (the same string)', () => {
    const text = JSON.stringify({ groups: [{ name: 'web', workers: Array.from({ length: 50 }, (_, id) => ({ id, statusText: 'serving ~ {}' })) }] });
    expect(terminalSafeJson(text)).toBe(text);
  });

  it('leaves other non-ASCII text alone', () => {
    const text = JSON.stringify({ statusText: 'café 日本 😀' });
    expect(terminalSafeJson(text)).toBe(text);
  });

  it('escapes DEL, C1, bidi controls and U+2028/2029 wherever they are, in ASCII or not', () => {
    for (const c of ['\u007f', '\u0080', '\u009b', '\u009f', '\u061c', '\u200e', '\u202e', '\u2028', '\u2029', '\u2066', '\u2069']) {
      const hex = `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
      expect(terminalSafeJson(JSON.stringify({ a: `x${c}y` }))).toBe(`{"a":"x${hex}y"}`);
      expect(terminalSafeJson(JSON.stringify({ a: `é${c}` }))).toBe(`{"a":"é${hex}"}`);
      expect(JSON.parse(terminalSafeJson(JSON.stringify({ a: c })))).toEqual({ a: c });
    }
  });
});

describe('commands whose modules load on demand', () => {
  let h: Harness;
  beforeEach(() => {
    h = new Harness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  async function run(argv: string[], status?: () => Promise<unknown>): Promise<{ code: number; out: string; err: string }> {
    const server = await h.server({ handlers: fakeHandlers(status ? { status } : {}) });
    let out = '';
    let err = '';
    const code = await main(['--socket', server.path, ...argv], {
      stdout: { write: (s: string) => (out += s), isTTY: false },
      stderr: { write: (s: string) => (err += s) },
    });
    return { code, out, err };
  }

  it("status --json off a terminal prints smoothd's text byte for byte", async () => {
    const doc = {
      version: 1,
      daemon: { pid: 4242, version: '0.1.0', state: 'running' },
      groups: [{ name: 'web', workers: Array.from({ length: 64 }, (_, id) => ({ id, pid: 1000 + id, rssBytes: 4096 * id, statusText: `serving ${id}` })) }],
    };
    const r = await run(['status', '--json'], async () => doc);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`${JSON.stringify(doc)}\n`);
  });

  it('status --ready still judges the document', async () => {
    const doc = {
      version: 1,
      daemon: { pid: 4242, version: '0.1.0', state: 'starting' },
      reload: { id: 0, state: 'idle', done: 0, total: 0 },
      groups: [],
      reloads: [],
    };
    const r = await run(['status', '--ready'], async () => doc);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^smoothctl: not ready: .*starting/);
  });

  it('an unknown command still gets its "did you mean"', async () => {
    let err = '';
    const code = await main(['stauts'], { stderr: { write: (s: string) => (err += s) } });
    expect(code).toBe(64);
    expect(err).toBe('smoothctl: unknown command "stauts" (did you mean "status"?) (commands: reload, restart, rollback, status, stop, metrics, events, logs); see smoothctl --help\n');
  });
});
