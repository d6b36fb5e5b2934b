// Sends each signed checkpoint out of the service's reach (fire and forget): a witness that keeps
// them lets the verifier catch a chain deleted, rolled back or rewritten together with its head file.
import type { AuditCheckpoint } from '../../contract/audit.ts';

export interface WitnessPoster {
  post(checkpoint: AuditCheckpoint): void;
  /** Waits for the posts in flight (each is bounded by the timeout). */
  settle(): Promise<void>;
}

export function createWitnessPoster(
  url: string | undefined,
  timeoutMs: number,
  onError: ((error: unknown, checkpoint: AuditCheckpoint) => void) | undefined,
): WitnessPoster {
  const inFlight = new Set<Promise<void>>();
  return {
    post(checkpoint) {
      if (!url) return;
      const post = fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(checkpoint),
        signal: AbortSignal.timeout(timeoutMs),
      })
        .then(async (res) => {
          await res.body?.cancel();
          if (!res.ok) throw new Error(`witness answered ${res.status}`);
        })
        .catch((e: unknown) => {
          if (onError) onError(e, checkpoint);
          else process.emitWarning(`audit witness: ${(e as Error).message}`);
        })
        .finally(() => inFlight.delete(post));
      inFlight.add(post);
    },
    settle: async () => {
      await Promise.allSettled([...inFlight]);
    },
  };
}
