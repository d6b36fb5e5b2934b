import { describe, expect, it } from 'vitest';
import { LATE, within } from '../../contract/within.ts';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const after = <T>(ms: number, v: T) => new Promise<T>((r) => setTimeout(() => r(v), ms));

describe('within', () => {
  it('gives the answer when it comes first, and leaves no timer behind', async () => {
    const before = timers();
    expect(await within(Promise.resolve(7), 60_000)).toBe(7);
    expect(await within(after(5, 'x'), 60_000)).toBe('x');
    expect(timers()).toBe(before);
  });

  it('gives LATE once the time runs out first', async () => {
    const started = Date.now();
    expect(await within(new Promise(() => {}), 30)).toBe(LATE);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('passes a rejection on, and clears its timer then too', async () => {
    const before = timers();
    await expect(within(Promise.reject(new Error('boom')), 60_000)).rejects.toThrow('boom');
    expect(timers()).toBe(before);
  });
});
