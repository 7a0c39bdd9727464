/**
 * Fuzzes the config loader: whatever the text, parseConfigText returns a
 * Config or throws ConfigError (exit 78 with a message), never anything else
 * (which would be a stack trace and exit 1, and systemd restarting smoothd
 * forever). A few hundred cases per property in CI; more with
 * SMOOTHD_FUZZ_RUNS=5000 npx vitest run test/config/fuzz.test.ts
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/types.js';

const RUNS = Number(process.env.SMOOTHD_FUZZ_RUNS ?? '300');
const FILE = '/srv/app/smoothd.yaml';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smoothd-fuzz-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Returns what happened; fails the property on anything but a Config or a ConfigError with a message. */
function outcome(text: string): 'config' | 'refused' {
  try {
    const config = parseConfigText(text, FILE);
    expect(Array.isArray(config.groups)).toBe(true);
    return 'config';
  } catch (error) {
    if (!(error instanceof ConfigError)) throw new Error(`not a ConfigError for ${JSON.stringify(text)}: ${String(error)}`);
    expect(error.issues.length).toBeGreaterThan(0);
    for (const issue of error.issues) {
      expect(typeof issue.message).toBe('string');
      expect(issue.message.length).toBeGreaterThan(0);
    }
    return 'refused';
  }
}

const VALID = [
  'socketMode: "0660"',
  'groups:',
  '  web: &web',
  '    command: [node, server.js]',
  '    count: 2',
  '    env: { NODE_ENV: production, PORT: 01 }',
  '    listen: ["127.0.0.1:8080", { address: "unix:/run/app.sock", name: http, mode: "0660" }]',
  '    ready: ipc',
  '    readyTimeout: 30s',
  '    stopSignal: SIGTERM',
  '    rolling: { surge: 1, unavailable: 0 }',
  '  api:',
  '    <<: *web',
  '    listen: [":9090"]',
  '    reloadable: false',
  '',
].join('\n');

const TOKENS = [
  'groups:', 'web:', 'api:', 'command:', 'count:', 'listen:', 'env:', 'cwd:', 'ready:', 'rolling:', 'socketMode:',
  '<<:', '<<: *a', '&a ', '*a', '*b', '&b ', '- ', ': ', ':', '? ', '{', '}', '[', ']', ',', '\n', '\n  ', '\n    ', '  ',
  '"', "'", '\\', '#', '---', '...', '|', '>-', '%YAML 1.2\n', '%TAG ! tag:x,2000:\n', '!!binary ', '!!map ', '!!seq ',
  '!!str ', '!!int ', '!!float ', '!!set ', '!!omap ', '!!pairs ', '!local ', '!<tag:yaml.org,2002:map> ', '5', '-1',
  '0o777', '0x1F', '1e309', '.inf', '.nan', 'null', '~', 'true', 'sleep', '"10"', '30s', '0660', '\t', '\r\n', '\u00e9',
  '\ufeff', '\u0085', '\u2028', 'ipc', 'notify', 'unix:/tmp/x.sock', '127.0.0.1:0', '[::1]:0', 'systemd:http',
];

const yamlish = fc
  .array(fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 6 })), { maxLength: 80, size: 'max' })
  .map((parts) => parts.join(''));

/** Puts a random JSON value at random places of an otherwise valid document. */
const withValue = fc.tuple(fc.jsonValue(), fc.constantFrom(
  (v: string) => v,
  (v: string) => `{"groups": ${v}}`,
  (v: string) => `{"groups": {"web": ${v}}}`,
  ...['command', 'count', 'listen', 'env', 'cwd', 'ready', 'readyTimeout', 'rolling', 'user', 'stopSignal', 'restartDelay', 'reloadable'].map(
    (key) => (v: string) => `{"groups": {"web": {"command": ["sleep", "1"], "${key}": ${v}}}}`,
  ),
  (v: string) => `{"socketMode": ${v}, "groups": {"web": {"command": ["sleep", "1"]}}}`,
  (v: string) => `{"socketGroup": ${v}, "groups": {"web": {"command": ["sleep", "1"]}}}`,
  (v: string) => `{"groups": {"web": {"command": ["sleep", "1"], "listen": [{"address": ${v}}]}}}`,
)).map(([value, place]) => place(JSON.stringify(value)));

type Mutation = { at: number; op: 'delete' | 'insert' | 'duplicate-line' | 'swap-lines' | 'indent'; length: number; token: string };

const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('delete', 'insert', 'duplicate-line', 'swap-lines', 'indent'),
  length: fc.integer({ min: 1, max: 12 }),
  token: fc.constantFrom(...TOKENS),
});

function mutate(text: string, m: Mutation): string {
  const at = m.at % (text.length + 1);
  const lines = text.split('\n');
  const line = m.at % lines.length;
  switch (m.op) {
    case 'delete':
      return text.slice(0, at) + text.slice(at + m.length);
    case 'insert':
      return text.slice(0, at) + m.token + text.slice(at);
    case 'duplicate-line':
      lines.splice(line, 0, lines[line]!);
      return lines.join('\n');
    case 'swap-lines': {
      const other = (line + m.length) % lines.length;
      [lines[line], lines[other]] = [lines[other]!, lines[line]!];
      return lines.join('\n');
    }
    case 'indent':
      lines[line] = ' '.repeat(m.length) + lines[line];
      return lines.join('\n');
  }
}

const mutated = fc.array(mutation, { minLength: 1, maxLength: 8 }).map((ms) => ms.reduce(mutate, VALID));

describe('config loader fuzzing: only a Config or a ConfigError', () => {
  it('the valid base document loads', () => {
    expect(outcome(VALID)).toBe('config');
  });

  it('random YAML-ish text', () => {
    fc.assert(fc.property(yamlish, (text) => void outcome(text)), { numRuns: RUNS });
  });

  it('random JSON values anywhere in a config', () => {
    fc.assert(fc.property(withValue, (text) => void outcome(text)), { numRuns: RUNS });
  });

  it('random mutations of a valid config', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(mutated, (text) => {
        seen.add(outcome(text));
      }),
      { numRuns: RUNS },
    );
    // The mutations are small enough that some still load: both paths are exercised.
    expect([...seen].sort()).toEqual(['config', 'refused']);
  });

  it('random unicode text', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (text) => void outcome(text)), { numRuns: RUNS });
  });

  it('random bytes in a file', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const file = join(dir, 'fuzz.yaml');
        await writeFile(file, bytes);
        try {
          await loadConfig(file);
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
        }
      }),
      { numRuns: Math.max(50, Math.floor(RUNS / 3)) },
    );
  });
});
