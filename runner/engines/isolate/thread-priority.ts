// The isolate thread makes the next runs' isolates (~1.6 ms of CPU each) at the lowest CPU
// priority, so on a busy machine that background work yields to the event loop, Redis and the
// runs themselves instead of preempting them; everything else it does, at the process's own.
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
  /** Runs `work` (synchronous) at the lowest priority, then puts this thread back where it was. */
  whileLow<T>(work: () => T): T;
}

const LOWEST = 19;
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
    if (own >= LOWEST) return UNCHANGED;
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
        setPriority(tid, LOWEST);
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
