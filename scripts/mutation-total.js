#!/usr/bin/env node
// node scripts/mutation-total.js [--survivors] REPORT.json... : the mutation score per
// file and in total over Stryker JSON reports of disjoint parts (e.g. machine.ts scored in line
// ranges by separate runs). Counts the way Stryker does: detected = Killed + Timeout,
// undetected = Survived + NoCoverage; CompileError, RuntimeError and Ignored are not
// valid mutants. A mutant in two reports (same file, mutator, place, replacement)
// counts once, with the result of the report given last. Only mutants scored on the
// file as it is on disk now count: an incremental report also carries results of
// other files from older runs, and those are left out (and said so).
import { readFileSync } from 'node:fs';

// With --survivors it prints, after the scores, every mutant no test detected
// (file:line:column, mutator, replacement, and the source line) as a Markdown table.
const args = process.argv.slice(2);
const listSurvivors = args.includes('--survivors');
const reports = args.filter((a) => a !== '--survivors');
if (reports.length === 0) {
  console.error('usage: node scripts/mutation-total.js [--survivors] REPORT.json... (Stryker JSON reports, e.g. reports/mutation/mutation.json)');
  process.exit(64);
}
const byKey = new Map();
for (const file of reports) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.error(`mutation-total: cannot read ${file}: ${err.message}; give the path of a Stryker JSON report`);
    process.exit(66);
  }
  for (const [name, f] of Object.entries(report.files ?? {})) {
    let now = null;
    try {
      now = readFileSync(name, 'utf8');
    } catch {
      // not under this folder: counted as reported
    }
    if (now !== null && f.source !== undefined && f.source !== now) {
      console.log(`(left out: ${f.mutants.length} mutants of ${name} in ${file}, scored on another version of it)`);
      continue;
    }
    for (const m of f.mutants) {
      const { start: a, end: b } = m.location;
      const line = (f.source ?? '').split('\n')[a.line - 1] ?? '';
      byKey.set(`${name}\0${m.mutatorName}\0${a.line}:${a.column}-${b.line}:${b.column}\0${m.replacement ?? ''}`, { name, status: m.status, at: `${a.line}:${a.column}`, mutator: m.mutatorName, replacement: m.replacement ?? '', line });
    }
  }
}
const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);
const perFile = new Map();
for (const { name, status } of byKey.values()) {
  const c = perFile.get(name) ?? { detected: 0, undetected: 0, survived: 0, noCoverage: 0, timeout: 0, invalid: 0 };
  if (DETECTED.has(status)) c.detected++;
  else if (UNDETECTED.has(status)) c.undetected++;
  else c.invalid++;
  if (status === 'Survived') c.survived++;
  if (status === 'NoCoverage') c.noCoverage++;
  if (status === 'Timeout') c.timeout++;
  perFile.set(name, c);
}
const pct = (c) => (c.detected + c.undetected === 0 ? 'n/a' : `${((100 * c.detected) / (c.detected + c.undetected)).toFixed(2)}%`);
const total = { detected: 0, undetected: 0, survived: 0, noCoverage: 0, timeout: 0, invalid: 0 };
const rows = [...perFile.entries()].sort(([a], [b]) => a.localeCompare(b));
for (const [name, c] of rows) {
  for (const k of Object.keys(total)) total[k] += c[k];
  console.log(`${pct(c).padStart(7)}  ${String(c.detected + c.undetected).padStart(5)} mutants  ${String(c.survived).padStart(4)} survived  ${String(c.noCoverage).padStart(3)} no coverage  ${name}`);
}
console.log(`${pct(total).padStart(7)}  ${String(total.detected + total.undetected).padStart(5)} mutants  ${String(total.survived).padStart(4)} survived  ${String(total.noCoverage).padStart(3)} no coverage  total`);

if (listSurvivors) {
  const cell = (t) => t.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim().slice(0, 120);
  console.log('\n| where | status | mutator | replacement | source line |\n|---|---|---|---|---|');
  const left = [...byKey.values()].filter((m) => UNDETECTED.has(m.status));
  left.sort((a, b) => a.name.localeCompare(b.name) || parseInt(a.at, 10) - parseInt(b.at, 10));
  for (const m of left) console.log(`| ${m.name}:${m.at} | ${m.status} | ${m.mutator} | \`${cell(m.replacement)}\` | \`${cell(m.line)}\` |`);
}
