import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker runs against each mutant (npm run test:mutation): the pure
 * supervisor and the control socket's framing. They need no dist/, so no
 * global build step; everything else of vitest.config.ts applies.
 */
export default defineConfig({
  test: {
    include: ['test/supervisor/**/*.test.ts', 'test/control/framing.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
});
