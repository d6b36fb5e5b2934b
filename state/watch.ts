// The watch's state in Redis: the detectors' windows and baselines (lua/watch-*.lua, one call per
// event, shared by every API process and runner) and the holds a response puts on an agent
// (suspended) or a task (paused), which admission checks and queued work waits behind.

import type { Detector, HoldReason, WatchSettings } from '../contract/watch.ts';
import { execAll } from './exec-all.ts';
import { isOfAgent, redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';
import { defineScripts } from './scripts.ts';
import { createWriteBatch } from './write-batch.ts';

/** A detector that fired, with its figures (counts, baseline, the target). */
export interface Trigger {
  detector: Detector;
  figures: string[];
}

export type Admit =
  | { kind: 'ok'; triggers: Trigger[] }
  | { kind: 'held'; code: 'agent_suspended' | 'task_paused'; hold: HoldReason }
  | { kind: 'throttled'; retryAfterS: number; hold: HoldReason };

export interface AdmitInput {
  id: string;
  agentId: string;
  taskId: string | null;
  inputHash: string;
  targets: readonly string[];
  perMinute: number;
  tainted: boolean;
  irreversible: boolean;
}

export interface WatchStore {
  admit(input: AdmitInput, s: WatchSettings): Promise<Admit>;
  result(
    input: { id: string; agentId: string; resultHash: string | null; egressRefusals: number },
    s: WatchSettings,
  ): Promise<Trigger[]>;
  refusal(input: { member: string; agentId: string }, s: WatchSettings): Promise<Trigger[]>;
  cost(
    input: { member: string; agentId: string; taskId: string | null; cost: number },
    s: WatchSettings,
  ): Promise<Trigger[]>;
  /** Why work of this agent or task must wait now, if it must. */
  held(
    agentId: string,
    taskId: string | null,
  ): Promise<{ code: 'agent_suspended' | 'task_paused'; hold: HoldReason } | undefined>;
  suspend(agentId: string, hold: HoldReason): Promise<void>;
  /** Lifts a suspension and a throttle; the detectors count afresh from now. */
  resumeAgent(agentId: string): Promise<boolean>;
  /** Lifts a pause; the agent's detectors count afresh from now (else the old window re-pauses it). */
  resumeTask(taskId: string, agentId: string): Promise<boolean>;
  suspension(agentId: string): Promise<HoldReason | undefined>;
  pause(taskId: string): Promise<HoldReason | undefined>;
  /** Why the agent is throttled, while it is. */
  throttle(agentId: string): Promise<HoldReason | undefined>;
  /** The agent's latest audit ids (newest first), kept as an alert's evidence. */
  remember(agentId: string, auditId: string): Promise<void>;
  recent(agentId: string): Promise<string[]>;
  /** Writes the evidence ids waiting now (shutdown). */
  flush(): Promise<void>;
}

const parse = (raw: string[]): Trigger[] =>
  raw.slice(1).map((t) => {
    const [detector, ...figures] = t.split('|');
    return { detector: detector as Detector, figures };
  });

const NONE = 'none';

export function createWatchStore(redis: RedisClient, prefix: string): WatchStore {
  const scripts = defineScripts(redis);
  const keys = redisKeys(prefix);
  const w = keys.watch;
  const since = async (key: string) => {
    await execAll(
      redis
        .multi()
        .hset(key, 'since', String(Date.now()))
        .pexpire(key, 30 * 86_400_000),
    );
  };

  const recent = createRecentIds(redis);

  return {
    async admit(i, s) {
      const raw = await scripts.watchAdmit(
        {
          suspended: w.suspended(i.agentId),
          paused: keys.agent.task(i.agentId, i.taskId, w.paused),
          throttle: w.throttle(i.agentId),
          throttleRate: w.throttleRate(i.agentId),
          loop: w.loop(i.agentId, i.inputHash),
          rate: w.rate(i.agentId),
          agentSeen: w.agentSeen(i.agentId),
          taskSeen: keys.agent.task(i.agentId, i.taskId, w.taskSeen),
          state: w.agentState(i.agentId),
        },
        {
          id: i.id,
          targets: i.targets,
          perMinute: i.perMinute,
          hasTask: i.taskId !== null && isOfAgent(i.taskId, i.agentId),
          loop: { enabled: s.loop.enabled, repeats: s.loop.repeats, windowMs: s.loop.windowS * 1000 },
          spike: { ...s.spike, bucketMs: s.spike.bucketS * 1000 },
          novelty: s.novelty,
          taintedFlow: { enabled: s.tainted_flow.enabled, tainted: i.tainted, irreversible: i.irreversible },
          throttleFactor: s.throttle.factor,
        },
      );
      if (raw[0] === 'held')
        return { kind: 'held', code: raw[1] as 'agent_suspended' | 'task_paused', hold: JSON.parse(raw[2]!) };
      if (raw[0] === 'throttled') return { kind: 'throttled', retryAfterS: Number(raw[1]), hold: JSON.parse(raw[2]!) };
      return { kind: 'ok', triggers: parse(raw) };
    },

    async result(i, s) {
      const raw = await scripts.watchResult(
        {
          result: w.result(i.agentId, i.resultHash ?? NONE),
          refusals: w.refusals(i.agentId),
          state: w.agentState(i.agentId),
        },
        {
          id: i.id,
          countResult: s.loop.enabled && i.resultHash !== null,
          resultRepeats: s.loop.resultRepeats,
          windowMs: s.loop.windowS * 1000,
          egressRefusals: i.egressRefusals,
          probing: { enabled: s.probing.enabled, refusals: s.probing.refusals, windowMs: s.probing.windowS * 1000 },
        },
      );
      return parse(raw);
    },

    async refusal(i, s) {
      if (!s.probing.enabled) return [];
      const raw = await scripts.watchRefusal(
        { refusals: w.refusals(i.agentId), state: w.agentState(i.agentId) },
        { member: i.member, refusals: s.probing.refusals, windowMs: s.probing.windowS * 1000 },
      );
      return parse(raw);
    },

    async cost(i, s) {
      if (!s.cost.enabled || i.cost <= 0) return [];
      const raw = await scripts.watchCost(
        {
          agentSpend: w.agentSpend(i.agentId),
          taskSpend: keys.agent.task(i.agentId, i.taskId, w.taskSpend),
          agentState: w.agentState(i.agentId),
          taskState: keys.agent.task(i.agentId, i.taskId, w.taskState),
        },
        {
          member: i.member,
          costNanos: Math.round(i.cost * 1e9),
          thresholdNanos: Math.round(s.cost.perWindow * 1e9),
          windowMs: s.cost.windowS * 1000,
          hasTask: i.taskId !== null && isOfAgent(i.taskId, i.agentId),
        },
      );
      return parse(raw);
    },

    async held(agentId, taskId) {
      const [agent, task] = await Promise.all([
        redis.get(w.suspended(agentId)),
        taskId ? redis.get(w.paused(taskId)) : null,
      ]);
      if (agent) return { code: 'agent_suspended', hold: JSON.parse(agent) };
      if (task) return { code: 'task_paused', hold: JSON.parse(task) };
      return undefined;
    },

    async suspend(agentId, hold) {
      await redis.set(w.suspended(agentId), JSON.stringify(hold));
    },

    async resumeAgent(agentId) {
      const lifted = (await redis.del(w.suspended(agentId), w.throttle(agentId))) > 0;
      await since(w.agentState(agentId));
      return lifted;
    },

    async resumeTask(taskId, agentId) {
      const lifted = (await redis.del(w.paused(taskId))) > 0;
      await Promise.all([since(w.taskState(taskId)), since(w.agentState(agentId))]);
      return lifted;
    },

    async suspension(agentId) {
      const raw = await redis.get(w.suspended(agentId));
      return raw ? JSON.parse(raw) : undefined;
    },

    async pause(taskId) {
      const raw = await redis.get(w.paused(taskId));
      return raw ? JSON.parse(raw) : undefined;
    },

    async throttle(agentId) {
      const raw = await redis.get(w.throttle(agentId));
      return raw ? JSON.parse(raw) : undefined;
    },

    remember: (agentId, auditId) =>
      recent.add((batch) => {
        const key = w.recent(agentId);
        batch.set(key, [...(batch.get(key) ?? []), auditId]);
      }),

    flush: () => recent.flush(),

    async recent(agentId) {
      await recent.flush(); // an alert's evidence names what was remembered up to now
      return redis.lrange(w.recent(agentId), 0, 9);
    },
  };
}

/** How long evidence ids wait in memory to be written with the others of that time. */
export const RECENT_COALESCE_MS = 50;

/**
 * The agents' latest audit ids (evidence for alerts), written in batches: two per run, and each
 * batch is one round trip for every agent of that time (plain commands, in the order issued).
 */
const createRecentIds = (redis: RedisClient) =>
  createWriteBatch(
    RECENT_COALESCE_MS,
    () => new Map<string, string[]>(),
    (batch) =>
      Promise.all(
        [...batch].flatMap(([key, ids]) => [
          redis.lpush(key, ...ids),
          redis.ltrim(key, 0, 19),
          redis.expire(key, 86_400),
        ]),
      ),
  );
