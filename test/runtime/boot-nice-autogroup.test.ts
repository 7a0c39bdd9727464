/**
 * bootNice and scheduler autogroups (boot-nice.ts): a worker that is a
 * session of its own gets its autogroup lowered only by an smoothd that may
 * change autogroups without the kernel's rate limit; otherwise the autogroup
 * is left alone with one warning per group. A worker in smoothd's own session
 * (same autogroup) is never touched through its autogroup.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BootPriority, autogroupOf, autogroupsEnabled } from '../../src/runtime/boot-nice.js';
import { logger, sleeper } from './boot-nice-fixture.js';

const enabled = autogroupsEnabled();
if (!enabled) console.log('boot-nice-autogroup: skipped (kernel.sched_autogroup_enabled is not 1 here)');

describe.skipIf(!enabled)('bootNice with autogroups on', () => {
  it('an smoothd without CAP_SYS_ADMIN leaves a worker session\'s autogroup alone and warns once per group', () => {
    const { log, lines } = logger();
    const bp = new BootPriority(log, { mayLowerTo: () => true, mayChangeAutogroups: () => false });
    const a = sleeper(true);
    const b = sleeper(true);
    bp.lower(1, a, 'web', 10);
    bp.lower(2, b, 'web', 10);
    expect(autogroupOf(a)!.nice).toBe(0);
    expect(autogroupOf(b)!.nice).toBe(0);
    const warnings = lines.filter((l) => String(l.msg).startsWith('bootNice has little effect here'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ group: 'web', bootNice: 10 });
    expect(String(warnings[0]!.msg)).toContain('kernel.sched_autogroup_enabled=0');
  });

  it("a worker in smoothd's own session is not changed through the autogroup they share, and nothing is said", () => {
    const { log, lines } = logger();
    // null when this process is in the kernel's default autogroup (init's session, as under a CI runner or in a container).
    const own = autogroupOf('self');
    const bp = new BootPriority(log, { mayLowerTo: () => true, mayChangeAutogroups: () => true });
    const pid = sleeper(false);
    expect(autogroupOf(pid)?.name).toBe(own?.name);
    bp.lower(1, pid, 'web', 10);
    expect(autogroupOf('self')?.nice).toBe(own?.nice);
    expect(lines.filter((l) => String(l.msg).startsWith('bootNice has little effect'))).toHaveLength(0);
    bp.restore(1);
    expect(autogroupOf('self')?.nice).toBe(own?.nice);
  });
});

// The kernel's default autogroup (init's session and every process that never
// called setsid, e.g. smoothd as a container's PID 1 or under a CI runner)
// reads as an empty /proc/PID/autogroup and cannot be changed; a worker, a
// session of its own, still has an autogroup to lower. Shown with a /proc of
// files, so it holds whatever session this test runs in.
describe('bootNice when smoothd is in the default autogroup', () => {
  it("lowers the worker session's autogroup, and leaves a worker in the default one alone", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-proc-'));
    try {
      const put = (rel: string, text: string): void => {
        fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
        fs.writeFileSync(path.join(root, rel), text);
      };
      const own = sleeper(true);
      const inDefault = sleeper(true);
      put('sys/kernel/sched_autogroup_enabled', '1\n');
      put('self/autogroup', '');
      put(`${own}/autogroup`, '/autogroup-7 nice 0\n');
      put(`${own}/task/${own}/stat`, '');
      put(`${inDefault}/autogroup`, '');
      put(`${inDefault}/task/${inDefault}/stat`, '');
      const { log, lines } = logger();
      const bp = new BootPriority(log, { mayLowerTo: () => true, mayChangeAutogroups: () => true, procRoot: root });
      bp.lower(1, own, 'web', 10);
      bp.lower(2, inDefault, 'web', 10);
      expect(fs.readFileSync(path.join(root, `${own}/autogroup`), 'utf8')).toBe('10');
      expect(fs.readFileSync(path.join(root, `${inDefault}/autogroup`), 'utf8')).toBe('');
      expect(lines.filter((l) => l.level === 40)).toHaveLength(0);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
