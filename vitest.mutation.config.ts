import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker runs against each mutant (npm run test:mutation): the pure
 * supervisor and the control socket's framing. They need no dist/, so no
 * global build step. The property tests run 40 sequences per mutant instead
 * of 450 (SUPERVISOR_PROP_RUNS overrides it), so that a run takes minutes: a
 * mutant only they would kill may survive, so the score is on the safe side.
 * A failing property is not shrunk (SUPERVISOR_PROP_NOSHRINK=1): the first
 * failing sequence kills the mutant.
 */
export default defineConfig({
  test: {
    include: ['test/supervisor/**/*.test.ts', 'test/control/framing.test.ts', 'test/control/framing-edges.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    env: {
      SUPERVISOR_PROP_RUNS: process.env.SUPERVISOR_PROP_RUNS ?? '40',
      // A mutant is killed by the first failing sequence: shrinking it would only cost time (and end in a timeout).
      SUPERVISOR_PROP_NOSHRINK: process.env.SUPERVISOR_PROP_NOSHRINK ?? '1',
    },
  },
});
