/**
 * Progress of `smoothctl reload` / `restart` on stderr (DESIGN §2): a live bar
 * redrawn in place on a TTY, one line per step otherwise.
 *
 * The bar is hand-written (no dependency, nothing to load on the fast path):
 * - `applyProgress` folds one `reload.progress` notification into a plain
 *   state and says whether the step deserves a permanent line above the bar
 *   (a group rolled, skipped or failed);
 * - `renderFrame` turns that state, the time and the terminal width into one
 *   line of text — pure, so tests compare frames;
 * - `TtyProgress` draws: `\r` + frame + `ESC[K` (erase to end of line), a
 *   redraw every 100 ms for the elapsed time, and `\r ESC[K` at the end so the
 *   summary line that follows starts on a clean line. A frame never exceeds
 *   the terminal width minus one column, so it never wraps (a wrapped line
 *   cannot be redrawn with `\r`). The cursor is left visible: a Ctrl-C never
 *   leaves a terminal without one.
 *
 * No imports: smoothctl loads this on its fast path.
 */

/** What the bar knows. */
export interface BarState {
  verb: string;
  /** Reload id once a notification named it. */
  id: number | null;
  /** Group of the latest group-specific step. */
  group: string | null;
  done: number;
  total: number;
  /** The latest step, without its group prefix. */
  step: string;
  /** When smoothctl sent the request (ms, the clock renderFrame gets). */
  startedAt: number;
  /** A canary baking (from `bake.started`, which carries its length): the bar counts it down. */
  bake: { group: string; ms: number; since: number } | null;
}

export function initialBar(verb: string, startedAt: number): BarState {
  return { verb, id: null, group: null, done: 0, total: 0, step: 'waiting for smoothd', startedAt, bake: null };
}

interface Note {
  id?: unknown;
  group?: unknown;
  event?: unknown;
  message?: unknown;
  done?: unknown;
  total?: unknown;
  bakeMs?: unknown;
}

/** The message without a leading "GROUP: " (some steps repeat the group in their text). */
export function stripGroup(message: string, group: string | null): string {
  return group !== null && message.startsWith(`${group}: `) ? message.slice(group.length + 2) : message;
}

/** Steps worth a line of their own, kept above the bar. */
const PERMANENT = new Set(['group.rolled', 'group.skipped', 'worker.failed', 'queued', 'bake.passed', 'verify.failed', 'watch.passed', 'rollback.started', 'rollback.done']);

/**
 * One line for a step: "web: worker 7 (pid 1234) ready [2/4]". The line
 * format of non-TTY progress, and of the permanent lines above the bar.
 */
export function formatProgress(params: unknown): string {
  if (typeof params !== 'object' || params === null) return JSON.stringify(params);
  const p = params as Note;
  if (typeof p.message !== 'string') return JSON.stringify(params);
  const group = typeof p.group === 'string' && p.group !== '' ? p.group : null;
  const prefix = group !== null ? `${group}: ` : '';
  const count = typeof p.done === 'number' && typeof p.total === 'number' && p.total > 0 ? ` [${p.done}/${p.total}]` : '';
  return `${prefix}${stripGroup(p.message, group)}${count}`;
}

/** Steps after which no canary bakes any more (the bake passed or the roll failed or moved on). */
const BAKE_OVER = new Set(['bake.passed', 'verify.failed', 'worker.failed', 'group.rolled', 'group.started', 'rollback.started', 'rollback.done']);

/**
 * Fold one notification into the state; `line` is set when the step gets a
 * permanent line. `now` (the clock renderFrame gets) starts a bake countdown.
 */
export function applyProgress(state: BarState, params: unknown, now = state.startedAt): { state: BarState; line: string | null } {
  if (typeof params !== 'object' || params === null) return { state, line: null };
  const p = params as Note;
  const next: BarState = { ...state };
  if (typeof p.id === 'number' && p.id > 0) next.id = p.id;
  const group = typeof p.group === 'string' && p.group !== '' ? p.group : null;
  if (group !== null) {
    next.group = group;
    if (typeof p.done === 'number' && typeof p.total === 'number') {
      next.done = p.done;
      next.total = p.total;
    }
  }
  if (typeof p.message === 'string') next.step = stripGroup(p.message, group);
  if (p.event === 'bake.started' && group !== null && typeof p.bakeMs === 'number' && p.bakeMs > 0) next.bake = { group, ms: p.bakeMs, since: now };
  else if (typeof p.event === 'string' && BAKE_OVER.has(p.event)) next.bake = null;
  const line = typeof p.event === 'string' && PERMANENT.has(p.event) ? formatProgress(params) : null;
  return { state: next, line };
}

export function formatElapsed(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
}

export interface FrameOptions {
  /** Terminal width in columns; a frame is at most columns - 1 long. */
  columns: number;
  /** Draw the bar with block characters (UTF-8 terminals) or with # and -. */
  unicode: boolean;
}

function truncate(text: string, max: number, unicode: boolean): string {
  if (max <= 0) return '';
  if (text.length <= max) return text;
  const ellipsis = unicode ? '…' : '...';
  if (max <= ellipsis.length) return text.slice(0, max);
  return text.slice(0, max - ellipsis.length) + ellipsis;
}

/** The bake countdown: `canary 3 s of 10 s` (whole seconds, like smoothd's STATUS=). */
export function bakeText(bake: { ms: number; since: number }, now: number): string {
  const elapsed = Math.min(bake.ms, Math.max(0, now - bake.since));
  return `canary ${Math.floor(elapsed / 1000)} s of ${Math.max(1, Math.round(bake.ms / 1000))} s`;
}

/**
 * One frame: `reload 3 web [██████░░░░░░] 2/4 1.2s worker 7 (pid 1234) ready`;
 * while a canary bakes the step is its countdown: `... 1/4 5.0s canary 3 s of 10 s`.
 * Pure. The step is cut first when the terminal is narrow, then the bar
 * shrinks, then the whole line is cut.
 */
export function renderFrame(state: BarState, now: number, opts: FrameOptions): string {
  const columns = Number.isFinite(opts.columns) && opts.columns > 0 ? Math.floor(opts.columns) : 80;
  const max = Math.max(1, columns - 1);
  const head = state.id !== null ? `${state.verb} ${state.id}` : state.verb;
  const elapsed = formatElapsed(now - state.startedAt);
  const count = state.total > 0 ? `${Math.min(state.done, state.total)}/${state.total}` : '';
  const ratio = state.total > 0 ? Math.min(1, Math.max(0, state.done / state.total)) : 0;
  const [full, empty] = opts.unicode ? ['█', '░'] : ['#', '-'];
  const parts = (barWidth: number): string[] => {
    const out = [head];
    const group = state.bake?.group ?? state.group;
    if (group !== null) out.push(group);
    if (barWidth > 0 && state.total > 0) {
      const filled = Math.round(ratio * barWidth);
      out.push(`[${full.repeat(filled)}${empty.repeat(barWidth - filled)}]`);
    }
    if (count !== '') out.push(count);
    out.push(elapsed);
    return out;
  };
  // The widest bar (up to 20) that leaves room for at least 20 columns of step text.
  let barWidth = 20;
  while (barWidth > 0 && parts(barWidth).join(' ').length + 1 + 20 > max) barWidth -= 4;
  const fixed = parts(Math.max(0, barWidth)).join(' ');
  if (fixed.length >= max) return truncate(fixed, max, opts.unicode);
  const room = max - fixed.length - 1;
  const step = state.bake !== null ? bakeText(state.bake, now) : state.step;
  return room > 0 && step !== '' ? `${fixed} ${truncate(step, room, opts.unicode)}` : fixed;
}

export const ERASE_LINE = '\x1b[K';

export interface ProgressSink {
  /** A `reload.progress` notification arrived. */
  update(params: unknown): void;
  /** The call ended: leave the terminal ready for the summary. Idempotent. */
  finish(): void;
}

/** One line per step (stderr is not a terminal). */
export class LineProgress implements ProgressSink {
  constructor(private readonly out: { write(s: string): unknown }) {}
  update(params: unknown): void {
    this.out.write(formatProgress(params) + '\n');
  }
  finish(): void {}
}

export interface TtyProgressOptions {
  verb: string;
  now: () => number;
  /** Current width (read at every frame: the terminal may be resized). */
  columns: () => number;
  unicode: boolean;
  /** Redraw period for the elapsed time; default 100 ms. */
  intervalMs?: number;
}

/** The live bar, redrawn in place. */
export class TtyProgress implements ProgressSink {
  private state: BarState;
  private timer: NodeJS.Timeout | null = null;
  private last = '';
  private done = false;

  constructor(
    private readonly out: { write(s: string): unknown },
    private readonly opts: TtyProgressOptions,
  ) {
    this.state = initialBar(opts.verb, opts.now());
    this.draw();
    this.timer = setInterval(() => this.draw(), opts.intervalMs ?? 100);
    this.timer.unref();
  }

  update(params: unknown): void {
    if (this.done) return;
    const { state, line } = applyProgress(this.state, params, this.opts.now());
    this.state = state;
    if (line !== null) {
      this.out.write(`\r${ERASE_LINE}${line}\n`);
      this.last = '';
    }
    this.draw();
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.out.write(`\r${ERASE_LINE}`);
  }

  private draw(): void {
    if (this.done) return;
    const frame = renderFrame(this.state, this.opts.now(), { columns: this.opts.columns(), unicode: this.opts.unicode });
    if (frame === this.last) return;
    this.last = frame;
    this.out.write(`\r${frame}${ERASE_LINE}`);
  }
}

/** Does the environment say the terminal takes UTF-8? */
export function wantsUnicode(env: NodeJS.ProcessEnv): boolean {
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return /utf-?8/i.test(locale);
}

/** A live bar when `out` is a terminal (and TERM is not "dumb"), one line per step otherwise. */
export function progressFor(
  out: { write(s: string): unknown; isTTY?: boolean; columns?: number },
  opts: { verb: string; env: NodeJS.ProcessEnv; now: () => number },
): ProgressSink {
  if (out.isTTY !== true || opts.env.TERM === 'dumb') return new LineProgress(out);
  return new TtyProgress(out, {
    verb: opts.verb,
    now: opts.now,
    columns: () => out.columns ?? 80,
    unicode: wantsUnicode(opts.env),
  });
}
