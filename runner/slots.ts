// An engine's run slots, shared by its queue worker and runs taken straight from this process's
// API side, so together they never run more at once than the engine's concurrency. A freed slot
// goes to a queued job waiting for one before anything else: runs taken here only use a slot
// nobody waits for, and never starve the queue.
export interface Slots {
  /** A slot now, or false (then the run goes through the queue). */
  tryTake(): boolean;
  /** Waits for a slot (queue jobs). */
  take(): Promise<void>;
  give(): void;
  inUse(): number;
}

export function createSlots(size: number): Slots {
  let used = 0;
  const waiting: Array<() => void> = [];
  return {
    tryTake() {
      if (used >= size || waiting.length > 0) return false;
      used++;
      return true;
    },
    take() {
      if (used < size && waiting.length === 0) {
        used++;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    give() {
      // A waiting job gets the slot as it is (`used` stays); otherwise it is free.
      const next = waiting.shift();
      if (next) next();
      else used = Math.max(0, used - 1);
    },
    inUse: () => used,
  };
}
