// Execution records in Redis, shared by API and runners. Every status change is one Lua script
// that checks the current status first, so a cancel racing a finish, or a crashed runner's job
// handed out again, can never move a record twice or run its code twice.
import type { Redis } from 'ioredis';
import { type Execution, type ExecutionStatus, FINAL_STATUSES, type RunError } from '../contract/execution.ts';
import { agentExecutionsKey, agentRevokedKey, taskExecutionsKey } from '../contract/redis-keys.ts';
import { TRANSITION } from '../guard/records/transition-script.ts';

export interface ExecutionMeta {
  id: string;
  profile: string;
  language: Execution['language'];
  agentId: string;
  taskId: string | null;
  createdAt: string;
  /** The record of its request in the audit log. */
  auditId?: string;
}

/** The part of a record a runner writes when the run ends. */
export type ExecutionOutcome = Pick<
  Execution,
  'exitCode' | 'stdout' | 'stderr' | 'result' | 'files' | 'truncated' | 'usage' | 'error'
> & { /** The audit record of the run's end. */ auditId?: string };

// Admission: the record is created only while the agent is not revoked, in one step, so no
// request admitted after a revocation can slip in between a check and the write. The id goes
// into the agent's index and, when it has one, the task's.
// KEYS: record, revoked marker, agent index, [task index].
const CREATE = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', 'queued', 'meta', ARGV[2], 'starts', 0)
redis.call('EXPIRE', KEYS[1], ARGV[3])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
return 1
`;

// A run cancelled while running is final at once (the caller is answered, waiters are told),
// but only its runner knows what it used: the runner adds its outcome (usage, output, the audit
// id of its end) to the cancelled record once, keeping the cancel's status and reason.
// KEYS: record. ARGV: outcome JSON.
const AMEND_CANCELLED = `
if redis.call('HGET', KEYS[1], 'status') ~= 'cancelled' or redis.call('HGET', KEYS[1], 'awaitingRunner') ~= '1' then return 0 end
local cur = cjson.decode(redis.call('HGET', KEYS[1], 'outcome') or '{}')
local new = cjson.decode(ARGV[1])
new['error'] = cur['error']
redis.call('HSET', KEYS[1], 'outcome', cjson.encode(new))
redis.call('HDEL', KEYS[1], 'awaitingRunner')
return 1
`;

export type TransitionResult = 'done' | 'refused' | 'missing';

export interface ExecutionStore {
  readonly doneChannel: string;
  /** False when the agent is revoked: then nothing was written. */
  create(meta: ExecutionMeta): Promise<boolean>;
  /** Ids of an agent's executions still within the record TTL. */
  idsOfAgent(agentId: string): Promise<string[]>;
  /** Ids of a task's executions still within the record TTL. */
  idsOfTask(taskId: string): Promise<string[]>;
  get(id: string): Promise<(Execution & { starts: number }) | undefined>;
  /** queued → running. False when the record is no longer queued (cancelled, or started before). */
  markRunning(id: string): Promise<boolean>;
  /** queued|running (or only `from`) → a final status, with the run's outcome. */
  finish(id: string, status: ExecutionStatus, outcome: Partial<ExecutionOutcome>, from?: readonly ExecutionStatus[]): Promise<TransitionResult>;
  /** queued → cancelled, or with `queuedOnly: false` running → cancelled (awaiting its runner's outcome). */
  cancel(id: string, reason: RunError, queuedOnly?: boolean): Promise<TransitionResult>;
  /** Adds the runner's outcome to a run cancelled while it ran; false when there is none to add. */
  amendCancelled(id: string, outcome: Partial<ExecutionOutcome>): Promise<boolean>;
}

const EMPTY_USAGE = { cpuMs: 0, wallMs: 0, memoryBytes: 0, cost: 0 };

type WithTransition = Redis & {
  sandgateTransition(record: string, channel: string, ...args: string[]): Promise<number>;
  sandgateCreate(numKeys: number, ...keysAndArgs: string[]): Promise<number>;
  sandgateAmendCancelled(record: string, outcome: string): Promise<number>;
};

export function createExecutionStore(redis: Redis, prefix: string, ttlSeconds: number): ExecutionStore {
  // defineCommand sends EVALSHA (the script once, then its hash), not the script every call.
  if (!('sandgateTransition' in redis)) {
    redis.defineCommand('sandgateTransition', { numberOfKeys: 2, lua: TRANSITION });
    redis.defineCommand('sandgateCreate', { lua: CREATE }); // 3 or 4 keys: numKeys first
    redis.defineCommand('sandgateAmendCancelled', { numberOfKeys: 1, lua: AMEND_CANCELLED });
  }
  const scripted = redis as WithTransition;
  const key = (id: string) => `${prefix}:exec:${id}`;
  const doneChannel = `${prefix}:exec-done`;
  const finalFrom: readonly ExecutionStatus[] = ['queued', 'running'];

  const transition = async (
    id: string,
    to: ExecutionStatus,
    from: readonly string[],
    fields: Record<string, string>,
  ): Promise<TransitionResult> => {
    const args = [to, String(ttlSeconds), String(from.length), ...from, ...Object.entries(fields).flat()];
    const r = await scripted.sandgateTransition(key(id), doneChannel, ...args);
    return r === 1 ? 'done' : r === 0 ? 'refused' : 'missing';
  };

  return {
    doneChannel,

    async create(meta) {
      const keys = [key(meta.id), agentRevokedKey(prefix, meta.agentId), agentExecutionsKey(prefix, meta.agentId)];
      if (meta.taskId) keys.push(taskExecutionsKey(prefix, meta.taskId));
      return (await scripted.sandgateCreate(keys.length, ...keys, meta.id, JSON.stringify(meta), String(ttlSeconds))) === 1;
    },

    idsOfAgent(agentId) {
      return redis.smembers(agentExecutionsKey(prefix, agentId));
    },

    idsOfTask(taskId) {
      return redis.smembers(taskExecutionsKey(prefix, taskId));
    },

    async get(id) {
      const h = await redis.hgetall(key(id));
      if (!h.meta || !h.status) return undefined;
      const meta = JSON.parse(h.meta) as ExecutionMeta;
      const outcome = h.outcome ? (JSON.parse(h.outcome) as Partial<ExecutionOutcome>) : {};
      return {
        ...meta,
        status: h.status as ExecutionStatus,
        exitCode: outcome.exitCode ?? null,
        stdout: outcome.stdout ?? '',
        stderr: outcome.stderr ?? '',
        ...(outcome.result !== undefined && { result: outcome.result }),
        ...(outcome.files !== undefined && { files: outcome.files }),
        truncated: outcome.truncated ?? false,
        usage: outcome.usage ?? EMPTY_USAGE,
        ...(outcome.error !== undefined && { error: outcome.error }),
        auditId: meta.auditId ?? null,
        auditIds: [...(meta.auditId ? [meta.auditId] : []), ...(outcome.auditId ? [outcome.auditId] : [])],
        startedAt: h.startedAt ?? null,
        finishedAt: h.finishedAt ?? null,
        starts: Number(h.starts ?? 0),
      };
    },

    async markRunning(id) {
      return (await transition(id, 'running', ['queued'], { startedAt: new Date().toISOString() })) === 'done';
    },

    finish(id, status, outcome, from = finalFrom) {
      if (!FINAL_STATUSES.includes(status)) throw new Error(`finish() needs a final status, got ${status}`);
      return transition(id, status, from, {
        outcome: JSON.stringify(outcome),
        finishedAt: new Date().toISOString(),
      });
    },

    cancel(id, reason, queuedOnly = false) {
      return transition(id, 'cancelled', queuedOnly ? ['queued'] : ['running'], {
        outcome: JSON.stringify({ error: reason }),
        finishedAt: new Date().toISOString(),
        ...(!queuedOnly && { awaitingRunner: '1' }),
      });
    },

    async amendCancelled(id, outcome) {
      return (await scripted.sandgateAmendCancelled(key(id), JSON.stringify(outcome))) === 1;
    },
  };
}
