// The one place a half-done admission is undone: each step that takes effect registers how to
// take it back, and a failure anywhere later runs them in reverse. Undo steps never throw.
export interface Undo {
  push(step: () => Promise<unknown> | unknown): void;
  /** Runs every registered step, last first, and forgets them. */
  run(): Promise<void>;
}

export function createUndo(): Undo {
  const steps: Array<() => Promise<unknown> | unknown> = [];
  return {
    push: (step) => void steps.push(step),
    async run() {
      while (steps.length) {
        try {
          await steps.pop()!();
        } catch {
          // best effort: the rest are still undone
        }
      }
    },
  };
}

/**
 * Runs `admit` with an undo stack; on any failure the stack is unwound, then the error rethrown.
 * On success the stack is left as it is: an admission that ends after `admit` returns (a run
 * admitted while its request is still being made durable) may still unwind it.
 */
export async function withUndo<T>(admit: (undo: Undo) => Promise<T>): Promise<T> {
  const undo = createUndo();
  try {
    return await admit(undo);
  } catch (e) {
    await undo.run();
    throw e;
  }
}
