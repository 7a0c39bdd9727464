/**
 * A group's release history (DESIGN §10): the generations it ran, newest
 * first, each with the spec it was created with and what became of it —
 * `good` once its start or roll succeeded (and its watch ended), `bad` once it
 * failed. The current generation shows as `current`. Pure functions over
 * plain data; the machine decides when to call them.
 *
 * Entries keep their spec (for `smoothctl rollback`) but are not the specs
 * smoothd holds listen sockets for: those are the group's `specs`.
 */
import type { HistoryStatus } from './report.js';
import type { GenerationSpec, GroupState, HistoryEntry, RollbackTarget } from './types.js';

/** A new generation of the group; its outcome is not known yet. */
export function recordGeneration(history: HistoryEntry[], generation: number, spec: GenerationSpec, now: number): HistoryEntry[] {
  return [{ generation, createdAt: now, spec, outcome: null }, ...history.filter((h) => h.generation !== generation)];
}

export function markOutcome(history: HistoryEntry[], generation: number | null, outcome: 'good' | 'bad'): void {
  const h = history.find((x) => x.generation === generation);
  if (h) h.outcome = outcome;
}

/**
 * At most `keep` entries, newest first, but always the current generation and
 * the newest good one older than it (the target of a rollback). Generations
 * that never got an outcome and no longer run are dropped: they were rolled
 * back before they proved anything.
 */
export function trimHistory(history: HistoryEntry[], keep: number, current: number): HistoryEntry[] {
  const known = history.filter((h) => h.generation === current || h.outcome !== null);
  const sorted = [...known].sort((a, b) => b.generation - a.generation);
  const target = sorted.find((h) => h.generation < current && h.outcome === 'good');
  const kept = sorted.slice(0, Math.max(1, keep));
  for (const must of [sorted.find((h) => h.generation === current), target]) {
    if (must && !kept.includes(must)) kept.push(must);
  }
  return kept.sort((a, b) => b.generation - a.generation);
}

export function historyStatus(history: HistoryEntry[], current: number): HistoryStatus[] {
  return history.map((h) => ({
    generation: h.generation,
    createdAt: new Date(h.createdAt).toISOString(),
    cwd: h.spec.cwdReal,
    command: [...h.spec.command],
    revision: h.spec.revision ?? null,
    state: h.generation === current ? 'current' : h.outcome === 'good' ? 'good' : 'bad',
  }));
}

/**
 * The generation `smoothctl rollback` goes to: `to` when given (it must be in
 * the history and not the current one), else the newest good generation older
 * than the current one. A string says why there is none.
 */
export function rollbackTarget(history: HistoryEntry[], current: number, to: number | null): HistoryEntry | string {
  if (to !== null) {
    const h = history.find((x) => x.generation === to);
    if (!h) {
      const known = history.map((x) => x.generation).join(', ');
      return `generation ${to} is not in the history (it keeps ${known}); raise history: in the config to keep more`;
    }
    if (to === current) return `generation ${to} is the one running now`;
    return h;
  }
  const h = [...history].sort((a, b) => b.generation - a.generation).find((x) => x.generation < current && x.outcome === 'good');
  return h ?? `no good generation older than the current one (${current}) to roll back to; smoothctl status lists the history, and --to N names one`;
}

/** Same folder, same command, same environment: respawning `a` would run what `b` runs (an in-place deploy). */
export function sameRelease(a: GenerationSpec, b: GenerationSpec): boolean {
  return a.cwdReal === b.cwdReal && a.executable === b.executable && JSON.stringify(a.command) === JSON.stringify(b.command) && JSON.stringify(a.env) === JSON.stringify(b.env);
}

export interface RollbackAsk {
  /** null: every reloadable group. */
  groups: string[] | null;
  to: number | null;
  force: boolean;
}

/**
 * The targets of `smoothctl rollback`, or why it is refused. Checks what the
 * state knows (history, in place); the runtime checks the files.
 */
export function planRollback(groups: readonly GroupState[], ask: RollbackAsk): RollbackTarget[] | string {
  if (ask.to !== null && (ask.groups === null || ask.groups.length !== 1)) {
    return 'rollback --to needs exactly one group (generation numbers are per group): smoothctl rollback GROUP --to N';
  }
  const names = ask.groups ?? groups.filter((g) => g.config.reloadable && !g.removing).map((g) => g.name);
  if (names.length === 0) return 'no reloadable group to roll back';
  const targets: RollbackTarget[] = [];
  for (const name of names) {
    const g = groups.find((x) => x.name === name);
    if (!g) return `unknown group ${JSON.stringify(name)}; groups are: ${groups.map((x) => x.name).join(', ')}`;
    const t = rollbackTarget(g.history, g.generation, ask.to);
    if (typeof t === 'string') return `${name}: ${t}`;
    const current = g.specs[String(g.generation)];
    if (current && sameRelease(t.spec, current) && !ask.force) {
      return (
        `${name}: generation ${t.generation} runs the same folder (${t.spec.cwdReal}), command and environment as the current generation ${g.generation}, ` +
        'so rolling back would run today\'s files again (an in-place deploy). Deploy each release into its own folder (releases/N behind a current ' +
        'symlink) to make rollback meaningful, or pass --force to restart generation ' + String(t.generation) + ' anyway'
      );
    }
    targets.push({ group: name, generation: t.generation, spec: t.spec });
  }
  return targets;
}
