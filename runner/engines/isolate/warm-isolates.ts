// Fresh isolates made ahead of time. Each isolate still serves exactly one run; what moves off
// the request path is its creation (V8 heap + context + prelude, ~2 ms, 1.3 ms of it blocking
// the main thread), done after a run has ended, never while one is in progress on this thread. Only the profiles' own memory ceilings are kept warm (a bounded set);
// a run asking for a lower limit gets a cold isolate.

import ivm from 'isolated-vm';
import { resultError } from '../../../contract/errors.ts';
import type { OutputCollector } from '../output-collector.ts';
import { PRELUDE } from './isolate-prelude.ts';

/** A tool call from inside the isolate: (name, args as JSON) → the answer as JSON. */
export type ToolCall = (name: string, argsJson: string) => Promise<string>;

export interface PreparedIsolate {
  isolate: ivm.Isolate;
  context: ivm.Context;
  /** Where the prelude's console writes and tools.call goes; set by the run that takes it. */
  sink: { out: OutputCollector | undefined; tool: ToolCall | undefined };
  /** (value) → whether it is a promise to await; see the prelude. */
  isPromise: ivm.Reference<(v: unknown) => boolean>;
  /** (value) → its JSON text, undefined for undefined, null when it has none; see the prelude. */
  toJson: ivm.Reference<(v: unknown) => string | null | undefined>;
}

/**
 * V8's code cache of the prelude, made once per thread in a throwaway isolate: each isolate then
 * loads the prelude's compiled code instead of parsing it (~0.07 ms of each isolate's making).
 * V8 checks the cache against the source and its flags; a cache it rejects costs only the parse.
 */
let preludeCached: { cachedData?: ivm.ExternalCopy<ArrayBuffer> } | undefined;
function preludeCache(): { cachedData?: ivm.ExternalCopy<ArrayBuffer> } {
  if (!preludeCached) {
    const maker = new ivm.Isolate({ memoryLimit: 8 });
    try {
      const made = maker.compileScriptSync(PRELUDE, { produceCachedData: true }) as ivm.Script & ivm.CachedDataResult;
      // Kept even when V8 made none: the isolates then parse the prelude, and no maker is made again.
      preludeCached = made.cachedData ? { cachedData: made.cachedData } : {};
    } finally {
      maker.dispose();
    }
  }
  return preludeCached;
}

/** What the prelude returns (isolate-prelude.ts). */
interface Checks {
  isPromise(v: unknown): boolean;
  toJson(v: unknown): string | null | undefined;
}

/** Synchronous throughout (the refill below relies on it): nothing else runs on this thread meanwhile. */
export function prepareIsolate(memoryMb: number, onCatastrophicError: (m: string) => void): PreparedIsolate {
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb, onCatastrophicError });
  try {
    // Sync: no user code runs here, and this is the isolate's own thread; async calls would each
    // cross to isolated-vm's thread pool and back.
    const context = isolate.createContextSync();
    const sink: PreparedIsolate['sink'] = { out: undefined, tool: undefined };
    const write = new ivm.Callback((fd: 1 | 2, line: string) => sink.out?.write(fd, line) ?? false);
    const tool = new ivm.Reference((name: string, argsJson: string) =>
      sink.tool
        ? sink.tool(name, argsJson)
        : Promise.resolve(JSON.stringify({ ok: false, ...resultError('tools_unavailable') })),
    );
    // No `timeout`: the prelude is our own code, and a timeout would start one of isolated-vm's
    // timer threads if none is idle, at this thread's priority, which is low during a refill.
    const prelude = isolate.compileScriptSync(PRELUDE, preludeCache());
    const wire: ivm.Reference<(w: ivm.Callback, t: ivm.Reference) => Checks> = prelude.runSync(context, {
      reference: true,
    });
    prelude.release();
    const checks = wire.applySync(undefined, [write, tool], { result: { reference: true } });
    wire.release();
    const isPromise = checks.getSync('isPromise', { reference: true });
    const toJson = checks.getSync('toJson', { reference: true });
    checks.release();
    return { isolate, context, sink, isPromise, toJson };
  } catch (e) {
    isolate.dispose();
    throw e;
  }
}

export class WarmIsolates {
  readonly #ready = new Map<number, PreparedIsolate[]>();
  readonly #filling = new Set<number>();
  readonly #perSize: number;
  readonly #onCatastrophicError: (m: string) => void;
  #closed = false;

  readonly #inBackground: <T>(work: () => T) => T;

  /** `inBackground` runs the refill's synchronous work (at a low CPU priority, say: thread-priority.ts). */
  constructor(
    perSize: number,
    onCatastrophicError: (m: string) => void,
    inBackground: <T>(work: () => T) => T = (work) => work(),
  ) {
    this.#perSize = perSize;
    this.#inBackground = inBackground;
    this.#onCatastrophicError = onCatastrophicError;
  }

  /** A never-used isolate: from the pool when `warm` and one is ready, otherwise made now. */
  take(memoryMb: number, warm: boolean): PreparedIsolate {
    const ready = warm ? this.#ready.get(memoryMb)?.pop() : undefined;
    return ready ?? prepareIsolate(memoryMb, this.#onCatastrophicError);
  }

  /** Tops the pool up; call when a run has ended, so the work does not delay that run. */
  refill(memoryMb: number): void {
    if (this.#closed || this.#filling.has(memoryMb)) return;
    const list = this.#ready.get(memoryMb) ?? [];
    this.#ready.set(memoryMb, list);
    if (list.length >= this.#perSize) return;
    this.#filling.add(memoryMb);
    // One isolate per turn of the event loop (setImmediate: the run that just ended hands its
    // result on first): a run, a cancel or a result arriving meanwhile waits for one isolate's
    // making at most, not for the whole pool's.
    const one = () => {
      try {
        if (this.#closed || list.length >= this.#perSize) {
          this.#filling.delete(memoryMb);
          return;
        }
        list.push(this.#inBackground(() => prepareIsolate(memoryMb, this.#onCatastrophicError)));
        setImmediate(one);
      } catch {
        this.#filling.delete(memoryMb); // a failed refill only means the next run starts cold
      }
    };
    setImmediate(one);
  }

  close(): void {
    this.#closed = true;
    for (const list of this.#ready.values()) for (const p of list.splice(0)) p.isolate.dispose();
  }
}
