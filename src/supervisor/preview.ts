/**
 * `smoothctl reload --dry-run` (DESIGN §10): what a reload would change per
 * group — argv, resolved cwd and revision, env keys added/changed/removed,
 * count, listen — computed from the running state and a freshly loaded and
 * checked config, without starting anything. Pure.
 */
import type { Config } from '../config/types.js';
import type { GenerationSpec, GroupState } from './types.js';

export interface GroupChanges {
  command?: { from: string[]; to: string[] };
  cwd?: { from: string; to: string };
  revision?: { from: string | null; to: string | null };
  env?: { added: string[]; changed: string[]; removed: string[] };
  count?: { from: number; to: number };
  listen?: { from: string[]; to: string[] };
}

export interface GroupPreview {
  name: string;
  reloadable: boolean;
  /** added: new in the config; removed: gone from it (drained once a reload succeeds). */
  action: 'roll' | 'skip' | 'add' | 'remove';
  changes: GroupChanges;
}

export interface ReloadPreview {
  dryRun: true;
  groups: GroupPreview[];
}

function envChanges(from: Record<string, string>, to: Record<string, string>): GroupChanges['env'] {
  const added = Object.keys(to).filter((k) => !(k in from));
  const removed = Object.keys(from).filter((k) => !(k in to));
  const changed = Object.keys(to).filter((k) => k in from && from[k] !== to[k]);
  return added.length + removed.length + changed.length > 0 ? { added, changed, removed } : undefined;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export function specChanges(from: GenerationSpec, to: GenerationSpec): GroupChanges {
  const c: GroupChanges = {};
  if (!same(from.command, to.command) || from.executable !== to.executable) c.command = { from: [...from.command], to: [...to.command] };
  if (from.cwdReal !== to.cwdReal) c.cwd = { from: from.cwdReal, to: to.cwdReal };
  if ((from.revision ?? null) !== (to.revision ?? null)) c.revision = { from: from.revision ?? null, to: to.revision ?? null };
  const env = envChanges(from.env, to.env);
  if (env) c.env = env;
  if (from.count !== to.count) c.count = { from: from.count, to: to.count };
  const listen = (s: GenerationSpec) => s.listen.map((l) => l.text);
  if (!same(listen(from), listen(to))) c.listen = { from: listen(from), to: listen(to) };
  return c;
}

/** The preview of a reload of `selected` groups (null: all) from `groups` (running) to `config` + `specs` (on disk). */
export function previewReload(groups: readonly GroupState[], config: Config, specs: Record<string, GenerationSpec>, selected: string[] | null): ReloadPreview {
  const out: GroupPreview[] = [];
  const chosen = (name: string): boolean => selected === null || selected.includes(name);
  for (const gc of config.groups) {
    const spec = specs[gc.name];
    const g = groups.find((x) => x.name === gc.name);
    if (!spec) continue;
    if (!g) {
      if (selected === null) out.push({ name: gc.name, reloadable: gc.reloadable, action: 'add', changes: {} });
      continue;
    }
    if (!chosen(gc.name)) continue;
    const current = g.specs[String(g.generation)];
    const reloadable = g.config.reloadable && gc.reloadable;
    out.push({ name: gc.name, reloadable, action: reloadable ? 'roll' : 'skip', changes: current ? specChanges(current, spec) : {} });
  }
  if (selected === null) {
    for (const g of groups) {
      if (!config.groups.some((gc) => gc.name === g.name) && !g.removing) out.push({ name: g.name, reloadable: g.config.reloadable, action: 'remove', changes: {} });
    }
  }
  return { dryRun: true, groups: out };
}

/** A short diff per group, for smoothctl. */
export function formatPreview(p: ReloadPreview): string {
  const lines: string[] = [];
  for (const g of p.groups) {
    if (g.action === 'add') {
      lines.push(`${g.name}: new group, started by the reload`);
      continue;
    }
    if (g.action === 'remove') {
      lines.push(`${g.name}: gone from the config, drained once the reload succeeds`);
      continue;
    }
    const c = g.changes;
    const parts: string[] = [];
    if (c.command) parts.push(`  command: ${c.command.from.join(' ')} -> ${c.command.to.join(' ')}`);
    if (c.cwd) parts.push(`  cwd: ${c.cwd.from} -> ${c.cwd.to}`);
    if (c.revision) parts.push(`  revision: ${c.revision.from ?? '(none)'} -> ${c.revision.to ?? '(none)'}`);
    if (c.env) {
      const e = [...c.env.added.map((k) => `+${k}`), ...c.env.changed.map((k) => `~${k}`), ...c.env.removed.map((k) => `-${k}`)];
      parts.push(`  env: ${e.join(' ')}`);
    }
    if (c.count) parts.push(`  count: ${c.count.from} -> ${c.count.to}`);
    if (c.listen) parts.push(`  listen: ${c.listen.from.join(', ') || '(none)'} -> ${c.listen.to.join(', ') || '(none)'}`);
    const head = g.action === 'skip' ? `${g.name}: not reloadable, skipped${parts.length > 0 ? ' (changes wait for smoothctl restart)' : ''}` : `${g.name}: rolled${parts.length === 0 ? ' (same config; the code on disk is started fresh)' : ''}`;
    lines.push(head, ...parts);
  }
  return lines.join('\n') + '\n';
}
