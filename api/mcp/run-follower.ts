// A run's output over MCP while it runs: its event stream (state/event-streams.ts, written by the
// runner) read from the start, then followed live through the process's one shared tail, sent on
// the call's own response stream as log notifications (`notifications/message`, logger
// `stdout`/`stderr`) and, when the client asked for progress, as progress notifications. Ends at
// the run's `final` event or when the call stops following.
import { compareIds, type EventStreamReader, type StreamEntry } from '../../state/event-streams.ts';
import type { Keys } from '../../state/keys.ts';
import type { StreamTail } from '../../state/stream-tail.ts';
import type { RunFollower } from './mcp-server.ts';

/** Text of one progress message (the log notification carries the whole chunk). */
const PROGRESS_TEXT = 200;

export function runFollower(tail: StreamTail, reader: EventStreamReader, keys: Keys): RunFollower {
  return async (executionId, _caller, notify, progressToken, signal) => {
    const key = keys.execution.stream(executionId);
    let last = '0-0';
    let progress = 0;
    let sending: Promise<void> = Promise.resolve();
    let ended = false;
    let finished!: () => void;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    // Notifications go out one after another, in the stream's order.
    const send = (method: string, params: Record<string, unknown>) => {
      sending = sending.then(() => notify({ method, params })).catch(() => {});
    };
    const tell = (message: string) => {
      if (progressToken !== undefined) send('notifications/progress', { progressToken, progress: ++progress, message });
    };
    const deliver = (entries: readonly StreamEntry[]) => {
      for (const e of entries) {
        if (ended || compareIds(e.id, last) <= 0) continue;
        last = e.id;
        const data = JSON.parse(e.data) as Record<string, unknown>;
        if (e.event === 'chunk') {
          const stream = data.stream === 'stderr' ? 'stderr' : 'stdout';
          const text = String(data.data ?? '');
          send('notifications/message', {
            level: stream === 'stderr' ? 'warning' : 'info',
            logger: stream,
            data: text,
          });
          tell(`${stream}: ${text.slice(0, PROGRESS_TEXT)}`);
        } else if (e.event === 'status') {
          tell(`execution ${executionId} is ${String(data.status)}`);
        } else if (e.event === 'truncated') {
          send('notifications/message', {
            level: 'notice',
            logger: 'sandgate',
            data: 'output truncated at the profile cap',
          });
        } else if (e.event === 'final') {
          ended = true;
          finished();
        }
      }
    };
    const stop = () => {
      ended = true;
      finished();
    };
    signal.addEventListener('abort', stop, { once: true });
    let held: StreamEntry[] = [];
    let replaying = true;
    const unfollow = tail.follow(key, '0-0', (entries) => {
      if (replaying) held.push(...entries);
      else deliver(entries);
    });
    try {
      // What was written before the tail joined, then what it held meanwhile, then live.
      for (let page = 0; page < 100 && !ended; page++) {
        const entries = await reader.range(key, last, 500);
        deliver(entries);
        if (entries.length < 500) break;
      }
      replaying = false;
      deliver(held);
      held = [];
      await done;
    } finally {
      unfollow();
      signal.removeEventListener('abort', stop);
      await sending;
    }
  };
}
