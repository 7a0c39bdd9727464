import { describe, expect, it } from 'vitest';
import { formatPreview, previewReload, specChanges, type ReloadPreview } from '../../src/supervisor/preview.js';
import { groupConfig, makeConfig, specFor, tcpListen as listen, World } from './harness.js';


const base = specFor(groupConfig({ env: { A: '1', B: '2' }, listen: [listen('127.0.0.1:8080')] }));

describe('reload --dry-run: what changes per group (pure)', () => {
  it('reports nothing for the same spec', () => {
    expect(specChanges(base, { ...base, env: { ...base.env }, command: [...base.command] })).toEqual({});
  });

  it('reports each changed field with its old and new value', () => {
    const to = {
      ...base,
      command: ['node', 'app.js'],
      cwdReal: '/srv/app/releases/2',
      revision: 'abc',
      env: { B: '3', C: '4' },
      count: 3,
      listen: [listen('127.0.0.1:9090')],
    };
    expect(specChanges(base, to)).toEqual({
      command: { from: ['node', 'server.js'], to: ['node', 'app.js'] },
      cwd: { from: '/srv/app/releases/1', to: '/srv/app/releases/2' },
      revision: { from: null, to: 'abc' },
      env: { added: ['C'], changed: ['B'], removed: ['A'] },
      count: { from: 1, to: 3 },
      listen: { from: ['127.0.0.1:8080'], to: ['127.0.0.1:9090'] },
    });
  });

  it('a new executable behind the same argv is a command change', () => {
    expect(specChanges(base, { ...base, executable: '/opt/node/bin/node' }).command).toEqual({ from: ['node', 'server.js'], to: ['node', 'server.js'] });
  });

  it('each env change alone is reported in its own list', () => {
    expect(specChanges(base, { ...base, env: { A: '1', B: '2', C: '3' } }).env).toEqual({ added: ['C'], changed: [], removed: [] });
    expect(specChanges(base, { ...base, env: { A: '1' } }).env).toEqual({ added: [], changed: [], removed: ['B'] });
    expect(specChanges(base, { ...base, env: { A: '9', B: '2' } }).env).toEqual({ added: [], changed: ['A'], removed: [] });
  });

  it('a revision that goes away is reported as null, an unset one equals null', () => {
    expect(specChanges({ ...base, revision: 'r1' }, { ...base, revision: null }).revision).toEqual({ from: 'r1', to: null });
    expect(specChanges({ ...base, revision: null }, { ...base }).revision).toBeUndefined();
    expect(specChanges({ ...base }, { ...base, revision: null }).revision).toBeUndefined();
    expect(specChanges({ ...base }, { ...base, revision: 'r2' }).revision).toEqual({ from: null, to: 'r2' });
  });

  it('previews roll, skip, add and remove for every group of a full reload', () => {
    const web = groupConfig({ name: 'web' });
    const admin = groupConfig({ name: 'admin', reloadable: false });
    const old = groupConfig({ name: 'old' });
    const w = new World(makeConfig([web, admin, old]), { autoReady: true });
    const next = makeConfig([groupConfig({ name: 'web', count: 2 }), groupConfig({ name: 'admin', reloadable: false }), groupConfig({ name: 'api' })], 2);
    const p = previewReload(w.state.groups, next.config, next.specs, null);
    expect(p.dryRun).toBe(true);
    expect(p.groups).toEqual([
      {
        name: 'web',
        reloadable: true,
        action: 'roll',
        changes: { cwd: { from: '/srv/app/releases/1', to: '/srv/app/releases/2' }, count: { from: 1, to: 2 } },
      },
      { name: 'admin', reloadable: false, action: 'skip', changes: { cwd: { from: '/srv/app/releases/1', to: '/srv/app/releases/2' } } },
      { name: 'api', reloadable: true, action: 'add', changes: {} },
      { name: 'old', reloadable: true, action: 'remove', changes: {} },
    ]);
  });

  it('a group made non-reloadable in the new config is skipped', () => {
    const w = new World(makeConfig([groupConfig({ name: 'web' })]), { autoReady: true });
    const next = makeConfig([groupConfig({ name: 'web', reloadable: false })]);
    expect(previewReload(w.state.groups, next.config, next.specs, null).groups).toEqual([{ name: 'web', reloadable: false, action: 'skip', changes: {} }]);
  });

  it('a reload of named groups previews only those: no added or removed groups', () => {
    const w = new World(makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'admin' }), groupConfig({ name: 'old' })]), { autoReady: true });
    const next = makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'admin' }), groupConfig({ name: 'api' })]);
    expect(previewReload(w.state.groups, next.config, next.specs, ['admin']).groups).toEqual([{ name: 'admin', reloadable: true, action: 'roll', changes: {} }]);
  });

  it('a group without a resolved spec, or already being removed, is left out', () => {
    const w = new World(makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'old' })]), { autoReady: true });
    const next = makeConfig([groupConfig({ name: 'web' }), groupConfig({ name: 'api' })]);
    delete next.specs.api;
    const groups = w.state.groups.map((g) => (g.name === 'old' ? { ...g, removing: true } : g));
    expect(previewReload(groups, next.config, next.specs, null).groups).toEqual([{ name: 'web', reloadable: true, action: 'roll', changes: {} }]);
  });
});

describe('reload --dry-run: the diff smoothctl prints', () => {
  it('prints every change of a rolled group, one per line', () => {
    const p: ReloadPreview = {
      dryRun: true,
      groups: [
        {
          name: 'web',
          reloadable: true,
          action: 'roll',
          changes: {
            command: { from: ['node', 'a.js'], to: ['node', 'b.js'] },
            cwd: { from: '/r/1', to: '/r/2' },
            revision: { from: null, to: 'abc' },
            env: { added: ['C'], changed: ['B'], removed: ['A'] },
            count: { from: 1, to: 3 },
            listen: { from: [], to: ['127.0.0.1:1', '127.0.0.1:2'] },
          },
        },
      ],
    };
    expect(formatPreview(p)).toBe(
      [
        'web: rolled',
        '  command: node a.js -> node b.js',
        '  cwd: /r/1 -> /r/2',
        '  revision: (none) -> abc',
        '  env: +C ~B -A',
        '  count: 1 -> 3',
        '  listen: (none) -> 127.0.0.1:1, 127.0.0.1:2',
        '',
      ].join('\n'),
    );
  });

  it('names a revision and a listen list that go away', () => {
    const p: ReloadPreview = {
      dryRun: true,
      groups: [{ name: 'web', reloadable: true, action: 'roll', changes: { revision: { from: 'abc', to: null }, listen: { from: ['127.0.0.1:1'], to: [] } } }],
    };
    expect(formatPreview(p)).toBe('web: rolled\n  revision: abc -> (none)\n  listen: 127.0.0.1:1 -> (none)\n');
  });

  it('says when a rolled group has no change, and what skip, add and remove mean', () => {
    const p: ReloadPreview = {
      dryRun: true,
      groups: [
        { name: 'web', reloadable: true, action: 'roll', changes: {} },
        { name: 'admin', reloadable: false, action: 'skip', changes: {} },
        { name: 'cron', reloadable: false, action: 'skip', changes: { count: { from: 1, to: 2 } } },
        { name: 'api', reloadable: true, action: 'add', changes: {} },
        { name: 'old', reloadable: true, action: 'remove', changes: {} },
      ],
    };
    expect(formatPreview(p)).toBe(
      [
        'web: rolled (same config; the code on disk is started fresh)',
        'admin: not reloadable, skipped',
        'cron: not reloadable, skipped (changes wait for smoothctl restart)',
        '  count: 1 -> 2',
        'api: new group, started by the reload',
        'old: gone from the config, drained once the reload succeeds',
        '',
      ].join('\n'),
    );
  });
});
