// Agents live in Redis so every API process sees a revocation on the very next request.

import { randomBytes } from 'node:crypto';
import { Agent, AgentLimits, type Grants } from '../contract/agent.ts';
import { deepFreeze } from '../contract/deep-freeze.ts';
import type { WatchOverrides } from '../contract/watch.ts';
import { execAll } from './exec-all.ts';
import { redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';

export interface AgentStore {
  create(input: {
    name: string;
    grants: Grants;
    limits?: Partial<AgentLimits> | undefined;
    watch?: WatchOverrides | undefined;
  }): Promise<Agent>;
  get(id: string): Promise<Agent | undefined>;
  /**
   * The agent as this process read it last (no Redis call): a start, never a verdict. A caller
   * that starts on it reads the agent again beside its first step (see api/auth.ts).
   */
  known(id: string): Agent | undefined;
  /** The newest agents first (the index holds agents created since it exists). */
  list(limit: number): Promise<Agent[]>;
  /** Marks the agent revoked (the admission marker and the record, in one transaction). */
  revoke(id: string): Promise<Agent | undefined>;
  /** Lifts a revocation and starts a new token generation: tokens minted before stay invalid. */
  enable(id: string): Promise<Agent | undefined>;
}

export function createAgentStore(redis: RedisClient, prefix: string): AgentStore {
  const keys = redisKeys(prefix);
  const key = keys.agent.record;
  /** The agents last read, as read and parsed: the same text gives the same (frozen) object. */
  const parsed = new Map<string, { raw: string; agent: Agent }>();
  /**
   * An agent made before the cluster layout, carried over on its first read: the revoked marker
   * first (a revoked agent is never admissible in between), then the record, both only where the
   * new key is still missing (a racing reader or a later change wins).
   */
  const carryOver = async (id: string): Promise<string | null> => {
    const old = await redis.get(keys.legacyAgent.record(id));
    if (!old) return null;
    const revokedAt = await redis.get(keys.legacyAgent.revoked(id));
    if (revokedAt) await redis.set(keys.agent.revoked(id), revokedAt, 'NX');
    await redis.set(key(id), old, 'NX');
    return redis.get(key(id));
  };
  return {
    async create({ name, grants, limits, watch }) {
      const agent: Agent = {
        id: `ag_${randomBytes(12).toString('base64url')}`,
        name,
        grants,
        limits: AgentLimits.parse(limits ?? {}),
        ...(watch && { watch }),
        createdAt: new Date().toISOString(),
        revokedAt: null,
        tokenGeneration: 0,
      };
      // The global list first (its own cluster slot): until the record exists the entry names
      // nothing and the list skips it; a failure in between leaves only that entry.
      await redis.zadd(keys.agent.all, Date.parse(agent.createdAt), agent.id);
      await redis.set(key(agent.id), JSON.stringify(agent));
      return agent;
    },
    async get(id) {
      const raw = (await redis.get(key(id))) ?? (await carryOver(id));
      if (!raw) return undefined;
      // Read on every request (revocation is never cached); parsed only when it changed.
      const known = parsed.get(id);
      if (known?.raw === raw) return known.agent;
      const agent = deepFreeze(Agent.parse(JSON.parse(raw)));
      if (parsed.size >= 10_000) parsed.clear();
      parsed.set(id, { raw, agent });
      return agent;
    },
    known: (id) => parsed.get(id)?.agent,

    async list(limit) {
      const ids = await redis.zrevrange(keys.agent.all, 0, limit - 1);
      if (ids.length === 0) return [];
      // One GET per agent (each in its own slot; pipelined by the client), not one MGET.
      const found = await Promise.all(ids.map((id) => this.get(id)));
      return found.filter((a): a is Agent => a !== undefined);
    },
    async revoke(id) {
      const agent = await this.get(id);
      if (!agent) return undefined;
      const revoked = { ...agent, revokedAt: agent.revokedAt ?? new Date().toISOString() };
      await execAll(redis.multi().set(keys.agent.revoked(id), revoked.revokedAt).set(key(id), JSON.stringify(revoked)));
      return revoked;
    },
    async enable(id) {
      const agent = await this.get(id);
      if (!agent) return undefined;
      const enabled = { ...agent, revokedAt: null, tokenGeneration: agent.tokenGeneration + 1 };
      await execAll(redis.multi().set(key(id), JSON.stringify(enabled)).del(keys.agent.revoked(id)));
      return enabled;
    },
  };
}
