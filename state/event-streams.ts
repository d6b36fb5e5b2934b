// The event stream of an execution or an action: one Redis Stream per record (capped, expiring
// with the record), read back as Server-Sent Events from any API process. Each entry is
// `e` (status | chunk | truncated | final) and `d` (its JSON); the entry's id is the event's
// cursor (SSE `id:`, Last-Event-ID). Writing never waits on the work it describes and never
// fails it: every write is pipelined, bounded by a deadline, and a failure is only reported.
import { StringDecoder } from 'node:string_decoder';
import { LATE, within } from '../contract/within.ts';
import { pairsOf, type RedisClient } from './redis-client.ts';

export type StreamEventType = 'status' | 'chunk' | 'truncated' | 'final';

export interface StreamEntry {
  /** The Redis Stream entry id (`<ms>-<n>`): the event's cursor. */
  id: string;
  event: StreamEventType;
  /** The event's body, JSON. */
  data: string;
}

/**
 * Entries kept per stream (XADD MAXLEN ~). Chunks are coalesced (at most one per FLUSH_MS per
 * stream name, larger ones per FLUSH_BYTES) and stop at the output cap, so a run of the longest
 * profile stays well below it: nothing a client may still ask for is trimmed.
 */
export const STREAM_MAX_LEN = 10_000;
/** Output written within this long is sent as one chunk. */
export const FLUSH_MS = 4;
/** …unless this many bytes are waiting already. */
export const FLUSH_BYTES = 16 * 1024;
/** How long a write may take before it is reported as failed (it is never retried). */
const WRITE_DEADLINE_MS = 2000;

/** One run's output as it arrives: coalesced into chunks `{seq, stream, data}`. */
export interface OutputPublisher {
  write(fd: 1 | 2, data: Buffer | string): void;
  /** The output was cut (its cap): what is buffered goes out, then one `truncated` event. */
  truncated(): void;
  /** Sends what is still buffered; call before the run's final event is written. */
  close(): void;
}

export interface EventStreamWriter {
  /** Appends one event; resolves once written or given up (reported), never rejects. */
  append(key: string, event: StreamEventType, body: unknown): Promise<void>;
  /** A coalescing publisher of one run's output into `key`. */
  output(key: string): OutputPublisher;
}

export interface EventStreamReader {
  /** Up to `count` entries after `afterId` (exclusive), oldest first. */
  range(key: string, afterId: string, count: number): Promise<StreamEntry[]>;
  /** The newest entry, if any. */
  last(key: string): Promise<StreamEntry | undefined>;
}

type RawEntry = [id: string, fields: string[]];

export const toEntry = ([id, fields]: RawEntry): StreamEntry => {
  const f = pairsOf(fields);
  return { id, event: (f.e ?? 'status') as StreamEventType, data: f.d ?? 'null' };
};

/** Orders two entry ids (`<ms>-<n>`): negative, zero or positive. */
export function compareIds(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('-').map(Number);
  const [bm = 0, bn = 0] = b.split('-').map(Number);
  return am - bm || an - bn;
}

/** A cursor a client may send (Last-Event-ID, `?after=`): `0` (from the start) or an entry id. */
export function parseCursor(raw: string): string | undefined {
  if (raw === '0') return '0-0';
  return /^\d{1,15}-\d{1,15}$/.test(raw) ? raw : undefined;
}

export function createEventStreamWriter(
  redis: RedisClient,
  ttlSeconds: number,
  onError: (e: Error, key: string) => void = () => {},
): EventStreamWriter {
  const send = async (key: string, events: ReadonlyArray<[StreamEventType, string]>): Promise<void> => {
    // Plain commands, not a pipeline of their own: the auto-pipelining connection sends them with
    // whatever else this tick writes (one socket write), in the order they were issued.
    const written = Promise.all([
      ...events.map(([e, d]) => redis.xadd(key, 'MAXLEN', '~', STREAM_MAX_LEN, '*', 'e', e, 'd', d)),
      redis.expire(key, ttlSeconds),
    ]);
    try {
      if ((await within(written, WRITE_DEADLINE_MS)) === LATE)
        onError(new Error(`stream write took over ${WRITE_DEADLINE_MS} ms`), key);
    } catch (e) {
      onError(e as Error, key);
    }
  };

  return {
    append: (key, event, body) => send(key, [[event, JSON.stringify(body)]]),

    output(key) {
      const decoders = { 1: new StringDecoder('utf8'), 2: new StringDecoder('utf8') };
      // Consecutive writes to the same stream name merge; a switch of name starts a new chunk.
      let buffered: Array<{ fd: 1 | 2; data: string }> = [];
      let bytes = 0;
      let seq = 0;
      let timer: NodeJS.Timeout | undefined;
      let closed = false;
      let cut = false;
      const flush = (extra: Array<[StreamEventType, string]> = []) => {
        clearTimeout(timer);
        timer = undefined;
        const events: Array<[StreamEventType, string]> = buffered.map(({ fd, data }) => [
          'chunk',
          JSON.stringify({ seq: ++seq, stream: fd === 1 ? 'stdout' : 'stderr', data }),
        ]);
        buffered = [];
        bytes = 0;
        events.push(...extra);
        // Fire and forget: on one connection, writes land in the order they were sent.
        if (events.length) void send(key, events);
      };
      const add = (fd: 1 | 2, text: string) => {
        if (!text) return;
        const last = buffered.at(-1);
        if (last?.fd === fd) last.data += text;
        else buffered.push({ fd, data: text });
        bytes += text.length;
        if (bytes >= FLUSH_BYTES) flush();
        else timer ??= setTimeout(flush, FLUSH_MS);
      };
      return {
        write(fd, data) {
          if (closed) return;
          // A character split across two writes goes out whole, with the second.
          add(fd, typeof data === 'string' ? data : decoders[fd].write(data));
        },
        truncated() {
          if (closed || cut) return;
          cut = true; // said once; a note the engine adds after the cut still streams
          flush([['truncated', JSON.stringify({ truncated: true })]]);
        },
        close() {
          if (closed) return;
          closed = true;
          add(1, decoders[1].end());
          add(2, decoders[2].end());
          flush();
        },
      };
    },
  };
}

export function createEventStreamReader(redis: RedisClient): EventStreamReader {
  return {
    async range(key, afterId, count) {
      const raw = (await redis.xrange(key, `(${afterId}`, '+', 'COUNT', count)) as RawEntry[];
      return raw.map(toEntry);
    },
    async last(key) {
      const raw = (await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as RawEntry[];
      return raw[0] && toEntry(raw[0]);
    },
  };
}
