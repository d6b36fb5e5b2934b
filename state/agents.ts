// Agents live in Redis so every API process sees a revocation on the very next request.

import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Agent, AgentLimits, type Grants } from '../contract/agent.ts';
import type { WatchOverrides } from '../contract/watch.ts';
import { execAll } from './exec-all.ts';
import { redisKeys } from './keys.ts';

export interface AgentStore {
  create(input: {
    name: string;
    grants: Grants;
    limits?: Partial<AgentLimits> | undefined;
    watch?: WatchOverrides | undefined;
  }): Promise<Agent>;
  get(id: string): Promise<Agent | undefined>;
  /** The newest agents first (the index holds agents created since it exists). */
  list(limit: number): Promise<Agent[]>;
  /** Marks the agent revoked (the admission marker and the record, in one transaction). */
  revoke(id: string): Promise<Agent | undefined>;
  /** Lifts a revocation and starts a new token generation: tokens minted before stay invalid. */
  enable(id: string): Promise<Agent | undefined>;
}

export function createAgentStore(redis: Redis, prefix: string): AgentStore {
  const keys = redisKeys(prefix);
  const key = keys.agent.record;
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
      await execAll(
        redis
          .multi()
          .set(key(agent.id), JSON.stringify(agent))
          .zadd(keys.agent.all, Date.parse(agent.createdAt), agent.id),
      );
      return agent;
    },
    async get(id) {
      const raw = await redis.get(key(id));
      return raw ? Agent.parse(JSON.parse(raw)) : undefined;
    },
    async list(limit) {
      const ids = await redis.zrevrange(keys.agent.all, 0, limit - 1);
      if (ids.length === 0) return [];
      const raw = await redis.mget(ids.map(key));
      return raw.flatMap((r) => (r ? [Agent.parse(JSON.parse(r))] : []));
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
