// DELETE /v1/executions/:id reaches the runner that holds the run, wherever it is, over pub/sub.
import type { Redis } from 'ioredis';
import { redisKeys } from './keys.ts';

const cancelChannel = (prefix: string): string => redisKeys(prefix).execution.cancelChannel;

export async function publishCancel(redis: Redis, prefix: string, id: string): Promise<void> {
  await redis.publish(cancelChannel(prefix), id);
}

export async function subscribeCancels(
  subscriber: Redis,
  prefix: string,
  onCancel: (id: string) => void,
): Promise<void> {
  const channel = cancelChannel(prefix);
  subscriber.on('message', (ch: string, id: string) => {
    if (ch === channel) onCancel(id);
  });
  await subscriber.subscribe(channel);
}
