// The one way to wait for something at most so long: a race against a timer that goes with the
// answer (a timer left behind holds the process, and in a hot path piles up in the heap).

/** What within() gives when the time ran out first. */
export const LATE: unique symbol = Symbol('late');

/** `work`'s answer, or LATE once `ms` have passed first. A rejection of `work` is passed on. */
export async function within<T>(work: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<typeof LATE>((resolve) => {
        timer = setTimeout(() => resolve(LATE), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
