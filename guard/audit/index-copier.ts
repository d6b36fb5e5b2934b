// Copies durable audit batches into the Redis read index, in order, through Redis blips: a batch
// that cannot be written is kept and retried with backoff, so the index catches up by itself once
// Redis is back. Bounded: past MAX_PENDING records the oldest are dropped from the copy (the
// files still hold them; `npm run audit -- verify` reads the files, not the index).
import type { AuditRecord } from '../../contract/audit.ts';
import type { AuditIndex } from '../../state/audit-index.ts';

const MAX_PENDING = 200_000;

export interface IndexCopier {
  add(records: readonly AuditRecord[]): void;
  /** Records waiting for Redis. */
  pending(): number;
  /** Tries once more to copy what is pending (bounded by `ms`), then stops retrying. */
  close(ms: number): Promise<void>;
}

export function createIndexCopier(index: AuditIndex, onError: (e: Error) => void): IndexCopier {
  const queue: AuditRecord[] = [];
  let flushing: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
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
      if (!retry || closed) void flush();
    },
    pending: () => queue.length,
    async close(ms) {
      closed = true;
      clearTimeout(retry);
      let t: NodeJS.Timeout | undefined;
      await Promise.race([flush(), new Promise<void>((r) => (t = setTimeout(r, ms)))]);
      clearTimeout(t);
    },
  };
}
