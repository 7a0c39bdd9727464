#!/usr/bin/env node
// Before any of the daemon's modules load: hold V8's young generation at its
// initial size in this process only (src/runtime/young-gen.ts says why and how
// an operator keeps V8's default). The daemon is imported after it, dynamically,
// because static imports would all be evaluated first.
import { pinYoungGeneration } from '../dist/runtime/young-gen.js';

pinYoungGeneration();
const { main } = await import('../dist/cli/smoothd.js');

process.exitCode = await main(process.argv.slice(2));
