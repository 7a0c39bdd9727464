import { describe, expect, it } from 'vitest';
import { historyStatus, markOutcome, planRollback, recordGeneration, rollbackTarget, sameRelease, trimHistory } from '../../src/supervisor/history.js';
import type { GroupState, HistoryEntry } from '../../src/supervisor/types.js';
import { groupConfig, makeConfig, specFor, World } from './harness.js';

const spec = (n: number) => specFor(groupConfig(), `/srv/app/releases/${n}`);
const entry = (generation: number, outcome: HistoryEntry['outcome'], s = spec(generation)): HistoryEntry => ({ generation, createdAt: 1_700_000_000_000 + generation, spec: s, outcome });

/** A group running generation `current` with this history (its spec: the current entry's). */
function group(name: string, current: number, history: HistoryEntry[], over: Partial<GroupState> = {}): GroupState {
  const w = new World(makeConfig([groupConfig({ name })]), { start: false });
  const g = w.state.groups[0]!;
  const cur = history.find((h) => h.generation === current)?.spec ?? spec(current);
  return { ...g, generation: current, lastGeneration: current, specs: { [String(current)]: cur }, history, ...over };
}

describe('release history: recording and trimming', () => {
  it('a new generation goes first with no outcome, replacing an entry of the same number', () => {
    const h = recordGeneration([entry(2, 'good'), entry(1, 'good')], 2, spec(9), 5);
    expect(h).toEqual([{ generation: 2, createdAt: 5, spec: spec(9), outcome: null }, entry(1, 'good')]);
    expect(recordGeneration([entry(1, 'good')], 2, spec(2), 7).map((x) => x.generation)).toEqual([2, 1]);
  });

  it('marks the outcome of the named generation only', () => {
    const h = [entry(2, null), entry(1, null)];
    markOutcome(h, 2, 'bad');
    markOutcome(h, null, 'good');
    markOutcome(h, 9, 'good');
    expect(h.map((x) => x.outcome)).toEqual(['bad', null]);
  });

  it('keeps at least the current entry even with keep 0, sorted newest first', () => {
    expect(trimHistory([entry(1, 'good'), entry(3, 'bad'), entry(2, 'good')], 0, 3).map((x) => x.generation)).toEqual([3, 2]);
    expect(trimHistory([entry(1, 'good'), entry(3, 'bad'), entry(2, 'bad')], 1, 3).map((x) => x.generation)).toEqual([3, 1]);
  });

  it('after a rollback to an older generation: the current one and newer ones are kept, in order', () => {
    expect(trimHistory([entry(3, 'bad'), entry(2, 'good'), entry(1, 'good')], 1, 1).map((x) => x.generation)).toEqual([3, 1]);
    expect(trimHistory([entry(1, 'good'), entry(2, 'bad'), entry(3, 'good')], 5, 2).map((x) => x.generation)).toEqual([3, 2, 1]);
  });

  it('a generation that never got an outcome shows as bad; a missing revision as null', () => {
    const s = spec(2);
    delete s.revision;
    expect(historyStatus([entry(2, null, s)], 1)[0]).toMatchObject({ state: 'bad', revision: null });
  });
});

describe('rollback target and plan', () => {
  it('takes the newest good generation older than the current one, whatever the order of the list', () => {
    expect((rollbackTarget([entry(1, 'good'), entry(3, 'good'), entry(2, 'good'), entry(5, 'good')], 4, null) as HistoryEntry).generation).toBe(3);
    expect((rollbackTarget([entry(4, 'good'), entry(3, 'bad')], 4, null) as string)).toBe(
      'no good generation older than the current one (4) to roll back to; smoothctl status lists the history, and --to N names one',
    );
  });

  it('--to may name a bad generation, but not one outside the history', () => {
    expect((rollbackTarget([entry(3, null), entry(2, 'bad')], 3, 2) as HistoryEntry).generation).toBe(2);
    expect(rollbackTarget([entry(3, null), entry(2, 'bad')], 3, 7)).toBe('generation 7 is not in the history (it keeps 3, 2); raise history: in the config to keep more');
    expect(rollbackTarget([entry(3, null)], 3, 3)).toBe('generation 3 is the one running now');
  });

  it('the same folder, executable, argv and environment is the same release; any one differing is not', () => {
    const a = spec(1);
    expect(sameRelease(a, { ...a, command: [...a.command], env: { ...a.env } })).toBe(true);
    expect(sameRelease(a, { ...a, cwdReal: '/srv/app/releases/2' })).toBe(false);
    expect(sameRelease(a, { ...a, executable: '/opt/bin/node' })).toBe(false);
    expect(sameRelease(a, { ...a, command: ['node', 'other.js'] })).toBe(false);
    expect(sameRelease(a, { ...a, env: { X: '1' } })).toBe(false);
  });

  it('plans every reloadable group that is not being removed when no group is named', () => {
    const groups = [
      group('web', 2, [entry(2, 'good'), entry(1, 'good')]),
      group('admin', 2, [entry(2, 'good'), entry(1, 'good')], { config: groupConfig({ name: 'admin', reloadable: false }) }),
      group('old', 2, [entry(2, 'good'), entry(1, 'good')], { removing: true }),
      group('api', 3, [entry(3, 'good'), entry(2, 'bad'), entry(1, 'good')]),
    ];
    expect(planRollback(groups, { groups: null, to: null, force: false })).toEqual([
      { group: 'web', generation: 1, spec: spec(1) },
      { group: 'api', generation: 1, spec: spec(1) },
    ]);
    expect(planRollback(groups, { groups: ['admin'], to: null, force: false })).toEqual([{ group: 'admin', generation: 1, spec: spec(1) }]);
  });

  it('refuses --to without exactly one group, no reloadable group, an unknown group, and a group without a target', () => {
    const web = group('web', 2, [entry(2, 'good'), entry(1, 'good')]);
    const needsOne = 'rollback --to needs exactly one group (generation numbers are per group): smoothctl rollback GROUP --to N';
    expect(planRollback([web], { groups: null, to: 1, force: false })).toBe(needsOne);
    expect(planRollback([web], { groups: ['web', 'api'], to: 1, force: false })).toBe(needsOne);
    expect(planRollback([web], { groups: ['web'], to: 1, force: false })).toEqual([{ group: 'web', generation: 1, spec: spec(1) }]);
    expect(planRollback([{ ...web, removing: true }], { groups: null, to: null, force: false })).toBe('no reloadable group to roll back');
    expect(planRollback([web], { groups: [], to: null, force: false })).toBe('no reloadable group to roll back');
    expect(planRollback([web, group('api', 1, [entry(1, 'good')])], { groups: ['nope'], to: null, force: false })).toBe('unknown group "nope"; groups are: web, api');
    expect(planRollback([group('web', 1, [entry(1, 'good')])], { groups: null, to: null, force: false })).toBe(
      'web: no good generation older than the current one (1) to roll back to; smoothctl status lists the history, and --to N names one',
    );
  });

  it('refuses an in-place deploy (same release as the current one) unless forced', () => {
    const same = spec(1);
    const web = group('web', 2, [entry(2, 'good', same), entry(1, 'good', same)]);
    expect(planRollback([web], { groups: null, to: null, force: false })).toBe(
      'web: generation 1 runs the same folder (/srv/app/releases/1), command and environment as the current generation 2, so rolling back would run ' +
        "today's files again (an in-place deploy). Deploy each release into its own folder (releases/N behind a current symlink) to make rollback " +
        'meaningful, or pass --force to restart generation 1 anyway',
    );
    expect(planRollback([web], { groups: null, to: null, force: true })).toEqual([{ group: 'web', generation: 1, spec: same }]);
    // The current spec may be gone (a group whose generation has no spec left): then nothing is compared.
    expect(planRollback([{ ...web, specs: {} }], { groups: null, to: null, force: false })).toEqual([{ group: 'web', generation: 1, spec: same }]);
  });
});
