/**
 * Edges of the reload preview: an unchanged spec carries no change keys at all
 * (a caller may count them to mean "unchanged"), and the listen line of the
 * printed diff joins several addresses and names an empty list.
 */
import { describe, expect, it } from 'vitest';
import { formatPreview, specChanges, type GroupChanges, type ReloadPreview } from '../../src/supervisor/preview.js';
import { groupConfig, specFor, tcpListen as listen } from './harness.js';

const base = specFor(groupConfig({ env: { A: '1' }, listen: [listen('127.0.0.1:8080')] }));
const rolled = (changes: GroupChanges): ReloadPreview => ({ dryRun: true, groups: [{ name: 'web', reloadable: true, action: 'roll', changes }] });

describe('specChanges: an unchanged spec has no change keys', () => {
  it('a copy of the same spec gives an object with no keys, not keys set to undefined', () => {
    const c = specChanges(base, structuredClone(base));
    expect(Object.keys(c)).toEqual([]);
    expect(c).toStrictEqual({});
  });

  it('a change of one field gives that key alone', () => {
    expect(Object.keys(specChanges(base, { ...base, count: 4 }))).toEqual(['count']);
  });
});

describe('formatPreview: the listen line', () => {
  it('names an empty list (none), from none to one address and back', () => {
    expect(formatPreview(rolled({ listen: { from: [], to: ['127.0.0.1:8080'] } }))).toBe('web: rolled\n  listen: (none) -> 127.0.0.1:8080\n');
    expect(formatPreview(rolled({ listen: { from: ['127.0.0.1:8080'], to: [] } }))).toBe('web: rolled\n  listen: 127.0.0.1:8080 -> (none)\n');
  });

  it('joins several old addresses with a comma', () => {
    expect(formatPreview(rolled({ listen: { from: ['127.0.0.1:1', '127.0.0.1:2'], to: ['127.0.0.1:3'] } }))).toBe(
      'web: rolled\n  listen: 127.0.0.1:1, 127.0.0.1:2 -> 127.0.0.1:3\n',
    );
  });
});
