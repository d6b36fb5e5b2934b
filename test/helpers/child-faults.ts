// Setup file of every test file (vitest.config.ts): a test fails when a process it spawned logged
// a fatal line (an unhandled rejection, say) or crashed, whether or not the test looked.
import { afterAll, afterEach } from 'vitest';
import { takeChildFaults } from './processes.ts';

const check = () => {
  const faults = takeChildFaults();
  if (faults.length) throw new Error(`a spawned Sandgate process failed:\n${faults.join('\n')}`);
};
afterEach(check);
// Registered first, so it runs after the file's own afterAll hooks: teardown faults count too.
afterAll(check);
