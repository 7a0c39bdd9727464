import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  applyProgress,
  bakeText,
  formatElapsed,
  formatProgress,
  initialBar,
  progressFor,
  renderFrame,
  LineProgress,
  TtyProgress,
  type BarState,
} from '../../src/cli/progress.js';

/** The notifications of a real 2-worker reload with a skipped group (as smoothd sends them). */
const note = (event: string, group: string | null, message: string, done: number, total: number) => ({
  id: 4,
  event,
  group,
  message,
  done,
  total,
  workerId: null,
  pid: null,
});
const ROLL = [
  note('loading', null, 'reading the config file', 0, 0),
  note('group.skipped', 'gw', 'gw: not reloadable, skipped', 0, 0),
  note('group.started', 'web', 'web: rolling to generation 3', 0, 2),
  note('worker.started', 'web', 'worker 6 (pid 1301) started', 0, 2),
  note('worker.ready', 'web', 'worker 6 (pid 1301) ready', 1, 2),
  note('worker.stopping', 'web', 'old worker 4 (pid 1244) draining', 1, 2),
  note('worker.ready', 'web', 'worker 7 (pid 1323) ready', 2, 2),
  note('group.rolled', 'web', 'web: 2/2 workers replaced', 2, 2),
];

/** Frames for the notifications, one per step, 0.5 s apart. */
function frames(columns: number, unicode = false): string[] {
  let s: BarState = initialBar('reload', 0);
  const out = [renderFrame(s, 0, { columns, unicode })];
  ROLL.forEach((n, i) => {
    s = applyProgress(s, n).state;
    out.push(renderFrame(s, (i + 1) * 500, { columns, unicode }));
  });
  return out;
}

describe('renderFrame (pure)', () => {
  it('shows reload id, group, bar, done/total, elapsed and the current step', () => {
    expect(frames(100)).toEqual([
      'reload 0.0s waiting for smoothd',
      'reload 4 0.5s reading the config file',
      'reload 4 gw 1.0s not reloadable, skipped',
      'reload 4 web [--------------------] 0/2 1.5s rolling to generation 3',
      'reload 4 web [--------------------] 0/2 2.0s worker 6 (pid 1301) started',
      'reload 4 web [##########----------] 1/2 2.5s worker 6 (pid 1301) ready',
      'reload 4 web [##########----------] 1/2 3.0s old worker 4 (pid 1244) draining',
      'reload 4 web [####################] 2/2 3.5s worker 7 (pid 1323) ready',
      'reload 4 web [####################] 2/2 4.0s 2/2 workers replaced',
    ]);
  });

  it('uses block characters on a UTF-8 terminal', () => {
    expect(frames(100, true)[5]).toBe('reload 4 web [██████████░░░░░░░░░░] 1/2 2.5s worker 6 (pid 1301) ready');
  });

  it('never reaches the last column: the step is cut first, then the bar shrinks', () => {
    for (const columns of [100, 60, 50, 40, 30, 20, 10, 2, 1]) {
      for (const f of frames(columns, true)) expect(f.length).toBeLessThanOrEqual(Math.max(1, columns - 1));
    }
    expect(frames(60)[6]).toBe('reload 4 web [######------] 1/2 3.0s old worker 4 (pid 1...');
    expect(frames(50)[6]).toBe('reload 4 web [##--] 1/2 3.0s old worker 4 (pid...');
    expect(frames(40)[6]).toBe('reload 4 web 1/2 3.0s old worker 4 (...');
    expect(frames(20)[6]).toBe('reload 4 web 1/2...');
  });

  it('treats a missing or zero width as 80 columns', () => {
    const s = applyProgress(initialBar('restart', 0), note('worker.started', 'gw', 'x'.repeat(200), 0, 1)).state;
    expect(renderFrame(s, 0, { columns: 0, unicode: false })).toHaveLength(79);
    expect(renderFrame(s, 0, { columns: NaN, unicode: false })).toHaveLength(79);
  });

  it('formats elapsed time', () => {
    expect(formatElapsed(0)).toBe('0.0s');
    expect(formatElapsed(12_345)).toBe('12.3s');
    expect(formatElapsed(75_000)).toBe('1m15s');
    expect(formatElapsed(-5)).toBe('0.0s');
  });
});

describe('applyProgress', () => {
  it('keeps a permanent line for rolled, skipped and failed groups only', () => {
    let s = initialBar('reload', 0);
    const lines: string[] = [];
    for (const n of [...ROLL, note('worker.failed', 'api', 'worker 9 exited with code 1 before ready', 0, 1)]) {
      const r = applyProgress(s, n);
      s = r.state;
      if (r.line !== null) lines.push(r.line);
    }
    expect(lines).toEqual(['gw: not reloadable, skipped', 'web: 2/2 workers replaced [2/2]', 'api: worker 9 exited with code 1 before ready [0/1]']);
  });

  it('ignores what is not a notification object', () => {
    const s = initialBar('reload', 0);
    expect(applyProgress(s, null)).toEqual({ state: s, line: null });
    expect(applyProgress(s, 'x')).toEqual({ state: s, line: null });
  });
});

describe('the bake countdown (fake clock)', () => {
  const baking = (ms: number, at: number) =>
    applyProgress(initialBar('reload', 0), { ...note('bake.started', 'web', 'web: canary worker 6 (pid 1301) baking', 1, 3), bakeMs: ms }, at).state;

  it('renders "canary N s of M s" from the time bake.started arrived, capped at the bake', () => {
    const s = baking(10_000, 2000);
    expect(bakeText(s.bake!, 2000)).toBe('canary 0 s of 10 s');
    expect(renderFrame(s, 5999, { columns: 100, unicode: false })).toMatch(/ canary 3 s of 10 s$/);
    expect(renderFrame(s, 60_000, { columns: 100, unicode: false })).toMatch(/ canary 10 s of 10 s$/);
  });

  it('ends on bake.passed, verify.failed or a rollback, and ignores a bake.started without a length', () => {
    for (const end of ['bake.passed', 'verify.failed', 'worker.failed', 'rollback.started']) {
      const s = applyProgress(baking(3000, 0), note(end, 'web', 'web: over', 1, 3), 1000).state;
      expect(s.bake, end).toBeNull();
      expect(renderFrame(s, 1000, { columns: 100, unicode: false })).toMatch(/ over$/);
    }
    const still = applyProgress(baking(3000, 0), note('worker.stopped', 'web', 'old worker 2 exited', 1, 3), 500).state;
    expect(still.bake).not.toBeNull();
    const none = applyProgress(initialBar('reload', 0), note('bake.started', 'web', 'web: baking', 1, 3), 0).state;
    expect(none.bake).toBeNull();
  });
});

describe('formatProgress (one line per step)', () => {
  it('does not repeat a group the message already names', () => {
    expect(formatProgress(note('group.skipped', 'gw', 'gw: not reloadable, skipped', 0, 0))).toBe('gw: not reloadable, skipped');
    expect(formatProgress(note('worker.ready', 'web', 'worker 6 (pid 1) ready', 1, 2))).toBe('web: worker 6 (pid 1) ready [1/2]');
  });
});

describe('TtyProgress (the bytes on the terminal)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('redraws in place with CR + frame + erase-to-end, prints notable steps above the bar, and erases it at the end', () => {
    vi.useFakeTimers();
    let now = 0;
    const written: string[] = [];
    const bar = new TtyProgress({ write: (s: string) => written.push(s) }, { verb: 'reload', now: () => now, columns: () => 100, unicode: false });
    bar.update(ROLL[0]);
    bar.update(ROLL[1]);
    now = 240;
    vi.advanceTimersByTime(100); // the elapsed time ticks without a notification
    bar.update(ROLL[4]);
    bar.finish();
    bar.finish(); // idempotent
    bar.update(ROLL[5]); // ignored after finish
    vi.advanceTimersByTime(500); // no redraw after finish
    expect(written).toEqual([
      '\rreload 0.0s waiting for smoothd\x1b[K',
      '\rreload 4 0.0s reading the config file\x1b[K',
      '\r\x1b[Kgw: not reloadable, skipped\n',
      '\rreload 4 gw 0.0s not reloadable, skipped\x1b[K',
      '\rreload 4 gw 0.2s not reloadable, skipped\x1b[K',
      '\rreload 4 web [##########----------] 1/2 0.2s worker 6 (pid 1301) ready\x1b[K',
      '\r\x1b[K',
    ]);
  });

  it('counts the canary bake down from bake.started (which carries its length) until bake.passed', () => {
    vi.useFakeTimers();
    let now = 0;
    const written: string[] = [];
    const bar = new TtyProgress({ write: (s: string) => written.push(s) }, { verb: 'rollback', now: () => now, columns: () => 100, unicode: false });
    bar.update(note('worker.ready', 'web', 'worker 6 (pid 1301) ready', 1, 3));
    now = 1000;
    bar.update({ ...note('bake.started', 'web', 'web: canary worker 6 (pid 1301) baking for 10s', 1, 3), bakeMs: 10_000 });
    now = 4300;
    vi.advanceTimersByTime(100);
    now = 4400;
    vi.advanceTimersByTime(100); // same second of the bake; only the elapsed time moved
    now = 11_000;
    bar.update(note('worker.stopped', 'web', 'old worker 2 (pid 1200) exited', 1, 3)); // still baking
    now = 11_100;
    bar.update(note('bake.passed', 'web', 'web: bake passed after 10s: canary 0.0% errors', 1, 3));
    bar.finish();
    expect(written).toEqual([
      '\rrollback 0.0s waiting for smoothd\x1b[K',
      '\rrollback 4 web [#######-------------] 1/3 0.0s worker 6 (pid 1301) ready\x1b[K',
      '\rrollback 4 web [#######-------------] 1/3 1.0s canary 0 s of 10 s\x1b[K',
      '\rrollback 4 web [#######-------------] 1/3 4.3s canary 3 s of 10 s\x1b[K',
      '\rrollback 4 web [#######-------------] 1/3 4.4s canary 3 s of 10 s\x1b[K',
      '\rrollback 4 web [#######-------------] 1/3 11.0s canary 10 s of 10 s\x1b[K',
      '\r\x1b[Kweb: bake passed after 10s: canary 0.0% errors [1/3]\n',
      '\rrollback 4 web [#######-------------] 1/3 11.1s bake passed after 10s: canary 0.0% errors\x1b[K',
      '\r\x1b[K',
    ]);
  });

  it('progressFor picks the bar only for a terminal, and never for TERM=dumb', () => {
    const tty = { write: () => true, isTTY: true, columns: 120 };
    const a = progressFor(tty, { verb: 'reload', env: { LANG: 'en_US.UTF-8' }, now: () => 0 });
    expect(a).toBeInstanceOf(TtyProgress);
    a.finish();
    expect(progressFor(tty, { verb: 'reload', env: { TERM: 'dumb' }, now: () => 0 })).toBeInstanceOf(LineProgress);
    expect(progressFor({ write: () => true }, { verb: 'reload', env: {}, now: () => 0 })).toBeInstanceOf(LineProgress);
  });
});
