// Retries a write that must not be lost (a finished run's result) through a dependency's blip:
// backoff from 100 ms to 2 s, until it succeeds, `untilMs` passes or `stop` aborts. Logs once
// when it starts failing and once when it recovers, never per attempt.
import { setTimeout as wait } from 'node:timers/promises';
import type { Logger } from 'pino';

export interface RetryOptions {
  what: string;
  untilMs: number;
  stop?: AbortSignal;
  logger: Logger;
  context?: Record<string, unknown>;
}

export async function retryUntilDone<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const giveUpAt = Date.now() + opts.untilMs;
  let delay = 100;
  let failures = 0;
  for (;;) {
    try {
      const value = await fn();
      if (failures)
        opts.logger.info(
          { ...opts.context, attempts: failures + 1 },
          `${opts.what}: written after a dependency came back`,
        );
      return value;
    } catch (e) {
      failures++;
      if (failures === 1)
        opts.logger.warn(
          { ...opts.context, err: (e as Error).message },
          `${opts.what}: failed; holding it and retrying`,
        );
      if (Date.now() + delay > giveUpAt || opts.stop?.aborted) throw e;
      // Cut short when `stop` aborts: one last attempt follows, then the loop gives up.
      await wait(delay, undefined, { signal: opts.stop }).catch(() => {});
      delay = Math.min(delay * 2, 2000);
    }
  }
}
