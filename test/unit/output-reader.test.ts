// The docker output reader: Docker's multiplexed frames in, capped stdout/stderr and the
// supervisor's trailer out. Only bytes behind the run's nonce count as the trailer.
import { describe, expect, it } from 'vitest';
import { OutputReader } from '../../runner/engines/docker/output-reader.ts';
import { makeTar } from '../helpers/tar.ts';

const NONCE = 'a1'.repeat(18);
const frame = (stream: 1 | 2, data: string | Buffer) => {
  const payload = typeof data === 'string' ? Buffer.from(data) : data;
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
};
const trailer = (exit: number, tar?: Buffer) =>
  `\n${NONCE} exit ${exit}\n${tar ? `${NONCE} out ${tar.toString('base64')}\n` : ''}${NONCE} end\n`;
const stderrEnd = `\n${NONCE} end\n`;

function read(frames: Buffer[], { chunk = 0, outputBytes = 4096, outLimit = 1 << 20 } = {}) {
  const r = new OutputReader(NONCE, outputBytes, outLimit);
  const all = Buffer.concat(frames);
  let done = false;
  if (chunk > 0) for (let i = 0; i < all.length; i += chunk) done = r.push(all.subarray(i, i + chunk)) || done;
  else done = r.push(all);
  r.flush();
  return { r, done };
}

describe('the docker output reader', () => {
  it('splits stdout and stderr and reads the exit status and files behind the nonce', () => {
    const tar = makeTar([{ name: './a.txt', data: 'hi' }]);
    const { r, done } = read([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, trailer(3, tar)), frame(2, stderrEnd)]);
    expect(done).toBe(true);
    expect(r.out.stdout).toBe('out\n');
    expect(r.out.stderr).toBe('err\n');
    expect(r.trailer).toMatchObject({ exitCode: 3, outUnreadable: false });
    expect(r.trailer!.outTar!.equals(tar)).toBe(true);
  });

  it('finds the marker split across every possible chunk boundary', () => {
    for (const chunk of [1, 2, 3, 7, 13, 64]) {
      const { r, done } = read([frame(1, 'x'.repeat(50)), frame(1, trailer(0)), frame(2, 'e'), frame(2, stderrEnd)], {
        chunk,
      });
      expect(done).toBe(true);
      expect(r.out.stdout).toBe('x'.repeat(50));
      expect(r.out.stderr).toBe('e');
      expect(r.trailer?.exitCode).toBe(0);
    }
  });

  it.each([
    ['another nonce', `\n${'b2'.repeat(18)} exit 0\n${'b2'.repeat(18)} end\n`],
    ['the old format without a nonce', '\nexit 0\nend\n'],
    ['a nonce one character short', `\n${NONCE.slice(1)} exit 0\n${NONCE.slice(1)} end\n`],
    ['the marker without its leading newline', `${NONCE}x exit 0\n${NONCE} end\n`],
  ])('a forged trailer with %s is just output', (_, forged) => {
    const { r, done } = read([frame(1, forged), frame(2, forged)]);
    expect(done).toBe(false);
    expect(r.trailer).toBeUndefined();
    expect(r.exitCode).toBeUndefined();
  });

  it('is not done until stderr has reached its own end marker', () => {
    const { done, r } = read([frame(1, trailer(0))]);
    expect(r.trailer?.exitCode).toBe(0);
    expect(done).toBe(false);
  });

  it('keeps the exit status when output passed the cap, and marks it truncated', () => {
    const { r, done } = read([frame(1, 'y'.repeat(10_000)), frame(1, trailer(7)), frame(2, stderrEnd)], {
      outputBytes: 1024,
    });
    expect(done).toBe(true);
    expect(r.out.truncated).toBe(true);
    expect(r.trailer?.exitCode).toBe(7);
  });

  it('a files part larger than the supervisor can send is unreadable, and the exit status stands', () => {
    const huge = Buffer.alloc(200_000, 1);
    const { r, done } = read([frame(1, trailer(9, huge)), frame(2, stderrEnd)], { outLimit: 10_000 });
    expect(done).toBe(true);
    expect(r.trailer).toMatchObject({ exitCode: 9, outUnreadable: true, outTar: undefined });
  });

  it('junk between the lines of the trailer makes the files unreadable, never the status', () => {
    const { r } = read([frame(1, `\n${NONCE} exit 4\njunk${NONCE} out AAAA\n${NONCE} end\n`), frame(2, stderrEnd)]);
    expect(r.trailer?.exitCode).toBe(4);
  });

  it('the exit line is known even when the container dies before the end of the trailer', () => {
    const { r, done } = read([frame(1, `\n${NONCE} exit 5\n${NONCE} out AAA`)]);
    expect(done).toBe(false);
    expect(r.exitCode).toBe(5);
  });
});
