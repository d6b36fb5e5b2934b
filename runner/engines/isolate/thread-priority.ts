// The isolate thread makes the next runs' isolates (~1.6 ms of CPU each) at a low CPU priority
// (nice 10: about a tenth of a nice-0 thread's share when both want the core), so on a busy
// machine that background work yields to the event loop, Redis and the runs themselves instead
// of preempting them; everything else it does, at the process's own. Not the lowest (19): the
// thread is blocked while it makes an isolate, and on a machine saturated by other processes a
// nice-19 thread gets ~1 % of a core, which would hold a run's end for a hundred times as long.
//
// Low only inside one synchronous call: no other work of this thread (a run's end, its
// completion value) runs meanwhile, and the work itself starts no thread (a new thread keeps the
// priority of the one that started it: isolated-vm's pool and timer threads, which run user code
// and enforce its timeouts, must never start low). Moving a thread back up needs CAP_SYS_NICE (or
// a raised RLIMIT_NICE); where it is missing the priority is never touched, since a thread that
// could be lowered but not raised again would stay low.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export interface ThreadPriority {
  /** Runs `work` (synchronous) at REFILL_NICE, then puts this thread back where it was. */
  whileLow<T>(work: () => T): T;
}

/** The refill's nice value. */
export const REFILL_NICE = 10;
const UNCHANGED: ThreadPriority = { whileLow: (work) => work() };

export function threadPriority(enabled: boolean): ThreadPriority {
  if (!enabled) return UNCHANGED;
  let tid: number;
  let own: number;
  try {
    // Linux: /proc/thread-self is /proc/<pid>/task/<tid>; setpriority on a tid moves that thread alone.
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return UNCHANGED;
    own = getPriority(tid); // the process's own (a thread starts at its creator's)
    if (own >= REFILL_NICE) return UNCHANGED;
    setPriority(tid, own - 1); // throws unless this thread may raise its priority
    setPriority(tid, own);
  } catch {
    return UNCHANGED;
  }
  let usable = true;
  return {
    whileLow(work) {
      if (!usable) return work();
      try {
        setPriority(tid, REFILL_NICE);
      } catch {
        return work(); // not lowered: the work still gets done
      }
      try {
        return work();
      } finally {
        try {
          setPriority(tid, own);
        } catch {
          usable = false; // could not go back up (it could a moment ago): never go down again
        }
      }
    },
  };
}
