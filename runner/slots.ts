// An engine's run slots, shared by its queue worker and runs taken straight from this process's
// API side, so together they never run more at once than the engine's concurrency. A slot is
// held while the run is in the engine (sandbox set-up, the code, usage read) and given back as
// the engine lets go: writing the run's end holds no sandbox, and the next run need not wait.
// Waiters are served first come, first served, queue jobs and runs taken here alike; a run taken
// here waits only briefly and only behind a short line (else it goes through the queue, where
// any runner may take it), so the queue is never starved.
export interface Slots {
  /**
   * A slot now, or within `ms` when fewer than `size` others wait for one (each of them frees
   * within one run); false otherwise, having taken nothing.
   */
  takeWithin(ms: number): Promise<boolean>;
  /** Waits for a slot (queue jobs). */
  take(): Promise<void>;
  give(): void;
  inUse(): number;
}

export function createSlots(size: number): Slots {
  let used = 0;
  const waiting: Array<() => void> = [];
  const free = () => used < size && waiting.length === 0;
  return {
    takeWithin(ms) {
      if (free()) {
        used++;
        return Promise.resolve(true);
      }
      if (ms <= 0 || waiting.length >= size) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const served = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          const at = waiting.indexOf(served);
          if (at !== -1) waiting.splice(at, 1);
          resolve(false);
        }, ms);
        waiting.push(served);
      });
    },
    take() {
      if (free()) {
        used++;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    give() {
      // A waiter gets the slot as it is (`used` stays); otherwise it is free.
      const next = waiting.shift();
      if (next) next();
      else used = Math.max(0, used - 1);
    },
    inUse: () => used,
  };
}
