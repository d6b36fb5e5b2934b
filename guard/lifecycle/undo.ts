// The one place a half-done admission is undone: each step that takes effect registers how to
// take it back, and a failure anywhere later runs them in reverse. Undo steps never throw.
import type { Logger } from 'pino';
import { retryUntilDone } from './retry.ts';

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
 * An undo step that must land even when the store it writes to is down now (a record left queued
 * with no job, an approval left pending for a request answered 503, a reservation never given
 * back): tried at once, and if that fails, handed to `keepTrying`, which retries it in the
 * background; the failure being answered does not wait for the store to come back. The step must
 * be safe to repeat (a transition from given statuses, a settle that finds nothing the second
 * time), since an attempt whose answer was lost may have landed.
 */
export function landing(
  step: () => Promise<unknown>,
  keepTrying: (step: () => Promise<unknown>) => Promise<unknown>,
): () => Promise<void> {
  return () =>
    step().then(
      () => undefined,
      () => void keepTrying(step).catch(() => {}),
    );
}

/**
 * The `keepTrying` of `landing` for one lifecycle: `keepTrying(what, id)(step)` retries `step`
 * through the outage (retryUntilDone's backoff, until `untilMs` or `stop`), logged as `what`.
 */
export function keepTryingWith(o: { logger: Logger; untilMs: number; stop?: AbortSignal | undefined }) {
  return (what: string, id: string) => (step: () => Promise<unknown>) =>
    retryUntilDone(step, {
      what,
      untilMs: o.untilMs,
      ...(o.stop && { stop: o.stop }),
      logger: o.logger,
      context: { id },
    }).catch((e: Error) => o.logger.error({ err: e.message, id }, `${what}: given up`));
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
