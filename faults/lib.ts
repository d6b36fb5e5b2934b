// The fault suite's small shared lib: the scenario context, what runs left behind, and helpers
// for load, polling and figures.
import { containersOf } from '../test/helpers/docker.ts';
import type { Answer } from '../test/helpers/http-client.ts';

export * from './context.ts';
export * from './records.ts';

/** Runs `op` for each of `n` items from `concurrency` lanes. */
export async function lanes<T>(n: number, concurrency: number, op: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await op(i);
      }
    }),
  );
  return out;
}

export async function containersLeft(prefix: string): Promise<number> {
  return (await containersOf(prefix)).length;
}

/** Polls `check` until it holds or `ms` passed; returns how long it took, or undefined. */
export async function until(ms: number, check: () => Promise<boolean>, everyMs = 200): Promise<number | undefined> {
  const t = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - t;
    if (Date.now() - t > ms) return undefined;
    await sleep(everyMs);
  }
}

/** A request that got no answer at all (refused, reset, timed out), as an answer of status 0. */
export const noAnswer = (e: Error): Answer => ({
  status: 0,
  body: { error: { code: 'no_answer', message: e.message } },
  ms: 0,
});

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const ms = (n: number): string => (Number.isFinite(n) ? `${Math.round(n)} ms` : 'n/a');
export const s = (n: number): string => `${(n / 1000).toFixed(1)} s`;
