/**
 * README's "Control protocol" section documents the error codes and methods:
 * keep it in step with the registry and ERROR_TABLE.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_TABLE } from '../../src/control/errors.js';
import { METHODS } from '../../src/control/methods.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = (() => {
  const start = readme.indexOf('\n## Control protocol\n');
  const end = readme.indexOf('\n## ', start + 1);
  return start === -1 ? '' : readme.slice(start, end === -1 ? undefined : end);
})();

describe('README: Control protocol', () => {
  it('exists', () => {
    expect(section).not.toBe('');
  });

  it('lists every error code with its name, meaning and smoothctl exit code, as ERROR_TABLE has them', () => {
    for (const e of ERROR_TABLE) {
      const row = section.split('\n').find((l) => l.startsWith(`| ${e.code} |`));
      expect(row, `README row for ${e.code}`).toBeDefined();
      const cells = row!.split('|').map((c) => c.trim());
      expect(cells[2]).toBe(`\`${e.name}\``);
      expect(cells[3]).toBe(e.meaning);
      expect(cells[5]).toBe(String(e.exitCode));
    }
  });

  it('documents every method and each of its params', () => {
    for (const m of METHODS) {
      expect(section).toContain(`#### \`${m.name}\``);
      for (const p of m.params) expect(section).toContain(`| \`${p.name}\` |`);
    }
  });
});
