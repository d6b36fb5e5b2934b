// The isolate thread makes its next isolates at the lowest CPU priority and runs user code at the
// process's own. Read from /proc: the nice value of each thread of this (forked) test process.
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { Profile } from '../../contract/profile.ts';
import { loadProfiles } from '../../guard/profiles.ts';
import type { Engine } from '../../runner/engines/engine.ts';
import { createIsolateEngine } from '../../runner/engines/isolate/isolate-engine.ts';
import { engineJob } from '../helpers/engine-job.ts';

/** tid → nice, for every thread of this process. */
const niceByThread = (): Map<number, number> => {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the command name: state is field 3, nice is field 19.
    out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return out;
};
const lowThreads = () => [...niceByThread()].filter(([, n]) => n === 19).map(([tid]) => tid);

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

async function until<T>(read: () => T, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = read();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}

const profile = (await loadProfiles('sandbox-profiles')).get('js') as Profile;
// The profile's own memory ceiling: the run takes a warm isolate and the thread refills.
const job = (code: string, timeoutMs = 5000) => engineJob(profile, code, { ...profile.limits, timeoutMs });

let engine: Engine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

describe('isolate thread priority', () => {
  // 5: a service started under `nice -n 5` runs user code at 5, not above it.
  it.runIf(process.platform === 'linux' && mayRaise).each([0, 5])(
    'makes isolates at nice 19 and runs user code at the process priority (%i)',
    async (own) => {
      expect(lowThreads()).toEqual([]);
      // A new thread starts at its creator's priority: this thread's, for the engine's thread.
      setPriority(own);
      try {
        engine = createIsolateEngine({ threads: 1, warm: 1 });
      } finally {
        setPriority(0);
      }
      const signal = new AbortController().signal;
      expect((await engine.run(job('1 + 1'), profile, signal)).status).toBe('succeeded');
      // After the run the thread refills its pool, and stays low until the next run.
      const low = await until(lowThreads, (l) => l.length === 1);
      expect(low).toHaveLength(1);
      const [tid] = low;

      // A run that spins: while it runs, its thread is back at the process's priority.
      const spinning = engine.run(job('for (;;) {}', 700), profile, signal);
      const during = await until(
        () => niceByThread().get(tid!),
        (n) => n !== 19,
      );
      expect(during).toBe(own);
      expect((await spinning).status).toBe('timed_out');
      expect(await until(lowThreads, (l) => l.includes(tid!))).toEqual([tid]);
      // A run starts however many isolates were waiting: the priority change never fails a run.
      for (let i = 0; i < 5; i++) expect((await engine.run(job(`${i} * 2`), profile, signal)).result).toBe(i * 2);
    },
  );

  it.runIf(process.platform === 'linux')('leaves every thread alone when turned off', async () => {
    const before = lowThreads(); // an earlier test's thread may still be on its way out
    engine = createIsolateEngine({ threads: 1, warm: 1, lowPriorityRefill: false });
    const signal = new AbortController().signal;
    for (let i = 0; i < 3; i++) expect((await engine.run(job('1 + 1'), profile, signal)).status).toBe('succeeded');
    await new Promise((r) => setTimeout(r, 100)); // the refill after the last run
    expect(lowThreads().filter((tid) => !before.includes(tid))).toEqual([]);
  });
});
