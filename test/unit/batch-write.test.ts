import { spawn, spawnSync } from 'node:child_process';
import { constants as fs } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { afterLoopWrite, createBatchWriter, freshLoopWriteState } from '../../guard/audit/batch-write.ts';
import { tempDirs } from '../helpers/audit-forge.ts';

const dirs = tempDirs();
afterAll(() => dirs.cleanup());
const tmp = () => dirs.make('batch-write-');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CHAIN_FLAGS = fs.O_WRONLY | fs.O_APPEND | fs.O_CREAT | fs.O_DSYNC;

describe('batch write', () => {
  it('writes on the event loop while writes are fast, every byte, in order', async () => {
    const file = join(await tmp(), 'chain.jsonl');
    const fh = await open(file, CHAIN_FLAGS, 0o600);
    const w = createBatchWriter({ onLoopMaxMs: 1000, offLoopForMs: 60_000 });
    const lines = Array.from({ length: 5 }, (_, i) => `${JSON.stringify({ seq: i, pad: 'x'.repeat(i * 3000) })}\n`);
    for (const l of lines) await w.write(fh, Buffer.from(l));
    await fh.close();
    expect(await readFile(file, 'utf8')).toBe(lines.join(''));
    expect(w.counts()).toEqual({ onLoop: 5, offLoop: 0 });
  });

  it('0: every write goes to the thread pool', async () => {
    const fh = await open(join(await tmp(), 'chain.jsonl'), CHAIN_FLAGS, 0o600);
    const w = createBatchWriter({ onLoopMaxMs: 0, offLoopForMs: 60_000 });
    for (let i = 0; i < 3; i++) await w.write(fh, Buffer.from(`${i}\n`));
    await fh.close();
    expect(w.counts()).toEqual({ onLoop: 0, offLoop: 3 });
  });

  it('a write slower than the limit sends the next ones off the loop for a while, then they come back', async () => {
    // A FIFO whose reader starts late is a disk that turned slow: the first write blocks the
    // event loop until the reader drains it (it is larger than the pipe's buffer).
    const dir = await tmp();
    const fifo = join(dir, 'slow');
    expect(spawnSync('mkfifo', [fifo], { timeout: 5000 }).status).toBe(0);
    const reader = spawn('sh', ['-c', `exec 3<"${fifo}"; sleep 0.3; cat <&3 >/dev/null`], { stdio: 'ignore' });
    try {
      const fh = await open(fifo, fs.O_WRONLY);
      const slow: number[] = [];
      const w = createBatchWriter({ onLoopMaxMs: 50, offLoopForMs: 400, onSlow: (ms) => slow.push(ms) });
      const started = performance.now();
      await w.write(fh, Buffer.alloc(256 * 1024, 'a')); // held until the reader wakes
      expect(performance.now() - started).toBeGreaterThan(200);
      expect(slow).toHaveLength(1);
      expect(slow[0]).toBeGreaterThan(50);
      expect(w.counts()).toEqual({ onLoop: 1, offLoop: 0 });

      await w.write(fh, Buffer.from('next\n')); // within offLoopForMs: off the loop
      await w.write(fh, Buffer.from('next\n'));
      expect(w.counts()).toEqual({ onLoop: 1, offLoop: 2 });

      await sleep(450); // past offLoopForMs: tried on the loop again, and fast now
      await w.write(fh, Buffer.from('again\n'));
      expect(w.counts()).toEqual({ onLoop: 2, offLoop: 2 });
      expect(slow).toHaveLength(1);
      await fh.close();
    } finally {
      reader.kill('SIGKILL');
    }
  });

  it("a write's error rejects the write, on the loop and off it; a throwing onSlow does not", async () => {
    const file = join(await tmp(), 'chain.jsonl');
    await (await open(file, CHAIN_FLAGS, 0o600)).close();
    const readOnly = await open(file, 'r');
    await expect(
      createBatchWriter({ onLoopMaxMs: 5, offLoopForMs: 0 }).write(readOnly, Buffer.from('x\n')),
    ).rejects.toThrow(/EBADF/);
    await expect(
      createBatchWriter({ onLoopMaxMs: 0, offLoopForMs: 0 }).write(readOnly, Buffer.from('x\n')),
    ).rejects.toThrow(/EBADF/);
    await readOnly.close();

    const fh = await open(file, CHAIN_FLAGS, 0o600);
    const throwing = createBatchWriter({
      onLoopMaxMs: 1e-6, // every write is "slow"
      offLoopForMs: 0,
      onSlow: () => {
        throw new Error('a broken log');
      },
    });
    await throwing.write(fh, Buffer.from('kept\n'));
    await fh.close();
    expect(await readFile(file, 'utf8')).toBe('kept\n');
  });

  describe('when writes leave the loop (limit 1 ms)', () => {
    /** How many writes of these durations stay on the loop before they leave (Infinity: never). */
    const writesBeforeLeaving = (took: readonly number[]) => {
      let state = freshLoopWriteState(1);
      for (const [i, ms] of took.entries()) {
        const next = afterLoopWrite(state, ms, 1);
        if (next.leave) {
          expect(next.state).toEqual(freshLoopWriteState(1)); // a back-off starts the average afresh
          return i;
        }
        state = next.state;
      }
      return Number.POSITIVE_INFINITY;
    };
    it('fast writes stay, for good', () => expect(writesBeforeLeaving(Array(5000).fill(0.2))).toBe(Infinity));
    it('one write a few times over, amid fast ones, does not send them off', () =>
      expect(
        writesBeforeLeaving([...Array(5).fill(0.2), 3, ...Array(20).fill(0.2), 2.5, ...Array(100).fill(0.3)]),
      ).toBe(Infinity));
    it('writes steadily over the limit leave within a few writes', () =>
      expect(writesBeforeLeaving([...Array(50).fill(0.2), ...Array(50).fill(1.5)])).toBeLessThan(50 + 6));
    it('a write ten times over leaves at once', () => expect(writesBeforeLeaving([0.2, 0.2, 10.5])).toBe(2));
    it('a first write 3.6 times over leaves at once (the average starts at half the limit)', () =>
      expect(writesBeforeLeaving([3.6])).toBe(0));
  });

  it('refuses negative limits', () => {
    expect(() => createBatchWriter({ onLoopMaxMs: -1, offLoopForMs: 0 })).toThrow(RangeError);
    expect(() => createBatchWriter({ onLoopMaxMs: 5, offLoopForMs: Number.NaN })).toThrow(RangeError);
  });
});
