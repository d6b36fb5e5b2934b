// Idempotency keys of agents' POSTs (runs, tool calls): a key is claimed with the hash of the body
// before admission, then bound to the id of what was admitted, so a retry of the same request
// gets the same record instead of a second run or a second email. One key per agent, kind and
// Idempotency-Key, single-key commands only (one slot on a cluster).

import { redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';

export type Claim = { state: 'new' } | { state: 'done'; id: string } | { state: 'pending' } | { state: 'mismatch' };

export interface IdempotencyStore {
  /** Claims the key for this body, or says what it was used for. */
  claim(agentId: string, kind: 'run' | 'tool', keyDigest: string, bodyHash: string): Promise<Claim>;
  /** Binds a claimed key to the id of the admitted work. */
  settle(agentId: string, kind: 'run' | 'tool', keyDigest: string, bodyHash: string, id: string): Promise<void>;
  /** Frees a claimed key whose request was refused: nothing was admitted, a retry may try again. */
  release(agentId: string, kind: 'run' | 'tool', keyDigest: string): Promise<void>;
}

/** A claim whose admission never finished (its process died) frees itself after this. */
export const PENDING_TTL_S = 60;
/** How long a key is remembered once bound (a day, as the IETF draft suggests). */
export const IDEMPOTENCY_TTL_S = 24 * 3600;

export function createIdempotencyStore(redis: RedisClient, prefix: string): IdempotencyStore {
  const keys = redisKeys(prefix);
  return {
    async claim(agentId, kind, keyDigest, bodyHash) {
      const key = keys.idempotency(agentId, kind, keyDigest);
      const take = async () =>
        (await redis.set(key, JSON.stringify({ body: bodyHash }), 'EX', PENDING_TTL_S, 'NX')) === 'OK';
      if (await take()) return { state: 'new' };
      const raw = await redis.get(key);
      // Expired between the two commands: one more try, else someone else has just taken it.
      if (raw === null) return (await take()) ? { state: 'new' } : { state: 'pending' };
      const held = JSON.parse(raw) as { body: string; id?: string };
      if (held.body !== bodyHash) return { state: 'mismatch' };
      return held.id ? { state: 'done', id: held.id } : { state: 'pending' };
    },
    async settle(agentId, kind, keyDigest, bodyHash, id) {
      await redis.set(
        keys.idempotency(agentId, kind, keyDigest),
        JSON.stringify({ body: bodyHash, id }),
        'EX',
        IDEMPOTENCY_TTL_S,
      );
    },
    async release(agentId, kind, keyDigest) {
      await redis.del(keys.idempotency(agentId, kind, keyDigest));
    },
  };
}
