// Types of bench/load.js, for the tests (the benchmark itself is plain JS).
import type { Records } from './stats.js';
export function readRecords(file: string): Records;
