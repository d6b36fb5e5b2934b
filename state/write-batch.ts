// Background writes that many runs share one round trip: what arrives within `ms` is gathered
// into one batch (`fill` adds to it) and written together; each caller's promise resolves once
// its batch is written (or rejects with it). flush() writes what waits at once (shutdown, or a
// reader that must see it).
export interface WriteBatch<B> {
  add(fill: (batch: B) => void): Promise<void>;
  flush(): Promise<void>;
}

export function createWriteBatch<B>(ms: number, empty: () => B, write: (batch: B) => Promise<unknown>): WriteBatch<B> {
  let batch: B | undefined;
  let written: PromiseWithResolvers<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): Promise<void> => {
    clearTimeout(timer);
    const [full, waiting] = [batch, written];
    batch = undefined;
    written = undefined;
    const done = full === undefined ? Promise.resolve() : write(full).then(() => undefined);
    if (waiting) done.then(waiting.resolve, waiting.reject);
    return done;
  };
  return {
    flush,
    add(fill) {
      batch ??= empty();
      fill(batch);
      if (!written) {
        written = Promise.withResolvers<void>();
        timer = setTimeout(() => void flush().catch(() => {}), ms);
        timer.unref();
      }
      return written.promise;
    },
  };
}
