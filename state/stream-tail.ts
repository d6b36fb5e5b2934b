// One blocking reader per API process for every event stream its clients follow: a single
// XREAD BLOCK over all followed keys, each from the last entry it handed out, fanned out to the
// followers. A client never holds a Redis connection of its own, and nothing a client does
// (reading slowly, going away) reaches the writers: back-pressure stays in Redis, bounded by
// the streams' caps. A new key interrupts the block (CLIENT UNBLOCK) so it is read at once.
// On a Redis Cluster one XREAD may name keys of one slot only, and a blocked read would hold the
// connection to its node: there the tail reads each slot's keys without blocking, all at once,
// and waits POLL_MS between rounds that found nothing (a new key ends the wait).

import { compareIds, type StreamEntry, toEntry } from './event-streams.ts';
import { hashedPart } from './keys.ts';
import type { RedisClient } from './redis-client.ts';

export type Follower = (entries: readonly StreamEntry[]) => void;

export interface StreamTail {
  /**
   * Calls `follower` with the entries of `key` added after `afterId` as they arrive (an entry may
   * come again if it was read before the follower joined: skip what you have). Returns the
   * unfollow function.
   */
  follow(key: string, afterId: string, follower: Follower): () => void;
  /** Keys followed now (for metrics and tests). */
  size(): number;
  close(): void;
}

const BLOCK_MS = 2000;
const COUNT = 500;
const RETRY_MS = 500;
const POLL_MS = 100;

type Answer = Array<[string, Array<[string, string[]]>]>;

/**
 * `blocking`: a connection of its own (it spends its time in XREAD BLOCK); `control`: any other
 * connection, for the unblock.
 */
export async function createStreamTail(
  blocking: RedisClient,
  control: RedisClient,
  onError: (e: Error) => void = () => {},
): Promise<StreamTail> {
  const keys = new Map<string, { cursor: string; followers: Set<Follower> }>();
  let closed = false;
  const clustered = blocking.isCluster;
  let blockedId: string | undefined = clustered ? undefined : String(await blocking.client('ID'));
  let reading = false;
  let wake: (() => void) | undefined;
  let unblockQueued = false;

  const interrupt = () => {
    if (wake) {
      wake();
      wake = undefined;
      return;
    }
    if (!reading || unblockQueued || !blockedId) return;
    unblockQueued = true;
    queueMicrotask(() => {
      unblockQueued = false;
      // Without it the new key is read within BLOCK_MS anyway.
      control.client('UNBLOCK', blockedId!).catch(() => {});
    });
  };

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (wake === done) wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
    });

  const read = async (names: string[], cursors: string[]): Promise<Answer> => {
    if (!clustered)
      return ((await blocking.xread('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', ...names, ...cursors)) ??
        []) as Answer;
    const slots = new Map<string, number[]>();
    for (const [i, name] of names.entries()) {
      const part = hashedPart(name);
      slots.set(part, [...(slots.get(part) ?? []), i]);
    }
    const answers = await Promise.all(
      [...slots.values()].map(
        async (of) =>
          ((await blocking.xread(
            'COUNT',
            COUNT,
            'STREAMS',
            ...of.map((i) => names[i]!),
            ...of.map((i) => cursors[i]!),
          )) ?? []) as Answer,
      ),
    );
    const found = answers.flat();
    if (found.length === 0) await pause(POLL_MS);
    return found;
  };

  const loop = async () => {
    while (!closed) {
      if (keys.size === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      const names = [...keys.keys()];
      const cursors = names.map((k) => keys.get(k)!.cursor);
      let answer: Answer;
      try {
        reading = true;
        answer = await read(names, cursors);
      } catch (e) {
        if (closed) break;
        onError(e as Error);
        await new Promise((r) => setTimeout(r, RETRY_MS));
        // A reconnect gives the connection a new id.
        if (!clustered) blockedId = await blocking.client('ID').then(String, () => blockedId);
        continue;
      } finally {
        reading = false;
      }
      for (const [key, raw] of answer) {
        const state = keys.get(key);
        if (!state || raw.length === 0) continue;
        const entries = raw.map(toEntry);
        const last = entries.at(-1)!.id;
        if (compareIds(last, state.cursor) > 0) state.cursor = last;
        for (const f of [...state.followers]) {
          try {
            f(entries);
          } catch (e) {
            onError(e as Error);
          }
        }
      }
    }
  };
  const running = loop().catch(onError);

  return {
    follow(key, afterId, follower) {
      let state = keys.get(key);
      if (!state) {
        state = { cursor: afterId, followers: new Set() };
        keys.set(key, state);
        interrupt();
      }
      // A key read already is not read back for a newcomer: it replays what it missed (XRANGE).
      state.followers.add(follower);
      return () => {
        const s = keys.get(key);
        if (!s) return;
        s.followers.delete(follower);
        if (s.followers.size === 0) keys.delete(key);
      };
    },
    size: () => keys.size,
    close() {
      closed = true;
      keys.clear();
      wake?.();
      blocking.disconnect();
      void running;
    },
  };
}
