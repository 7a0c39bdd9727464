import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real-process tests run dist/: rebuild it first when src/ is newer.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start real daemons and load generators; on a 2-core
    // machine running them all at once skews timings, so files run one by one.
    fileParallelism: false,
  },
});
