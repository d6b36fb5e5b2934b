// A Server-Sent Events client over real HTTP (fetch), recording when each event arrived: for the
// streaming tests and the stream benchmark.

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
  /** performance.now() when the event was complete at the client. */
  at: number;
}

export interface SseAnswer {
  status: number;
  headers: Headers;
  events: SseEvent[];
  /** The body when the answer was not an event stream (an error). */
  body: string;
  /** The stream ended by the server (not cut by `stopAfter` or the deadline). */
  ended: boolean;
  /** Comment lines received (`: heartbeat`, the opening line). */
  comments: string[];
}

export interface SseOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Disconnects once this returns true for an event (it is kept). */
  stopAfter?: (e: SseEvent, all: readonly SseEvent[]) => boolean;
  onEvent?: (e: SseEvent) => void;
  timeoutMs?: number;
  /** Waits this long after the headers before reading anything (a slow reader). */
  readAfterMs?: number;
}

/** Parses complete SSE blocks off `buffer`; returns the rest. */
function parseBlocks(buffer: string, out: (e: Omit<SseEvent, 'at'>) => void, comments: string[]): string {
  for (;;) {
    const end = buffer.indexOf('\n\n');
    if (end === -1) return buffer;
    const block = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    let id: string | undefined;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments.push(line.slice(1).trim());
      if (line.startsWith(':') || line === '') continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) out({ id, event, data: data.join('\n') });
  }
}

export async function readSse(url: string, opts: SseOptions = {}): Promise<SseAnswer> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('sse deadline')), opts.timeoutMs ?? 30_000);
  try {
    const res = await fetch(url, {
      method: opts.method ?? 'GET',
      headers: {
        accept: 'text/event-stream',
        ...(opts.body !== undefined && { 'content-type': 'application/json' }),
        ...opts.headers,
      },
      ...(opts.body !== undefined && { body: JSON.stringify(opts.body) }),
      signal: controller.signal,
    });
    const events: SseEvent[] = [];
    const comments: string[] = [];
    if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
      return { status: res.status, headers: res.headers, events, body: await res.text(), ended: true, comments };
    }
    if (opts.readAfterMs) await new Promise((r) => setTimeout(r, opts.readAfterMs));
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let stopped = false;
    try {
      for (let i = 0; i < 1_000_000; i++) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer = parseBlocks(
          buffer + decoder.decode(value, { stream: true }),
          (e) => {
            if (stopped) return;
            const ev = { ...e, at: performance.now() };
            events.push(ev);
            opts.onEvent?.(ev);
            if (opts.stopAfter?.(ev, events)) stopped = true;
          },
          comments,
        );
        if (stopped) {
          controller.abort(new Error('client disconnects'));
          break;
        }
      }
    } catch (e) {
      // A server that drops a slow reader may reset the connection: what arrived still counts.
      if (!stopped && !opts.readAfterMs) throw e;
    }
    return { status: res.status, headers: res.headers, events, body: '', ended: !stopped, comments };
  } finally {
    clearTimeout(timer);
  }
}

/** The chunks of an event list, parsed. */
export const chunksOf = (events: readonly SseEvent[]) =>
  events
    .filter((e) => e.event === 'chunk')
    .map((e) => ({ ...(JSON.parse(e.data) as { seq: number; stream: string; data: string }), id: e.id, at: e.at }));
