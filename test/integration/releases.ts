/** Release folders for the HTTP fixture, switched with an atomic `current` symlink like a real deploy. */
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES } from './harness.js';

export const APP = path.join(FIXTURES, 'http-app.mjs');

/** Writes releases/NAME (release.txt plus `extra` files) and points `current` at it. */
export function release(dir: string, name: string, extra: Record<string, string> = {}): string {
  const folder = path.join(dir, 'releases', name);
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, 'release.txt'), name);
  for (const [file, text] of Object.entries(extra)) fs.writeFileSync(path.join(folder, file), text);
  const current = path.join(dir, 'current');
  const tmp = `${current}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(folder, tmp);
  fs.renameSync(tmp, current);
  return folder;
}

export interface GroupOptions {
  name?: string;
  count?: number;
  /** Addresses, or `{address, name}` entries (a `:0` entry keeps its port across reloads by its name). */
  listen?: Array<string | { address: string; name: string }>;
  readyTimeout?: string;
  stopTimeout?: string;
  extra?: string;
}

/** One group of the HTTP fixture, run from `DIR/current`. */
export function group(dir: string, o: GroupOptions = {}): string {
  return `  ${o.name ?? 'web'}:
    command: [node, ${APP}]
    cwd: ${path.join(dir, 'current')}
    count: ${o.count ?? 4}
    listen: ${JSON.stringify(o.listen ?? [])}
    ready: ipc
    readyTimeout: ${o.readyTimeout ?? '10s'}
    stopTimeout: ${o.stopTimeout ?? '10s'}
${o.extra ?? ''}`;
}

export function config(...groups: string[]): string {
  return `groups:\n${groups.join('\n')}\n`;
}
