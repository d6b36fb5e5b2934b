// Final-status notifications for `?wait=true`: the status change publishes in the same Lua
// script that makes it, and one subscriber connection per process fans out to the waiters.

import type { ExecutionStatus } from '../contract/execution.ts';
import type { RedisClient } from './redis-client.ts';

export interface RecordEvents<S extends string = ExecutionStatus> {
  /** Resolves with the final status, or undefined when `timeoutMs` passes first. */
  waitForFinal(id: string, timeoutMs: number): { done: Promise<S | undefined>; cancel(): void };
  onFinal(listener: (id: string, status: S) => void): void;
  close(): Promise<void>;
}

/** Works for any record kind whose transitions publish `<id> <status>` (executions, actions). */
export async function createRecordEvents<S extends string = ExecutionStatus>(
  subscriber: RedisClient,
  channel: string,
): Promise<RecordEvents<S>> {
  const waiters = new Map<string, Set<(s: S | undefined) => void>>();
  const listeners: Array<(id: string, status: S) => void> = [];
  subscriber.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    const [id, status] = message.split(' ') as [string, S];
    for (const l of listeners) l(id, status);
    const set = waiters.get(id);
    if (!set) return;
    waiters.delete(id);
    for (const resolve of set) resolve(status);
  });
  await subscriber.subscribe(channel);

  return {
    waitForFinal(id, timeoutMs) {
      let resolveFn!: (s: S | undefined) => void;
      const done = new Promise<S | undefined>((resolve) => {
        resolveFn = resolve;
      });
      const set = waiters.get(id) ?? new Set();
      waiters.set(id, set);
      const cancel = () => {
        clearTimeout(timer);
        set.delete(settle);
        if (set.size === 0 && waiters.get(id) === set) waiters.delete(id);
        resolveFn(undefined);
      };
      const settle = (s: S | undefined) => {
        clearTimeout(timer);
        resolveFn(s);
      };
      const timer = setTimeout(cancel, timeoutMs);
      set.add(settle);
      return { done, cancel };
    },
    onFinal(listener) {
      listeners.push(listener);
    },
    async close() {
      for (const set of waiters.values()) for (const r of set) r(undefined);
      waiters.clear();
      subscriber.disconnect();
    },
  };
}
