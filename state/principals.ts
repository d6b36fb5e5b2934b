// Human principals (approvers, auditors): an opaque bearer token each, kept in Redis only as its
// SHA-256, so a copy of Redis reveals no credential.

import { hash, randomBytes } from 'node:crypto';
import type { HumanRole } from '../contract/principal.ts';
import { redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';

export type { HumanRole };

export interface HumanPrincipal {
  id: string;
  name: string;
  role: HumanRole;
  createdAt: string;
}

export const PRINCIPAL_TOKEN_PREFIX = 'sgp_';

export interface PrincipalStore {
  create(input: { name: string; role: HumanRole }): Promise<{ principal: HumanPrincipal; token: string }>;
  /** The principal a token belongs to, or undefined. */
  byToken(token: string): Promise<HumanPrincipal | undefined>;
  /** The principal by id (those created since principals are kept by id), for naming who did what. */
  get(id: string): Promise<HumanPrincipal | undefined>;
}

const digest = (token: string) => hash('sha256', token, 'hex');

export function createPrincipalStore(redis: RedisClient, prefix: string): PrincipalStore {
  const keys = redisKeys(prefix);
  const tokenKey = (token: string) => keys.principalToken(digest(token));
  return {
    async create({ name, role }) {
      const principal: HumanPrincipal = {
        id: `pr_${randomBytes(12).toString('base64url')}`,
        name,
        role,
        createdAt: new Date().toISOString(),
      };
      const token = `${PRINCIPAL_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
      // Two keys in two cluster slots: the record first, so a usable token always names one.
      await redis.set(keys.principal(principal.id), JSON.stringify(principal));
      await redis.set(tokenKey(token), JSON.stringify(principal));
      return { principal, token };
    },
    async byToken(token) {
      const raw = await redis.get(tokenKey(token));
      return raw ? (JSON.parse(raw) as HumanPrincipal) : undefined;
    },
    async get(id) {
      const raw = await redis.get(keys.principal(id));
      return raw ? (JSON.parse(raw) as HumanPrincipal) : undefined;
    },
  };
}
