// The MCP event log: every message the MCP endpoint sends on a response stream is appended to a
// Redis Stream of its own (capped, expiring), and its event id names the stream and the entry.
// A client whose stream broke resumes it with Last-Event-ID on any API process: that process
// reads what it missed from here and follows the stream until the response has been sent.

import { execAll } from './exec-all.ts';
import { redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';

export interface McpEvent {
  eventId: string;
  /** The JSON-RPC message; `{}` for the SDK's priming event. */
  message: Record<string, unknown>;
}

export interface McpEventLog {
  /** Appends a message and returns its event id (`<stream id>_<entry id>`). */
  append(agentId: string, streamId: string, message: object): Promise<string>;
  /** The stream an event id belongs to, or undefined when it is not one of ours. */
  streamOf(eventId: string): string | undefined;
  /** The agent's events after `eventId` on the same stream, at most `limit`. */
  after(agentId: string, eventId: string, limit: number): Promise<McpEvent[]>;
  /** Whether the agent has this stream (not expired, not another agent's). */
  exists(agentId: string, streamId: string): Promise<boolean>;
}

/** Most entries kept per stream: a response and the notifications of one call before it. */
export const MCP_EVENTS_MAX = 2000;
const EVENT_ID = /^([A-Za-z0-9-]{1,64})_(\d{1,20}-\d{1,20})$/;

export function createMcpEventLog(redis: RedisClient, prefix: string, ttlSeconds: number): McpEventLog {
  const keys = redisKeys(prefix);
  return {
    async append(agentId, streamId, message) {
      const key = keys.mcpEvents(agentId, streamId);
      const [entryId] = (await execAll(
        redis
          .multi()
          .xadd(key, 'MAXLEN', '~', String(MCP_EVENTS_MAX), '*', 'm', JSON.stringify(message))
          .expire(key, ttlSeconds),
      )) as [string, number];
      return `${streamId}_${entryId}`;
    },
    streamOf(eventId) {
      return EVENT_ID.exec(eventId)?.[1];
    },
    async exists(agentId, streamId) {
      return (await redis.exists(keys.mcpEvents(agentId, streamId))) === 1;
    },
    async after(agentId, eventId, limit) {
      const m = EVENT_ID.exec(eventId);
      if (!m) return [];
      const [, streamId, entryId] = m as unknown as [string, string, string];
      const entries = await redis.xrange(keys.mcpEvents(agentId, streamId), `(${entryId}`, '+', 'COUNT', limit);
      return entries.map(([id, fields]) => ({
        eventId: `${streamId}_${id}`,
        message: JSON.parse(fields[1] ?? '{}') as Record<string, unknown>,
      }));
    },
  };
}
