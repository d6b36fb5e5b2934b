// Every Redis key and channel Sandgate uses, built here and nowhere else, under the instance's
// prefix (two instances on one Redis stay apart). Grouped by what they hold.
//
// The cluster rule: every key of one agent carries the agent's hash tag, `prefix:{tag}:…`, so a
// Lua script or MULTI about one agent touches one slot of a Redis Cluster and agents spread over
// its masters. The tag is derived from the agent id, and ids of its work (`ex_<tag>_…`,
// `act_…`, `apr_…`, `alr_…`, `task_…`) carry it, so a route given only an id builds the key. An
// id whose tag does not parse names the `{-}` slot, where nothing is ever written: a hostile id
// finds nothing (404), never another agent's record. Global indexes (all agents, tasks, alerts,
// open alerts, pending approvals, the audit read index, runner heartbeats) have no tag and are
// written by single-key commands beside the per-agent step (see the stores for the order).
import { createHash, randomBytes } from 'node:crypto';

export type Keys = ReturnType<typeof redisKeys>;

export type WorkKind = 'ex' | 'act' | 'apr' | 'alr' | 'task';

const tags = new Map<string, string>();
/**
 * An agent's hash tag: 8 hex digits of SHA-256 of its id (stable, spread evenly over the slots).
 * Every key of a run names it, so the tags of recent agents are kept (a bounded map).
 */
export const agentTag = (agentId: string): string => {
  let tag = tags.get(agentId);
  if (tag === undefined) {
    tag = createHash('sha256').update(agentId).digest('hex').slice(0, 8);
    if (tags.size >= 10_000) tags.clear();
    tags.set(agentId, tag);
  }
  return tag;
};

/** A new id of work of an agent: kind, the agent's tag, 120 random bits (unguessable, url-safe). */
export const newWorkId = (kind: WorkKind, agentId: string): string =>
  `${kind}_${agentTag(agentId)}_${randomBytes(15).toString('base64url')}`;

const WORK_ID = /^(?:ex|act|apr|alr|task)_([0-9a-f]{8})_[A-Za-z0-9_-]{20}$/;
/** The slot nothing is written to: where an id that does not parse is looked up (and not found). */
const NOWHERE = '-';

/** The tag inside a work id; undefined unless the whole id has exactly the shape newWorkId makes. */
export const tagOfId = (id: string): string | undefined => WORK_ID.exec(id)?.[1];

/** True when the id is work of this agent by its tag (a task id named with an agent, say). */
export const isOfAgent = (id: string, agentId: string): boolean => tagOfId(id) === agentTag(agentId);

/** The part of a key Redis Cluster hashes to find its slot: the first non-empty `{…}`, else all of it. */
export function hashedPart(key: string): string {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** BullMQ's prefix for one queue: its own hash tag, so its multi-key scripts work on a cluster. */
export const queuePrefix = (prefix: string, queue: string): string => `{${prefix}:${queue}}`;

export function redisKeys(prefix: string) {
  // Built on every Redis call of a run: joined by hand, without an array per key.
  const k = (...parts: string[]) => `${prefix}:${parts.join(':')}`;
  const tagged = (tag: string, ...parts: string[]) =>
    parts.length === 0 ? `${prefix}:{${tag}}` : `${prefix}:{${tag}}:${parts.join(':')}`;
  /** A key of the agent's slot. */
  const a = (agentId: string, ...parts: string[]) => tagged(agentTag(agentId), ...parts);
  /** A key of the slot of the agent whose tag the id carries. */
  const w = (id: string, ...parts: string[]) => tagged(tagOfId(id) ?? NOWHERE, ...parts);
  return {
    prefix,
    agent: {
      /** The agent record (JSON). */
      record: (agentId: string) => a(agentId, 'agent', agentId),
      /** Set while the agent is revoked: every admission script checks it atomically. */
      revoked: (agentId: string) => a(agentId, 'agent-revoked', agentId),
      /** Its executions and actions, so a revocation reaches all of its work. */
      executions: (agentId: string) => a(agentId, 'agent-execs', agentId),
      actions: (agentId: string) => a(agentId, 'agent-acts', agentId),
      /** GCRA state of its per-minute limit, per kind of work. */
      rate: (kind: 'run' | 'tool', agentId: string) => a(agentId, 'rate', kind, agentId),
      /** Its spend of the current UTC day (hash: day, spent, reserved). */
      spendDay: (agentId: string) => a(agentId, 'spend-day', agentId),
      /**
       * A key of the agent's slot that is never written: what a script gets for a key it takes
       * but does not use (the task of work without a task), so its keys still share one slot.
       */
      placeholder: (agentId: string) => a(agentId, 'none'),
      /**
       * A task's key (`of` one of the task.* or watch.* builders) for work of this agent: the
       * placeholder without a task or for a task id of another agent, so a script's keys always
       * share the agent's slot and a foreign task is simply not found there.
       */
      task: (agentId: string, taskId: string | null, of: (taskId: string) => string) =>
        taskId && isOfAgent(taskId, agentId) ? of(taskId) : a(agentId, 'none'),
      /** Every agent by creation time (ms): the console's list. Global. */
      all: k('agents'),
    },
    /** A human principal's record (no token), for naming who approved or handled what. Global. */
    principal: (principalId: string) => k('principal', principalId),
    principalToken: (tokenDigest: string) => k('principal-token', tokenDigest),
    task: {
      /** The task hash: budget, counts, spend, status. */
      record: (taskId: string) => w(taskId, 'task', taskId),
      taint: (taskId: string) => w(taskId, 'task-taint', taskId),
      executions: (taskId: string) => w(taskId, 'task-execs', taskId),
      /** Tasks by creation time (ms), of one agent and of all (global); trimmed to the task TTL. */
      ofAgent: (agentId: string) => a(agentId, 'agent-tasks', agentId),
      all: k('tasks'),
    },
    /**
     * Activity per hour of an agent or a task (hash: `<minute>|<metric>` → count or nanos), for
     * the console's figures and charts; one key per hour keeps every read and expiry bounded.
     */
    activity: (scope: 'agent' | 'task', id: string, hour: number) =>
      (scope === 'agent' ? a : w)(id, 'activity', scope, id, String(hour)),
    /** A worst-case reservation held by admitted work (its id) until it is settled. */
    reservation: (workId: string) => w(workId, 'reservation', workId),
    execution: {
      record: (id: string) => w(id, 'exec', id),
      /** `<id> <status>` is published here when an execution reaches a final status. */
      doneChannel: k('exec-done'),
      /** An execution id published here tells its runner, wherever it is, to stop it. */
      cancelChannel: k('exec-cancel'),
      /** Its events as a Redis Stream (status changes, output chunks, the final record): SSE. */
      stream: (id: string) => w(id, 'exec-stream', id),
    },
    action: {
      record: (id: string) => w(id, 'act', id),
      auditIds: (id: string) => w(id, 'act-audit', id),
      approval: (id: string) => w(id, 'apr', id),
      /** Pending approvals by expiry time (ms). Global. */
      pendingApprovals: k('apr-pending'),
      doneChannel: k('act-done'),
      /** Its status changes and final record as a Redis Stream: SSE. */
      stream: (id: string) => w(id, 'act-stream', id),
    },
    audit: {
      /** One record of the read index: a key of its own (records are written in batches of any agents). */
      record: (id: string) => k('audit', 'rec', id),
      all: k('audit', 'all'),
      ofTask: (taskId: string) => w(taskId, 'audit', 'task', taskId),
      ofAgent: (agentId: string) => a(agentId, 'audit', 'agent', agentId),
    },
    watch: {
      /** Set while a human (or a detector) has suspended the agent: JSON of why. */
      suspended: (agentId: string) => a(agentId, 'agent-suspended', agentId),
      /** Set while the task is paused: JSON of why. */
      paused: (taskId: string) => w(taskId, 'task-paused', taskId),
      throttle: (agentId: string) => a(agentId, 'watch', 'throttle', agentId),
      throttleRate: (agentId: string) => a(agentId, 'watch', 'throttle-rate', agentId),
      /** One sliding window per agent and exact call (tool or profile + canonical input). */
      loop: (agentId: string, inputHash: string) => a(agentId, 'watch', 'loop', agentId, inputHash),
      /** One sliding window per agent and result. */
      result: (agentId: string, resultHash: string) => a(agentId, 'watch', 'result', agentId, resultHash),
      rate: (agentId: string) => a(agentId, 'watch', 'rate', agentId),
      agentSeen: (agentId: string) => a(agentId, 'watch', 'seen', agentId),
      taskSeen: (taskId: string) => w(taskId, 'watch', 'task-seen', taskId),
      refusals: (agentId: string) => a(agentId, 'watch', 'refusals', agentId),
      agentSpend: (agentId: string) => a(agentId, 'watch', 'spend', agentId),
      taskSpend: (taskId: string) => w(taskId, 'watch', 'task-spend', taskId),
      /** since (the last resume, ms), total admissions. */
      agentState: (agentId: string) => a(agentId, 'watch', 'state', agentId),
      taskState: (taskId: string) => w(taskId, 'watch', 'task-state', taskId),
      /** The agent's latest audit ids, for the evidence of an alert. */
      recent: (agentId: string) => a(agentId, 'watch', 'recent', agentId),
    },
    alert: {
      record: (id: string) => w(id, 'alert', id),
      deliveries: (id: string) => w(id, 'alert-deliveries', id),
      /** The open alert of an agent and a detector (dedup). */
      open: (agentId: string, detector: string) => a(agentId, 'alert-open', agentId, detector),
      /** All alerts and the open ones (global). */
      all: k('alerts'),
      ofAgent: (agentId: string) => a(agentId, 'alerts-agent', agentId),
      openSet: k('alerts-open'),
    },
    /**
     * The messages of one MCP response stream (a Redis Stream, capped and expiring), so the client
     * can resume it with Last-Event-ID on any API process; in the agent's slot, so only it reads them.
     */
    mcpEvents: (agentId: string, streamId: string) => a(agentId, 'mcp-events', agentId, streamId),
    /** What an Idempotency-Key of the agent was used for (the body's hash, then the record's id). */
    idempotency: (agentId: string, kind: 'run' | 'tool', keyDigest: string) =>
      a(agentId, 'idem', kind, agentId, keyDigest),
    /**
     * Where an agent was kept before the cluster layout (no hash tag): read once, when its new
     * key is missing, to carry it over (state/agents.ts). Everything else of then was short-lived.
     */
    legacyAgent: {
      record: (agentId: string) => k('agent', agentId),
      revoked: (agentId: string) => k('agent-revoked', agentId),
    },
    /** Heartbeat of a live runner process (TTL): the reaper spares its containers. Global. */
    runner: (runnerId: string) => k('runner', runnerId),
    /** Executions a runner took straight from its own API side (no queue job): settled if it dies. */
    runnerRuns: (runnerId: string) => k('runner-runs', runnerId),
    /** The runners that have held such runs (swept once their heartbeat is gone). Global. */
    runnersWithRuns: k('runners-with-runs'),
  };
}
