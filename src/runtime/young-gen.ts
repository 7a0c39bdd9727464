/**
 * smoothd's V8 young generation, held at its initial size (issue 15 item 6).
 *
 * V8 doubles the young generation's two semi-spaces under allocation pressure
 * (from 1 MiB each up to 16 MiB on Node 20/22, 32 MiB on Node 24), and a
 * reload allocates a lot: with V8's default the daemon's private memory climbs
 * from ~17 MB to a plateau of ~63 MB over the first ~100-300 reloads of 16
 * workers, ~28 MB of it new space. Held at 1 MiB the plateau is ~36 MB and a
 * reload costs no more CPU (README "Measured numbers",
 * `node bench/semi-space-ab.mjs`).
 *
 * The carrier: `v8.setFlagsFromString('--semi-space-growth-factor=1')` before
 * the daemon's modules load (bin/smoothd.js), so it holds for every way smoothd
 * is started (`npm start`, the package's `smoothd` bin, the systemd unit, a
 * container's entrypoint) and nothing reaches the workers: no NODE_OPTIONS,
 * no argument, no variable. V8 reads the growth factor each time it would grow
 * the semi-spaces, so the flag takes effect in the running isolate; measured on
 * Node 20.20, 22.23 and 24.22 (new_space's space_size after 2e6 allocations
 * with 50 000 kept alive: 2.00 MiB with the flag set at run time, as with
 * `node --max-semi-space-size=1`, against 32 MiB, 32 MiB and 64 MiB without).
 * `--max-semi-space-size=N` set the same way does NOT take effect on any of
 * them (still 32 / 32 / 64 MiB): V8 reads it once, when the heap is set up, so
 * it works only as a node flag (`node --max-semi-space-size=N`, NODE_OPTIONS).
 * test/runtime/young-gen.test.ts checks both the cap in a daemon started
 * through bin/smoothd.js and that its worker's young generation still grows.
 *
 * The operator's word wins: `SMOOTHD_YOUNG_GENERATION=grow` in smoothd's
 * environment leaves V8's default, and so does any young-generation flag of
 * its own given to node (`node --max-semi-space-size=8 /usr/bin/smoothd`,
 * or in NODE_OPTIONS, which workers would inherit).
 */
import { setFlagsFromString } from 'node:v8';

/** The flag smoothd sets in its own isolate. */
export const PIN_FLAG = '--semi-space-growth-factor=1';
/** The variable an operator sets to `grow` to keep V8's default young generation. */
export const YOUNG_GENERATION_ENV = 'SMOOTHD_YOUNG_GENERATION';

// V8 takes '-' and '_' alike in a flag's name.
const YOUNG_FLAG = /^--?(?:max[-_]semi[-_]space[-_]size|min[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)(?:=|$)/;

/** Pinned, left to V8 (and why), or a value of the variable smoothd does not know (the message to print; smoothd exits 78). */
export type YoungGenerationChoice = { pin: true } | { pin: false; why: string } | { pin: false; error: string };

/** Whether smoothd pins its young generation, given node's own arguments and smoothd's environment (pure). */
export function youngGenerationChoice(execArgv: readonly string[], env: NodeJS.ProcessEnv): YoungGenerationChoice {
  const mode = env[YOUNG_GENERATION_ENV];
  if (mode === 'grow') return { pin: false, why: `${YOUNG_GENERATION_ENV}=grow` };
  if (mode !== undefined && mode !== '' && mode !== 'pin') {
    return {
      pin: false,
      error:
        `${YOUNG_GENERATION_ENV} is ${JSON.stringify(mode)} in smoothd's environment; allowed: grow (V8's default young generation) ` +
        'or pin (held at its initial size, the default when unset). Fix or unset it (systemd: systemctl edit smoothd), then start smoothd again.',
    };
  }
  const nodeOptions = (env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  const own = [...execArgv, ...nodeOptions].find((a) => YOUNG_FLAG.test(a));
  if (own !== undefined) return { pin: false, why: `node was given ${own}` };
  return { pin: true };
}

/** Applies youngGenerationChoice to this process; call before the daemon's modules load. */
export function pinYoungGeneration(execArgv: readonly string[] = process.execArgv, env: NodeJS.ProcessEnv = process.env): YoungGenerationChoice {
  const choice = youngGenerationChoice(execArgv, env);
  if (choice.pin) setFlagsFromString(PIN_FLAG);
  return choice;
}
