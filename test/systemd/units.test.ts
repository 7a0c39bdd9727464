/**
 * The shipped units: the settings DESIGN §7 requires, every setting commented,
 * and `systemd-analyze verify` clean on both (run in a scratch root that has
 * the unit's binaries, since verify checks ExecStart=/ExecReload= exist).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../integration/harness.js';

const SERVICE = path.join(ROOT, 'systemd/smoothd.service');
const SOCKET = path.join(ROOT, 'systemd/smoothd.socket');

function settings(file: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

describe('systemd/smoothd.service', () => {
  const s = settings(SERVICE);
  it('has the settings of the contract', () => {
    expect(s.get('Type')).toEqual(['notify']);
    expect(s.get('NotifyAccess')).toEqual(['main']);
    expect(s.get('ExecStart')).toEqual(['/usr/bin/smoothd --config /etc/smoothd/smoothd.yaml']);
    expect(s.get('ExecReload')).toEqual(['/usr/bin/smoothctl reload']);
    expect(s.get('KillMode')).toEqual(['mixed']);
    expect(s.get('Restart')).toEqual(['on-failure']);
    expect(s.get('RestartPreventExitStatus')).toEqual(['78']);
    expect(s.get('RuntimeDirectory')).toEqual(['smoothd']);
    expect(s.get('CacheDirectory')).toEqual(['smoothd']);
    expect(s.get('WatchdogSec')).toHaveLength(1);
    expect(s.get('SyslogIdentifier')).toEqual(['smoothd']);
    // TimeoutStopSec above the default stopTimeout (30 s); TimeoutStartSec (which bounds ExecReload) well above a roll.
    expect(seconds(s.get('TimeoutStopSec')![0]!)).toBeGreaterThan(30);
    expect(seconds(s.get('TimeoutStartSec')![0]!)).toBeGreaterThanOrEqual(300);
  });

  it('leaves the allocator setting opt-in: workers would inherit MALLOC_TRIM_THRESHOLD_', () => {
    const text = fs.readFileSync(SERVICE, 'utf8');
    expect(text).toMatch(/^#Environment=MALLOC_TRIM_THRESHOLD_=131072$/m);
    expect((s.get('Environment') ?? []).filter((v) => v.includes('MALLOC_'))).toEqual([]);
  });

  it('comments every setting', () => {
    for (const file of [SERVICE, SOCKET]) {
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!/^[A-Za-z]+=/.test(line)) return;
        // The setting is explained by the comment block above it (consecutive settings may share one).
        let j = i - 1;
        while (j >= 0 && /^[A-Za-z]+=/.test(lines[j]!)) j--;
        expect(lines[j]?.startsWith('#'), `${path.basename(file)}:${i + 1} ${line} has no comment above it`).toBe(true);
      });
    }
  });
});

describe('the README table of smoothd.service', () => {
  // README "Running under systemd": one row per setting, `Key=value` or a bare `Key` (= yes).
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Running under systemd'));
  const rows = section
    .slice(section.indexOf('| setting | why |'))
    .split('\n')
    .slice(2)
    .filter((l, i, all) => l.startsWith('|') && all.slice(0, i).every((x) => x.startsWith('|')));
  const s = settings(SERVICE);
  const promised: Array<[string, string]> = [];
  for (const row of rows) {
    const [, first = ''] = row.split('|');
    for (const [, token] of first.matchAll(/`([^`]+)`/g)) {
      const m = /^([A-Za-z]+)(?:=(.*))?$/.exec(token!);
      if (m) promised.push([m[1]!, m[2] ?? 'yes']);
    }
    const mode = /`RuntimeDirectory=[^`]*` \(mode (\d+)\)/.exec(first);
    if (mode) promised.push(['RuntimeDirectoryMode', mode[1]!]);
  }

  it('lists the settings it documents (the table was found)', () => {
    expect(promised.map(([k]) => k)).toEqual(expect.arrayContaining(['Type', 'OOMPolicy', 'LimitNOFILE', 'RuntimeDirectoryMode', 'WatchdogSec', 'LockPersonality']));
  });

  it('every setting the table promises is in the unit with that value', () => {
    const wrong = promised.filter(([k, v]) => JSON.stringify(s.get(k)) !== JSON.stringify([v])).map(([k, v]) => `${k}: README says ${v}, unit has ${JSON.stringify(s.get(k) ?? null)}`);
    expect(wrong).toEqual([]);
  });

  it('every setting of the unit is in the table', () => {
    const documented = new Set(promised.map(([k]) => k));
    const undocumented = [...s.keys()].filter((k) => !documented.has(k) && !['Description', 'After', 'WantedBy'].includes(k));
    expect(undocumented).toEqual([]);
  });

  it('the settings the table says are left out on purpose are not set', () => {
    const out = /Not set, on purpose: (.*)$/m.exec(rows.join('\n'))?.[1] ?? '';
    const names = [...out.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]!);
    expect(names).toEqual(expect.arrayContaining(['PrivateTmp', 'ProtectHome', 'NoNewPrivileges', 'MemoryDenyWriteExecute', 'RestrictNamespaces']));
    for (const n of names) expect(s.has(n), `${n} is set in the unit`).toBe(false);
  });
});

describe('systemd/smoothd.socket', () => {
  it('names its socket for `listen: ["systemd:http"]` and activates smoothd.service', () => {
    const s = settings(SOCKET);
    expect(s.get('FileDescriptorName')).toEqual(['http']);
    expect(s.get('Service')).toEqual(['smoothd.service']);
    expect(s.get('ListenStream')?.length).toBeGreaterThan(0);
    expect(fs.readFileSync(SOCKET, 'utf8')).not.toMatch(/^PartOf=/m);
  });
});

const analyze = which('systemd-analyze');
const unitDir = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) => fs.existsSync(path.join(d, 'sysinit.target')));
const skipReason = !analyze ? 'systemd-analyze is not installed (apt-get install systemd)' : !unitDir ? 'no systemd unit folder with sysinit.target on this machine' : null;
if (skipReason) console.warn(`skipping systemd-analyze verify: ${skipReason}`);

describe.skipIf(skipReason !== null)('systemd-analyze verify', () => {
  /** A scratch root with the system's units, stub /usr/bin/smoothd and smoothctl, and the given units. */
  function verify(units: Record<string, string>): { status: number | null; output: string } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-verify-'));
    try {
      fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
      fs.mkdirSync(path.join(root, 'usr/lib/systemd'), { recursive: true });
      fs.mkdirSync(path.join(root, 'etc/systemd/system'), { recursive: true });
      fs.cpSync(unitDir!, path.join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
      for (const bin of ['smoothd', 'smoothctl']) fs.writeFileSync(path.join(root, 'usr/bin', bin), '#!/bin/sh\n', { mode: 0o755 });
      for (const [name, text] of Object.entries(units)) fs.writeFileSync(path.join(root, 'etc/systemd/system', name), text);
      const r = spawnSync(analyze!, ['verify', `--root=${root}`, '--man=no', ...Object.keys(units)], { encoding: 'utf8' });
      return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }

  it('passes on both units, without a single warning', () => {
    const r = verify({ 'smoothd.service': fs.readFileSync(SERVICE, 'utf8'), 'smoothd.socket': fs.readFileSync(SOCKET, 'utf8') });
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('would catch a broken unit (the check can fail)', () => {
    const broken = fs.readFileSync(SERVICE, 'utf8').replace('Type=notify', 'Type=notify-reload-ish');
    const r = verify({ 'smoothd.service': broken });
    expect(r.output).toMatch(/Failed to parse service type/);
  });

  it('reports the systemd version it checked against', () => {
    const v = execFileSync(analyze!, ['--version'], { encoding: 'utf8' }).split('\n')[0];
    expect(v).toMatch(/^systemd \d+/);
  });
});

function seconds(v: string): number {
  const m = /^(\d+)\s*(min|s|h)?$/.exec(v.trim());
  if (!m) throw new Error(`cannot read duration ${v}`);
  const n = Number(m[1]);
  return m[2] === 'min' ? n * 60 : m[2] === 'h' ? n * 3600 : n;
}
