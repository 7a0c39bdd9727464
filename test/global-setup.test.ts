import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { staleSources } from './global-setup.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tree(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-stale-'));
  dirs.push(root);
  fs.mkdirSync(path.join(root, 'src/cli'), { recursive: true });
  fs.mkdirSync(path.join(root, 'dist/cli'), { recursive: true });
  for (const f of ['a', 'cli/b']) {
    fs.writeFileSync(path.join(root, `src/${f}.ts`), '');
    fs.writeFileSync(path.join(root, `dist/${f}.js`), '');
  }
  fs.writeFileSync(path.join(root, 'src/types.d.ts'), '');
  return root;
}

describe('staleSources (the check before the real-process tests)', () => {
  it('finds nothing when every output is at least as new as its source', () => {
    const root = tree();
    const old = new Date(Date.now() - 60_000);
    for (const f of ['a', 'cli/b']) fs.utimesSync(path.join(root, `src/${f}.ts`), old, old);
    expect(staleSources(root)).toEqual([]);
  });

  it('lists a source newer than its output, and one with no output', () => {
    const root = tree();
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(path.join(root, 'src/a.ts'), old, old);
    fs.utimesSync(path.join(root, 'dist/cli/b.js'), old, old);
    fs.writeFileSync(path.join(root, 'src/cli/new.ts'), '');
    expect(staleSources(root).map((f) => path.relative(root, f)).sort()).toEqual(['src/cli/b.ts', 'src/cli/new.ts']);
  });
});
