// Copies durable audit batches into the Redis read index, in order, through Redis blips: a batch
// that cannot be written is kept and retried with backoff, so the index catches up by itself once
// Redis is back. Bounded: past MAX_PENDING records the oldest are dropped from the copy (the
// files still hold them; `npm run audit -- verify` reads the files, not the index).
import type { AuditRecord } from '../../contract/audit.ts';
import { within } from '../../contract/within.ts';
import type { AuditIndex } from '../../state/audit-index.ts';

const MAX_PENDING = 200_000;

/**
 * How long durable records wait to be copied, so the batches of several runs go in one round
 * trip: the copy is for readers of other processes, and each write to Redis costs the event loop
 * a socket write that the runs being served would otherwise wait behind.
 */
export const INDEX_COALESCE_MS = 15;

export interface IndexCopier {
  add(records: readonly AuditRecord[]): void;
  /** Records waiting for Redis. */
  pending(): number;
  /**
   * Copies what is waiting now, without the coalescing wait; resolves once that copy is done or
   * has failed (a reader of the index then sees this process's own records: read your writes).
   */
  now(): Promise<void>;
  /** Tries once more to copy what is pending (bounded by `ms`), then stops retrying. */
  close(ms: number): Promise<void>;
}

export function createIndexCopier(index: AuditIndex, onError: (e: Error) => void): IndexCopier {
  const queue: AuditRecord[] = [];
  let flushing: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let soon: NodeJS.Timeout | undefined;
  let delay = 250;
  let closed = false;

  const flush = (): Promise<void> =>
    (flushing ??= (async () => {
      while (queue.length) {
        const batch = queue.slice(0, 1000);
        try {
          await index.add(batch);
        } catch (e) {
          onError(e as Error);
          if (!closed && !retry) {
            retry = setTimeout(() => {
              retry = undefined;
              void flush();
            }, delay);
            retry.unref();
            delay = Math.min(delay * 2, 2000);
          }
          return;
        }
        queue.splice(0, batch.length);
        delay = 250;
      }
    })().finally(() => {
      flushing = undefined;
    }));

  return {
    add(records) {
      queue.push(...records);
      if (queue.length > MAX_PENDING) {
        const dropped = queue.splice(0, queue.length - MAX_PENDING).length;
        onError(new Error(`${dropped} audit records were not copied to the Redis index (the files hold them)`));
      }
      if (closed) void flush();
      else if (!retry && !soon) {
        soon = setTimeout(() => {
          soon = undefined;
          void flush();
        }, INDEX_COALESCE_MS);
        soon.unref();
      }
    },
    pending: () => queue.length,
    async now() {
      if (!queue.length && !flushing) return;
      clearTimeout(soon);
      soon = undefined;
      if (retry) return; // Redis is failing: the reader gets what the index has
      await flush();
    },
    async close(ms) {
      closed = true;
      clearTimeout(retry);
      clearTimeout(soon);
      await within(flush(), ms);
    },
  };
}
