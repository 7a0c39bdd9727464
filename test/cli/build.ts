/**
 * The CLI tests run the real compiled bin; test/global-setup.ts rebuilds dist/
 * first when src/ is newer.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'smoothctl.js');
