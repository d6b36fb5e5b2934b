// `Idempotency-Key` on POST /v1/executions and POST /v1/actions: a retry of a request whose answer
// was lost (a dropped connection, a timeout) gets the record the first one admitted, never a
// second run or a second tool call. The key is the agent's own (another agent's same key is
// another key), bound to the body it came with (another body under it is 409).
import type { FastifyRequest } from 'fastify';
import { SandgateError } from '../contract/errors.ts';
import { canonicalJson, sha256Hex } from '../guard/audit/canonical.ts';
import type { IdempotencyStore } from '../state/idempotency.ts';

export interface Idempotent {
  /** The id admitted before under this key: answer with that record, admit nothing. */
  replayId?: string;
  /** Binds the key to what was admitted. */
  settle(id: string): Promise<void>;
  /** The request was refused: the key is free again. */
  release(): Promise<void>;
}

const NONE: Idempotent = { settle: async () => {}, release: async () => {} };
const KEY = /^[\x21-\x7e]{1,255}$/;

export async function idempotency(
  store: IdempotencyStore,
  request: FastifyRequest,
  kind: 'run' | 'tool',
  body: unknown,
): Promise<Idempotent> {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return NONE;
  if (typeof raw !== 'string' || !KEY.test(raw))
    throw new SandgateError('validation_failed', 'Idempotency-Key: 1 to 255 visible ASCII characters, once');
  const agentId = request.principal!.id;
  const keyDigest = sha256Hex(raw);
  const bodyHash = sha256Hex(canonicalJson(body));
  const claim = await store.claim(agentId, kind, keyDigest, bodyHash);
  if (claim.state === 'done') return { ...NONE, replayId: claim.id };
  if (claim.state === 'pending')
    throw new SandgateError(
      'invalid_state',
      'a request with this Idempotency-Key is still being admitted: retry shortly',
    );
  if (claim.state === 'mismatch')
    throw new SandgateError('invalid_state', 'this Idempotency-Key was used with another request body: use a new key');
  return {
    // A failed write leaves the claim to expire (60 s); the work itself is admitted either way.
    settle: (id) =>
      store.settle(agentId, kind, keyDigest, bodyHash, id).catch((e: Error) => {
        request.log.warn({ err: e.message }, 'idempotency key not bound');
      }),
    release: () => store.release(agentId, kind, keyDigest).catch(() => {}),
  };
}
