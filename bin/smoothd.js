#!/usr/bin/env node
// Before any of the daemon's modules load: hold V8's young generation at its
// initial size in this process only (src/runtime/young-gen.ts says why and how
// an operator keeps V8's default). The daemon is imported after it, dynamically,
// because static imports would all be evaluated first.
import { pinYoungGeneration } from '../dist/runtime/young-gen.js';

const young = pinYoungGeneration();
if ('error' in young) {
  process.stderr.write(`smoothd: ${young.error}\n`);
  process.exit(78); // the config exit code (DESIGN §2): smoothd's environment is part of its configuration
}
const { main } = await import('../dist/cli/smoothd.js');

process.exitCode = await main(process.argv.slice(2));
