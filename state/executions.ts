// Execution records in Redis, shared by API and runners. Every status change is one Lua script
// that checks the current status first, so a cancel racing a finish, or a crashed runner's job
// handed out again, can never move a record twice or run its code twice.

import { type Execution, type ExecutionStatus, FINAL_STATUSES, type RunError } from '../contract/execution.ts';
import type { EventStreamWriter } from './event-streams.ts';
import { isOfAgent, redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';
import { defineScripts } from './scripts.ts';

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

export type TransitionResult = 'done' | 'refused' | 'missing';
export type StartResult = 'started' | 'held' | 'refused' | 'missing';

export interface ExecutionStore {
  readonly doneChannel: string;
  /** False when the agent is revoked: then nothing was written. */
  create(meta: ExecutionMeta): Promise<boolean>;
  /**
   * create() and markRunning() in one step, for a run this process starts at once: `started`,
   * `held` (created queued: its agent is suspended or its task paused), or `revoked` (nothing
   * was written).
   */
  createRunning(meta: ExecutionMeta): Promise<'started' | 'held' | 'revoked'>;
  /** Takes back a record that never started, as if never made (its request's audit failed); false when it had moved on. */
  discard(meta: Pick<ExecutionMeta, 'id' | 'agentId' | 'taskId'>): Promise<boolean>;
  /** Ids of an agent's executions still within the record TTL. */
  idsOfAgent(agentId: string): Promise<string[]>;
  /** Ids of a task's executions still within the record TTL. */
  idsOfTask(taskId: string): Promise<string[]>;
  get(id: string): Promise<(Execution & { starts: number }) | undefined>;
  /**
   * queued → running, unless its agent is suspended or its task paused (`held`: it stays queued).
   * `refused` when the record is no longer queued (cancelled, or started before).
   */
  markRunning(id: string, owner: { agentId: string; taskId: string | null }): Promise<StartResult>;
  /** queued|running (or only `from`) → a final status, with the run's outcome. */
  finish(
    id: string,
    status: ExecutionStatus,
    outcome: Partial<ExecutionOutcome>,
    from?: readonly ExecutionStatus[],
  ): Promise<TransitionResult>;
  /**
   * finish(), and the record as GET returns it right after the move (in the same round trip).
   * `endedAt`: when the run ended (its `finishedAt`), if before this write.
   */
  finishAndRead(
    id: string,
    status: ExecutionStatus,
    outcome: Partial<ExecutionOutcome>,
    endedAt?: Date,
  ): Promise<{ done: TransitionResult; record?: Execution }>;
  /** queued → cancelled, or with `queuedOnly: false` running → cancelled (awaiting its runner's outcome). */
  cancel(id: string, reason: RunError, queuedOnly?: boolean): Promise<TransitionResult>;
  /** Adds the runner's outcome to a run cancelled while it ran; false when there is none to add. */
  amendCancelled(id: string, outcome: Partial<ExecutionOutcome>): Promise<boolean>;
}

const EMPTY_USAGE = { cpuMs: 0, wallMs: 0, memoryBytes: 0, cost: 0 };

/** A record's hash as the API shows it (with its start count, which the API leaves out). */
function recordOf(h: Record<string, string>): (Execution & { starts: number }) | undefined {
  if (!h.meta || !h.status) return undefined;
  const meta = JSON.parse(h.meta) as ExecutionMeta;
  // A run cancelled while it ran: the cancel's status and reason, with what its runner measured.
  const own = h.outcome ? (JSON.parse(h.outcome) as Partial<ExecutionOutcome>) : {};
  const outcome = h.runnerOutcome
    ? { ...(JSON.parse(h.runnerOutcome) as Partial<ExecutionOutcome>), error: own.error }
    : own;
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
}

const resultOf = (moved: 1 | 0 | -1): TransitionResult => (moved === 1 ? 'done' : moved === 0 ? 'refused' : 'missing');

/** The record without its start count: what GET and the `final` event show. */
const shown = ({ starts: _starts, ...execution }: Execution & { starts: number }): Execution => execution;

/**
 * `streams`: every status change is also told to the execution's event stream, and its end with
 * the record as GET returns it (the `final` event).
 */
export function createExecutionStore(
  redis: RedisClient,
  prefix: string,
  ttlSeconds: number,
  streams?: EventStreamWriter,
): ExecutionStore {
  const scripts = defineScripts(redis);
  const keys = redisKeys(prefix);
  const key = keys.execution.record;
  const doneChannel = keys.execution.doneChannel;
  const finalFrom: readonly ExecutionStatus[] = ['queued', 'running'];

  const statusBody = (status: ExecutionStatus) => JSON.stringify({ status, at: new Date().toISOString() });
  const statusEvent = (id: string, status: ExecutionStatus) =>
    streams?.append(keys.execution.stream(id), 'status', { status, at: new Date().toISOString() });
  /** The end as two appends in order; never fails the caller. */
  const appendFinal = (id: string, status: ExecutionStatus | undefined, record: Execution) => {
    if (!streams) return;
    if (status) void statusEvent(id, status);
    void streams.append(keys.execution.stream(id), 'final', record);
  };
  /** The end, read first; a record that cannot be read now is served from the record itself. */
  const finalEvent = (id: string, status: ExecutionStatus | undefined) => {
    if (!streams) return;
    void store
      .get(id)
      .then((record) => record && appendFinal(id, status, shown(record)))
      .catch(() => {});
  };

  type Owned = Pick<ExecutionMeta, 'id' | 'agentId' | 'taskId'>;
  /** A record's own key and the keys that list it (all in its agent's slot). */
  const recordKeys = (meta: Owned) => ({
    record: key(meta.id),
    agentIndex: keys.agent.executions(meta.agentId),
    taskIndex: keys.agent.task(meta.agentId, meta.taskId, keys.task.executions),
    stream: keys.execution.stream(meta.id),
  });
  const hasTask = (meta: Owned) => meta.taskId !== null && isOfAgent(meta.taskId, meta.agentId);

  const transition = async (
    id: string,
    to: ExecutionStatus,
    from: readonly string[],
    fields: Record<string, string>,
  ): Promise<TransitionResult> => {
    return resultOf(await scripts.transition({ record: key(id) }, { doneChannel, to, ttlS: ttlSeconds, from, fields }));
  };

  /** A move to a final status, with the record as it is right after it when `read`. */
  const finishMove = async (
    id: string,
    status: ExecutionStatus,
    outcome: Partial<ExecutionOutcome>,
    from: readonly ExecutionStatus[],
    read: boolean,
    endedAt = new Date(),
  ): Promise<{ done: TransitionResult; record?: Execution }> => {
    if (!FINAL_STATUSES.includes(status)) throw new Error(`finish() needs a final status, got ${status}`);
    const fields = { outcome: JSON.stringify(outcome), finishedAt: endedAt.toISOString() };
    if (!read) return { done: await transition(id, status, from, fields) };
    // The record as it is right after the move, read by the same script call.
    const r = await scripts.transitionAndRead(
      { record: key(id) },
      { doneChannel, to: status, ttlS: ttlSeconds, from, fields },
    );
    const done = resultOf(r.moved);
    const found = r.fields && recordOf(r.fields);
    if (done !== 'done' || !found) return { done };
    const record = shown(found);
    appendFinal(id, status, record);
    return { done, record };
  };

  /** The record made, and with `start` started in the same call (see execution-create-7.lua). */
  const createRecord = (meta: ExecutionMeta, start: boolean) =>
    scripts.executionCreate(
      {
        ...recordKeys(meta),
        revoked: keys.agent.revoked(meta.agentId),
        suspended: keys.watch.suspended(meta.agentId),
        paused: keys.agent.task(meta.agentId, meta.taskId, keys.watch.paused),
      },
      {
        id: meta.id,
        meta: JSON.stringify(meta),
        ttlS: ttlSeconds,
        hasTask: hasTask(meta),
        // `queued` joins the stream with the record: first, whatever a runner does next.
        event: streams && statusBody('queued'),
        ...(start && {
          start: { event: streams && statusBody('running'), fields: { startedAt: new Date().toISOString() } },
        }),
      },
    );

  const store: ExecutionStore = {
    doneChannel,

    async create(meta) {
      return (await createRecord(meta, false)) === 1;
    },

    async createRunning(meta) {
      const r = await createRecord(meta, true);
      return r === 2 ? 'started' : r === 3 ? 'held' : 'revoked';
    },

    discard(meta) {
      return scripts.executionDiscard(recordKeys(meta), { id: meta.id, hasTask: hasTask(meta) });
    },

    idsOfAgent(agentId) {
      return redis.smembers(keys.agent.executions(agentId));
    },

    idsOfTask(taskId) {
      return redis.smembers(keys.task.executions(taskId));
    },

    async get(id) {
      return recordOf(await redis.hgetall(key(id)));
    },

    async markRunning(id, owner) {
      const started = await scripts.start(
        {
          record: key(id),
          suspended: keys.watch.suspended(owner.agentId),
          paused: keys.agent.task(owner.agentId, owner.taskId, keys.watch.paused),
          stream: keys.execution.stream(id),
        },
        {
          ttlS: ttlSeconds,
          hasTask: owner.taskId !== null,
          // `running` joins the stream in the same call, before any output of the run.
          event: streams && statusBody('running'),
          fields: { startedAt: new Date().toISOString() },
        },
      );
      return started;
    },

    async finish(id, status, outcome, from = finalFrom) {
      // The `final` event needs the record: read with the move, only when there is a stream.
      return (await finishMove(id, status, outcome, from, streams !== undefined)).done;
    },

    finishAndRead: (id, status, outcome, endedAt) => finishMove(id, status, outcome, finalFrom, true, endedAt),

    async cancel(id, reason, queuedOnly = false) {
      const done = await transition(id, 'cancelled', queuedOnly ? ['queued'] : ['running'], {
        outcome: JSON.stringify({ error: reason }),
        finishedAt: new Date().toISOString(),
        ...(!queuedOnly && { awaitingRunner: '1' }),
      });
      // A running one ends in its stream once its runner has added what it used (amendCancelled).
      if (done === 'done') {
        if (queuedOnly) finalEvent(id, 'cancelled');
        else void statusEvent(id, 'cancelled');
      }
      return done;
    },

    async amendCancelled(id, outcome) {
      const amended = await scripts.executionAmendCancelled({ record: key(id) }, { outcome: JSON.stringify(outcome) });
      if (amended) finalEvent(id, undefined);
      return amended;
    },
  };
  return store;
}
