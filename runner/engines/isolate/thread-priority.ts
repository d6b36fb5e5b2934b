// The isolate thread runs user code at the process's priority but makes the next run's isolate
// (~1.6 ms of CPU each) at the lowest one, so on a busy machine that background work yields to
// the event loop, Redis and the runs themselves instead of preempting them. Moving a thread back
// up needs CAP_SYS_NICE (or a raised RLIMIT_NICE); where it is missing, the thread's priority is
// never touched, since a thread that could be lowered but not raised again would run user code
// at the lowest priority.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export interface ThreadPriority {
  /** Before a run: the process's own priority. */
  forRun(): void;
  /** Before making isolates ahead of time: the lowest priority. */
  forRefill(): void;
}

const NONE: ThreadPriority = { forRun() {}, forRefill() {} };
const LOWEST = 19;

export function threadPriority(enabled: boolean): ThreadPriority {
  if (!enabled) return NONE;
  let tid: number;
  let own: number;
  try {
    // Linux: /proc/thread-self is /proc/<pid>/task/<tid>; setpriority on a tid moves that thread alone.
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return NONE;
    own = getPriority(tid); // the process's own (a thread starts with its creator's)
    if (own >= LOWEST) return NONE;
    setPriority(tid, own - 1); // throws unless this thread may raise its priority
    setPriority(tid, own);
  } catch {
    return NONE;
  }
  let low = false;
  const set = (toLow: boolean) => {
    if (low === toLow) return;
    try {
      setPriority(tid, toLow ? LOWEST : own);
      low = toLow;
    } catch {
      // left where it was: a failed change costs speed, never a run
    }
  };
  return { forRun: () => set(false), forRefill: () => set(true) };
}
