// Agents live in Redis so every API process sees a revocation on the very next request.
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { Agent, AgentLimits, type Grants } from '../../contract/agent.ts';

export interface AgentStore {
  create(input: { name: string; grants: Grants; limits?: Partial<AgentLimits> | undefined }): Promise<Agent>;
  get(id: string): Promise<Agent | undefined>;
}

export function createAgentStore(redis: Redis, prefix: string): AgentStore {
  const key = (id: string) => `${prefix}:agent:${id}`;
  return {
    async create({ name, grants, limits }) {
      const agent: Agent = {
        id: `ag_${randomBytes(12).toString('base64url')}`,
        name,
        grants,
        limits: AgentLimits.parse(limits ?? {}),
        createdAt: new Date().toISOString(),
        revokedAt: null,
      };
      await redis.set(key(agent.id), JSON.stringify(agent));
      return agent;
    },
    async get(id) {
      const raw = await redis.get(key(id));
      return raw ? Agent.parse(JSON.parse(raw)) : undefined;
    },
  };
}
