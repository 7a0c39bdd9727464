/**
 * Runs once before any test file: the integration, CLI and e2e tests run the
 * compiled programs in dist/, so a dist/ older than src/ would test yesterday's
 * code. Build when any source is newer than its output (or missing); fail with
 * tsc's own message when the build fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Sources whose compiled file is missing or older than they are. */
export function staleSources(root = ROOT): string[] {
  const src = join(root, 'src');
  return sources(src).filter((file) => {
    const out = join(root, 'dist', relative(src, file).replace(/\.ts$/, '.js'));
    return !existsSync(out) || statSync(out).mtimeMs < statSync(file).mtimeMs;
  });
}

export default function setup(): void {
  const stale = staleSources();
  if (stale.length === 0) return;
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    const out = (err as { stdout?: Buffer }).stdout?.toString() ?? String(err);
    throw new Error(`dist/ is older than src/ (${relative(ROOT, stale[0]!)} and ${stale.length - 1} more) and the build failed; fix it and run npm run build:\n${out}`);
  }
  const still = staleSources();
  if (still.length > 0) throw new Error(`dist/ is still older than src/ after a build (${relative(ROOT, still[0]!)}); run npm run build and check tsconfig.json`);
}
