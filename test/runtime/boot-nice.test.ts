import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mayLowerTo, niceOfStat } from '../../src/runtime/boot-nice.js';

const made: string[] = [];
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A fake /proc/self with the given CapEff and "Max nice priority" soft limit. */
function procSelf(capEff: string, maxNice: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-boot-nice-'));
  made.push(dir);
  fs.writeFileSync(path.join(dir, 'status'), `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`);
  fs.writeFileSync(
    path.join(dir, 'limits'),
    'Limit                     Soft Limit           Hard Limit           Units     \n' +
      `Max nice priority         ${maxNice}                    ${maxNice}                    \n`,
  );
  return dir;
}

describe('mayLowerTo: whether smoothd can give a booting worker its priority back', () => {
  it('yes with CAP_SYS_NICE (root), whatever the limit', () => {
    expect(mayLowerTo(0, procSelf('000001ffffffffff', '0'))).toBe(true);
    expect(mayLowerTo(0, procSelf('0000000000800000', '0'))).toBe(true); // only bit 23
  });

  it('without the capability only as far as RLIMIT_NICE allows (nice >= 20 - limit)', () => {
    expect(mayLowerTo(0, procSelf('0000000000000000', '0'))).toBe(false);
    expect(mayLowerTo(0, procSelf('0000000000000000', '20'))).toBe(true);
    expect(mayLowerTo(5, procSelf('0000000000000000', '15'))).toBe(true);
    expect(mayLowerTo(4, procSelf('0000000000000000', '15'))).toBe(false);
    expect(mayLowerTo(0, procSelf('0000000000000000', 'unlimited'))).toBe(true);
  });

  it('no when /proc cannot tell', () => {
    expect(mayLowerTo(0, path.join(os.tmpdir(), 'smoothd-no-such-proc'))).toBe(false);
  });
});

describe('niceOfStat', () => {
  it('reads field 19, also when the command name holds spaces and parentheses', () => {
    const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 1 0 0 30 10 11 0 1000 100000 2000';
    expect(niceOfStat(stat)).toBe(10);
    expect(niceOfStat('garbage')).toBeNull();
  });
});
