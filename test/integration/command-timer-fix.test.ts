// state/command-timer-fix.ts replaces ioredis's Command._clearTimers with one that leaves an
// answered command's shape alone (undefined, not delete). Against a real Redis: answered commands
// keep their hidden class and hold no timer, and a command past its deadline still fails.
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { clearTimersSource, installCommandTimerFix } from '../../state/command-timer-fix.ts';
import { createRedisClient } from '../../state/redis-client.ts';
import { REDIS_URL } from '../helpers/sandgate.ts';

const require = createRequire(import.meta.url);
const Command = require('ioredis/built/Command.js').default;
const redis = createRedisClient(REDIS_URL, { enableAutoPipelining: true, commandTimeout: 200 });
const key = `test:command-timer-fix:${process.pid}`;
afterAll(async () => {
  await redis.del(key);
  redis.disconnect();
});

describe('the command timer fix', () => {
  it('is installed for the ioredis this service ships with', () => {
    expect(installCommandTimerFix()).toBe(true);
    expect(clearTimersSource(Command.prototype)).not.toContain('delete');
  });

  it('leaves an answered command without its timer and without deleted properties', async () => {
    await redis.ping(); // connected: nothing below waits in the offline queue (sent twice)
    const sent = new Set<unknown>();
    const client = redis as unknown as { sendCommand(command: unknown, stream?: unknown): unknown };
    const original = client.sendCommand;
    client.sendCommand = function (this: unknown, command: unknown, stream?: unknown) {
      sent.add(command);
      return original.call(this, command, stream);
    };
    try {
      expect(await redis.set(key, '1')).toBe('OK');
      expect(await redis.get(key)).toBe('1');
    } finally {
      client.sendCommand = original;
    }
    const ours = ([...sent] as Array<Record<string, unknown>>).filter((c) => c.name === 'set' || c.name === 'get');
    expect(ours).toHaveLength(2);
    for (const command of ours) {
      // The property is there (set to undefined), not deleted: the object kept its shape.
      expect(Object.hasOwn(command, '_commandTimeoutTimer')).toBe(true);
      expect(command._commandTimeoutTimer).toBeUndefined();
    }
  });

  it('still fails a command past its deadline', async () => {
    // BLPOP on an empty list waits 1 s on the server; the 200 ms deadline ends it first. On a
    // connection of its own, which stays blocked for that second.
    const blocked = createRedisClient(REDIS_URL, { commandTimeout: 200 });
    try {
      await expect(blocked.blpop(`${key}:empty`, 1)).rejects.toThrow('Command timed out');
    } finally {
      blocked.disconnect();
    }
  });
});
