// Live runner processes, as heartbeat keys with a TTL: the Docker reaper removes another runner's
// containers only once that runner's key has expired (it crashed or stopped).

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';

export interface RunnerRegistry {
  readonly id: string;
  isAlive(id: string): Promise<boolean>;
  stop(): Promise<void>;
}

export async function registerRunner(redis: RedisClient, prefix: string, ttlMs = 30_000): Promise<RunnerRegistry> {
  const id = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const key = redisKeys(prefix).runner;
  const beat = () => redis.set(key(id), String(Date.now()), 'PX', ttlMs);
  await beat();
  const timer = setInterval(() => void beat().catch(() => {}), Math.floor(ttlMs / 3));
  timer.unref();
  return {
    id,
    async isAlive(runner) {
      return (await redis.exists(key(runner))) === 1;
    },
    async stop() {
      clearInterval(timer);
      await redis.del(key(id)).catch(() => {});
    },
  };
}
