// The isolate thread makes its next isolates at a low CPU priority (REFILL_NICE), while user code
// runs at the process's own. Each case is a process of its own (test/fixtures/priority/), started
// under `nice -n N` where the case asks for it, which reads every thread's priority from /proc.
import { execFile } from 'node:child_process';
import { setPriority } from 'node:os';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SCRIPT = 'test/fixtures/priority/observe-isolate-priority.ts';

interface Report {
  own: number;
  first: string;
  lowDuringRefill: number[];
  lowAfter: number[];
  codeThread: { tid: number; busy: number; nice: number };
  spin: string;
  lowDuringSecondRefill: number[];
  lowAtEnd: number[];
  results: unknown[];
}

async function observe(nice: number, env: Record<string, string> = {}): Promise<Report> {
  const { stdout } = await run('nice', ['-n', String(nice), process.execPath, SCRIPT], {
    env: { ...process.env, ...env },
    timeout: 90_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Report;
}

/** Whether a thread here may raise its priority (root or CAP_SYS_NICE), probed on this very thread. */
const mayRaise = (() => {
  try {
    setPriority(-1);
    setPriority(0);
    return true;
  } catch {
    return false;
  }
})();

describe('isolate thread priority', () => {
  // 5: a service started under `nice -n 5` runs user code at 5, never above it.
  it.runIf(process.platform === 'linux' && mayRaise).each([0, 5])(
    'makes isolates at a low priority and runs user code at the process priority (%i)',
    async (own) => {
      const r = await observe(own);
      expect(r.own).toBe(own);
      expect(r.first).toBe('succeeded');
      // While the pool refills, one thread (the isolate thread) goes low; after it, none is.
      expect(r.lowDuringRefill).toHaveLength(1);
      expect(r.lowAfter).toEqual([]);
      // The thread that runs the code (the busiest over 500 ms, at 100 ticks a second; a loaded
      // machine gives it less than all of them, an idle thread none) is at the process's priority.
      expect(r.codeThread.busy).toBeGreaterThanOrEqual(5);
      expect(r.codeThread.nice).toBe(own);
      expect(r.spin).toBe('timed_out');
      // The refill after a timed-out run (one isolate: too short to be seen every time) lowers
      // no other thread, and nothing is left low (a thread started while it was low would stay low).
      expect(r.lowDuringSecondRefill.filter((tid) => !r.lowDuringRefill.includes(tid))).toEqual([]);
      expect(r.lowAtEnd).toEqual([]);
      expect(r.results).toEqual([0, 2, 4, 6, 8]);
    },
    100_000,
  );

  it.runIf(process.platform === 'linux')(
    'leaves every thread alone when turned off',
    async () => {
      const r = await observe(0, { LOW_PRIORITY_REFILL: '0' });
      expect(r.lowDuringRefill).toEqual([]);
      expect(r.lowDuringSecondRefill).toEqual([]);
      expect(r.codeThread.nice).toBe(0);
      expect(r.results).toEqual([0, 2, 4, 6, 8]);
    },
    100_000,
  );
});
