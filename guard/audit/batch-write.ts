// A batch's durable write to the chain file (O_DSYNC: durable when the write returns).
//
// On the event loop while the disk answers fast: one write(2) of a few KB that returns in
// 0.2–0.8 ms on the development VM, with no round trip to libuv's thread pool and back (two
// thread wake-ups, ~0.15 ms of a run's latency on a busy 2-core machine). Worth it only while
// writes are that short: a disk whose writes take milliseconds (a network volume) would hold the
// event loop for that long on every batch, for a gain that is small beside the write. So the
// writes move to the thread pool for `offLoopForMs` once their running average passes
// `onLoopMaxMs`, or at once for a write ten times over it (a disk that turns slow blocks the loop
// for that one write); one write a little over does not. After the back-off they are tried on the
// loop again. `onLoopMaxMs` 0: always in the thread pool.
import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

export interface BatchWriteOptions {
  /** The running average of write times (ms) past which writes leave the event loop; 0: never on it. */
  onLoopMaxMs: number;
  /** …for this long (ms), after which they are tried on the loop again. */
  offLoopForMs: number;
  /** Writes left the loop after one that took `ms` (for the log). Must not throw. */
  onSlow?(ms: number): void;
}

export interface BatchWriter {
  /** Writes all of `buf`; resolves once it is durable, rejects with the write's error. */
  write(file: FileHandle, buf: Buffer): Promise<void>;
  /** Writes made on the event loop and off it, since the writer was made. */
  counts(): { onLoop: number; offLoop: number };
}

export const DEFAULT_ON_LOOP_MAX_MS = 2;
export const DEFAULT_OFF_LOOP_FOR_MS = 60_000;
/** Weight of the newest write in the running average. */
const NEWEST = 0.2;
/** A single write this many times over the limit moves the writes off the loop at once. */
const SPIKE = 10;

/** The running average, by which writes stay on the loop or leave it. */
export interface LoopWriteState {
  averageMs: number;
}

/** Where the average starts (and restarts after a back-off): one write of 3.5× the limit is enough. */
export const freshLoopWriteState = (onLoopMaxMs: number): LoopWriteState => ({ averageMs: onLoopMaxMs / 2 });

/** After a write on the loop that took `tookMs`: the new average, and whether the writes leave the loop. */
export function afterLoopWrite(
  state: LoopWriteState,
  tookMs: number,
  onLoopMaxMs: number,
): { state: LoopWriteState; leave: boolean } {
  const averageMs = (1 - NEWEST) * state.averageMs + NEWEST * tookMs;
  const leave = averageMs > onLoopMaxMs || tookMs > SPIKE * onLoopMaxMs;
  return { state: leave ? freshLoopWriteState(onLoopMaxMs) : { averageMs }, leave };
}

export function createBatchWriter(opts: BatchWriteOptions): BatchWriter {
  const { onLoopMaxMs, offLoopForMs } = opts;
  if (!(onLoopMaxMs >= 0) || !(offLoopForMs >= 0)) throw new RangeError('batch write limits must be >= 0');
  let state = freshLoopWriteState(onLoopMaxMs);
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
        const next = afterLoopWrite(state, took, onLoopMaxMs);
        state = next.state;
        if (next.leave) {
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
