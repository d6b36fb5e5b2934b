// DELETE /v1/executions/:id reaches the runner that holds the run, wherever it is, over pub/sub.

import { redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';

const cancelChannel = (prefix: string): string => redisKeys(prefix).execution.cancelChannel;

export async function publishCancel(redis: RedisClient, prefix: string, id: string): Promise<void> {
  await redis.publish(cancelChannel(prefix), id);
}

export async function subscribeCancels(
  subscriber: RedisClient,
  prefix: string,
  onCancel: (id: string) => void,
): Promise<void> {
  const channel = cancelChannel(prefix);
  subscriber.on('message', (ch: string, id: string) => {
    if (ch === channel) onCancel(id);
  });
  await subscriber.subscribe(channel);
}
