// Ends the run with one plain "N passed, N failed, N skipped" line that any CI log reader can parse.
import type { Reporter, SerializedError, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError> = []): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const mod of testModules) {
      const tests = [...mod.children.allTests()];
      // A file can fail outside its tests (an import, a hook): count it as a failure too.
      if (mod.state() === 'failed' && !tests.some((t) => t.result().state === 'failed')) counts.failed++;
      for (const test of tests) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
    }
    // An unhandled rejection or exception is a bug even when every test passed: each one counts
    // as a failure (vitest exits non-zero on them too).
    counts.failed += unhandledErrors.length;
    const note = unhandledErrors.length
      ? ` (${unhandledErrors.length} unhandled error${unhandledErrors.length > 1 ? 's' : ''})`
      : '';
    process.stdout.write(
      `\nvitest: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped${note}\n`,
    );
  }
}
