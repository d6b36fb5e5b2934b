import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000, // teardown closes real services; each close step is itself bounded
    pool: 'forks',
    // Two cores: timing-sensitive runs (timeouts, crashes) stay honest with few files at once.
    maxWorkers: 2,
    // A spawned service process that logs a fatal line or crashes fails the test that spawned it.
    setupFiles: ['./test/helpers/child-faults.ts'],
    // Unhandled rejections and exceptions fail the run (vitest's default, kept on purpose).
    dangerouslyIgnoreUnhandledErrors: false,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
