// Serves a record's event stream (state/event-streams.ts) as Server-Sent Events: what the client
// missed after its cursor (Last-Event-ID, else `?after=`) from XRANGE, then the live tail from the
// process's one shared reader (state/stream-tail.ts), ending with the `final` event. `id:` is the
// Redis Stream entry id, so a reconnect with Last-Event-ID gets each event exactly once. A client
// that does not keep up is dropped once its unsent bytes pass a cap (it reconnects with its
// cursor); nothing it does reaches the run. Heartbeat comments keep proxies and the server's idle
// timeout from closing a quiet stream; the response still ends with the record, the client, a
// maximum life, or the server.
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { SandgateError } from '../contract/errors.ts';
import { compareIds, type EventStreamReader, parseCursor, type StreamEntry } from '../state/event-streams.ts';
import type { StreamTail } from '../state/stream-tail.ts';

export interface EventStreamServer {
  /** Starts the SSE response (hijacks the reply); resolves when it has ended. */
  serve(request: FastifyRequest, reply: FastifyReply, opts: ServeOptions): Promise<void>;
  /** Ends every open stream (server shutdown); clients reconnect elsewhere with their cursor. */
  close(): void;
  /** Open streams now. */
  open(): number;
}

export interface ServeOptions {
  key: string;
  /** The client's cursor: `0-0` for everything. */
  after: string;
  status?: number;
  headers?: Record<string, string>;
  /**
   * The record when it has ended (else undefined): served as `final` when the stream has none
   * (expired, or a write lost to a Redis blip) once the record has been over for a while.
   */
  finalRecord(): Promise<{ record: unknown; endedAt: string | null } | undefined>;
}

export interface EventStreamOptions {
  tail: StreamTail;
  reader: EventStreamReader;
  heartbeatMs?: number;
  /** Unsent bytes a client may have before it is dropped. */
  bufferCapBytes?: number;
  /** The longest a response lasts; the client then reconnects with its cursor. */
  maxLifeMs?: number;
  onError?: (e: Error) => void;
}

/** Replay is read this many entries at a time, each page sent once the socket has drained. */
const PAGE = 64;
/** A record over this long without a `final` in its stream gets one made from the record. */
const FINAL_GRACE_MS = 5000;

/** The client's cursor: the Last-Event-ID header wins (a browser's reconnect), else `?after=`. */
export function cursorOf(request: FastifyRequest, after: string | undefined): string {
  const header = request.headers['last-event-id'];
  const raw = (Array.isArray(header) ? header[0] : header) ?? after;
  if (raw === undefined || raw === '') return '0-0';
  const cursor = parseCursor(raw.trim());
  if (!cursor)
    throw new SandgateError(
      'invalid_cursor',
      `${header !== undefined ? 'Last-Event-ID' : 'after'} must be 0 or an event id as sent in "id:" (<ms>-<n>), got ${JSON.stringify(raw.slice(0, 40))}`,
    );
  return cursor;
}

const frame = (e: StreamEntry) => `id: ${e.id}\nevent: ${e.event}\ndata: ${e.data}\n\n`;

/** `sandgate_event_streams_open`: SSE responses this process is serving now. */
export function registerEventStreamMetrics(registry: Registry, server: EventStreamServer): void {
  new Gauge({
    name: 'sandgate_event_streams_open',
    help: 'Event streams (SSE) this API process is serving now',
    registers: [registry],
    collect() {
      this.set(server.open());
    },
  });
}

export function createEventStreamServer(opts: EventStreamOptions): EventStreamServer {
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const capBytes = opts.bufferCapBytes ?? 1024 * 1024;
  const maxLifeMs = opts.maxLifeMs ?? 30 * 60_000;
  const openStreams = new Set<() => void>();

  async function serve(request: FastifyRequest, reply: FastifyReply, o: ServeOptions): Promise<void> {
    // A client that has the final event already: 204, which also tells an EventSource to stop.
    const newest = await opts.reader.last(o.key);
    if (newest?.event === 'final' && compareIds(o.after, newest.id) >= 0) return void reply.code(204).send();
    reply.hijack();
    const res: ServerResponse = reply.raw;
    const socket = request.raw.socket;
    // The stream outlives the server's idle timeout (heartbeats keep it busy) and sends each
    // event as one small packet at once.
    socket.setTimeout(0);
    socket.setNoDelay(true);
    res.writeHead(o.status ?? 200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...o.headers,
    });
    res.write(': sandgate event stream\nretry: 1000\n\n');

    let last = o.after;
    let replaying = true;
    let held: StreamEntry[] = [];
    let ended = false;
    let sawAny = false;
    let finished!: () => void;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });

    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      clearTimeout(life);
      unfollow();
      openStreams.delete(end);
      if (!res.writableEnded) res.end();
      finished();
    };
    const deliver = (entries: readonly StreamEntry[]) => {
      if (ended) return;
      // One write per batch: one packet (no Nagle delay) for what one read brought.
      let out = '';
      let final = false;
      for (const e of entries) {
        if (compareIds(e.id, last) <= 0) continue;
        sawAny = true;
        last = e.id;
        out += frame(e);
        if (e.event === 'final') {
          final = true;
          break;
        }
      }
      if (out) res.write(out);
      if (final) return end();
      // A client that cannot keep up with the live tail is let go; it reconnects with
      // Last-Event-ID. (Its replay waits for the socket instead: it is read as it is sent.)
      if (!replaying && res.writableLength > capBytes) {
        res.destroy();
        end();
      }
    };
    /** `graceMs`: how long the record must have been over (its own `final` may be on its way). */
    const synthesizeFinal = async (graceMs = FINAL_GRACE_MS) => {
      const f = await o.finalRecord().catch(() => undefined);
      if (ended || !f) return;
      const endedMs = f.endedAt ? Date.parse(f.endedAt) : 0;
      if (Date.now() - endedMs < graceMs) return;
      // No id: the client's cursor stays where the stream is.
      res.write(`event: final\ndata: ${JSON.stringify(f.record)}\n\n`);
      end();
    };

    openStreams.add(end);
    const unfollow = opts.tail.follow(o.key, o.after, (entries) => {
      if (replaying) held.push(...entries);
      else deliver(entries);
    });
    const heartbeat = setInterval(() => {
      res.write(': heartbeat\n\n');
      void synthesizeFinal();
    }, heartbeatMs);
    const life = setTimeout(end, maxLifeMs);
    res.once('close', end);

    try {
      // Replay, page by page, waiting for the socket to drain between pages.
      for (let page = 0; page < 10_000 && !ended; page++) {
        const entries = await opts.reader.range(o.key, last, PAGE);
        deliver(entries);
        if (entries.length < PAGE) break;
        if (res.writableNeedDrain) await Promise.race([new Promise((r) => res.once('drain', r)), done]);
      }
      // The live tail starts once the replay has left this process (its cap is for the tail).
      if (res.writableNeedDrain) await Promise.race([new Promise((r) => res.once('drain', r)), done]);
      replaying = false;
      const live = held;
      held = [];
      deliver(live);
      // Nothing after the cursor, and the record has ended: its final event is made from the
      // record, at once when there is no stream at all (expired, or every write lost).
      if (!sawAny && !ended) await synthesizeFinal(newest === undefined ? 0 : FINAL_GRACE_MS);
    } catch (e) {
      opts.onError?.(e as Error);
      end();
    }
    return done;
  }

  return {
    serve,
    close() {
      for (const end of [...openStreams]) end();
    },
    open: () => openStreams.size,
  };
}
