// A batch's durable write to the chain file (O_DSYNC: durable when the write returns).
//
// On the event loop while the disk answers fast: one write(2) of a few KB that returns in
// ~0.2 ms, with no round trip to libuv's thread pool and back (two thread wake-ups, ~0.15 ms of a
// run's latency on a busy 2-core machine, more than the write itself). A write slower than
// `onLoopMaxMs` sends the writes after it to the thread pool for `offLoopForMs`, so a disk that
// turns slow blocks the event loop once, for that one write, and not again until it has had time
// to recover. `onLoopMaxMs` 0: always off the loop.
import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

export interface BatchWriteOptions {
  /** A write that took longer than this (ms) moves the next ones off the event loop; 0: never on it. */
  onLoopMaxMs: number;
  /** …for this long (ms), after which the next write is tried on the loop again. */
  offLoopForMs: number;
  /** A write took longer than onLoopMaxMs (for the log). Must not throw. */
  onSlow?(ms: number): void;
}

export interface BatchWriter {
  /** Writes all of `buf`; resolves once it is durable, rejects with the write's error. */
  write(file: FileHandle, buf: Buffer): Promise<void>;
  /** Writes made on the event loop and off it, since the writer was made. */
  counts(): { onLoop: number; offLoop: number };
}

export const DEFAULT_ON_LOOP_MAX_MS = 5;
export const DEFAULT_OFF_LOOP_FOR_MS = 60_000;

export function createBatchWriter(opts: BatchWriteOptions): BatchWriter {
  const { onLoopMaxMs, offLoopForMs } = opts;
  if (!(onLoopMaxMs >= 0) || !(offLoopForMs >= 0)) throw new RangeError('batch write limits must be >= 0');
  let offLoopUntil = 0;
  let onLoop = 0;
  let offLoop = 0;
  return {
    async write(file, buf) {
      const now = performance.now();
      if (onLoopMaxMs > 0 && now >= offLoopUntil) {
        onLoop++;
        // A short write (a full disk part-way through) goes on from where it stopped; an error
        // throws here, and the caller's batch fails as it would off the loop.
        for (let off = 0; off < buf.length; ) off += writeSync(file.fd, buf, off, buf.length - off);
        const took = performance.now() - now;
        if (took > onLoopMaxMs) {
          offLoopUntil = performance.now() + offLoopForMs;
          try {
            opts.onSlow?.(took);
          } catch {
            // a logging hook's failure is not the write's
          }
        }
        return;
      }
      offLoop++;
      for (let off = 0; off < buf.length; ) off += (await file.write(buf, off, buf.length - off)).bytesWritten;
    },
    counts: () => ({ onLoop, offLoop }),
  };
}
