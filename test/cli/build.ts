/**
 * The CLI tests run the real compiled bin. Build once if dist/ is missing or
 * older than the sources it needs (`npm test` builds first anyway).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'smoothctl.js');

function sources(): string[] {
  const control = join(ROOT, 'src', 'control');
  return [
    join(ROOT, 'src', 'cli', 'smoothctl.ts'),
    join(ROOT, 'src', 'paths.ts'),
    ...readdirSync(control)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(control, f)),
  ];
}

function outputOf(src: string): string {
  return join(ROOT, 'dist', src.slice(join(ROOT, 'src').length + 1).replace(/\.ts$/, '.js'));
}

function stale(): boolean {
  return sources().some((src) => {
    const out = outputOf(src);
    return !existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs;
  });
}

export function ensureBuilt(): void {
  if (!stale()) return;
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
      cwd: ROOT,
      stdio: 'pipe',
    });
  } catch (err) {
    // tsc still emits when another module has type errors; only fail if our outputs are missing.
    if (stale()) {
      const out = (err as { stdout?: Buffer }).stdout?.toString() ?? '';
      throw new Error(`build failed:\n${out}`);
    }
  }
}
