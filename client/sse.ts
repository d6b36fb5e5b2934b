// Server-Sent Events from a fetch response body (WHATWG's event-stream format): `id`, `event`,
// `data` (multi-line joined), comments ignored. Bounded: one event's data may not pass `maxBytes`.
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

export async function* readSse(
  body: ReadableStream<Uint8Array>,
  maxBytes = 32 * 1024 * 1024,
): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  let size = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl = buffer.search(/\r\n|\r|\n/);
      while (nl !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (data.length || event) yield { id, event: event || 'message', data: data.join('\n') };
          event = '';
          data = [];
          size = 0;
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'data') {
            size += value.length;
            if (size > maxBytes) throw new Error(`an event of more than ${maxBytes} bytes`);
            data.push(value);
          } else if (field === 'event') event = value;
          else if (field === 'id') id = value;
        }
        nl = buffer.search(/\r\n|\r|\n/);
      }
      if (buffer.length > maxBytes) throw new Error(`a line of more than ${maxBytes} bytes`);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
