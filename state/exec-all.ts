// Runs an ioredis pipeline or MULTI and fails when any command in it failed: `exec()` answers
// per command, so without this a write lost to a Redis blip would look like a success.
import type { ChainableCommander } from 'ioredis';

export async function execAll(chain: ChainableCommander): Promise<unknown[]> {
  const results = await chain.exec();
  if (!results) throw new Error('the Redis transaction was aborted');
  const failed = results.find(([err]) => err);
  if (failed) throw failed[0]!;
  return results.map(([, value]) => value);
}
