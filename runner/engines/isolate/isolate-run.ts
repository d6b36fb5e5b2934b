// One run in one never-used isolate: the console wired to a capped collector, nothing else (no
// require, no process, no fetch, no timers). A wall-clock watchdog disposes the isolate at the
// deadline, which also stops async work that escapes isolated-vm's own `timeout` (isolated-vm
// issues #108, #266). Runs inside an isolate thread (isolate-thread.ts).
//
// The script's synchronous part runs on this thread (runSync), not through isolated-vm's thread
// pool and back: that round trip costs ~0.1 ms a run, more on a busy machine. It blocks the
// thread (its other runs, a cancel) for at most a slice, so past its slice the attempt is
// stopped and thrown away whole, and the run starts again from the start in a fresh isolate,
// asynchronously. Nothing of a thrown-away attempt is seen outside its isolate: its output is
// held back (held-output.ts), its tool calls are queued to this thread, which is busy until the
// attempt ends, and find no bridge then.
import type ivm from 'isolated-vm';
import { resultError } from '../../../contract/errors.ts';
import type { EngineResult, ExecutionJob } from '../../../contract/execution.ts';
import { heldOutput } from '../held-output.ts';
import { OutputCollector, type OutputListener } from '../output-collector.ts';
import type { PreparedIsolate, ToolCall } from './warm-isolates.ts';

type Ending = 'timed_out' | 'cancelled';

export interface RunOptions {
  /** When the run started: an attempt started again keeps the run's start and deadline. */
  startedAt: number;
  /** Longest the script's synchronous part may hold this thread before the attempt is thrown away (0: never runs it here). */
  syncSliceMs: number;
  /** CPU time of a thrown-away attempt of this run, counted in its usage. */
  priorCpuMs?: number;
}

/** The attempt outlasted its slice and was thrown away; the run is to start again without one. */
export interface SliceExpired {
  sliceExpired: true;
  cpuMs: number;
}

/** Thrown inside runInIsolate when the slice ends, caught there. */
const SLICE_ENDED = new Error('the synchronous slice ended');

export async function runInIsolate(
  job: ExecutionJob,
  signal: AbortSignal,
  prepared: PreparedIsolate,
  opts: RunOptions,
  tool?: ToolCall,
  output?: OutputListener,
): Promise<EngineResult | SliceExpired> {
  const { timeoutMs, memoryMb, outputBytes } = job.limits;
  const { startedAt, syncSliceMs, priorCpuMs = 0 } = opts;
  const deadline = startedAt + timeoutMs;
  // Sliced: the synchronous part may be stopped at its slice and the attempt thrown away. When
  // less than a slice is left, the deadline ends it instead, and the attempt is final.
  const sliced = syncSliceMs > 0 && deadline - performance.now() > syncSliceMs;
  // Whether the attempt counts: it does unless it is thrown away at its slice.
  const counts = sliced ? Promise.withResolvers<boolean>() : undefined;
  const out = new OutputCollector(outputBytes, output && counts ? heldOutput(output, counts.promise) : output);
  const { isolate, sink } = prepared;
  sink.out = out;
  sink.tool = tool;
  const cpuBefore = isolate.cpuTime; // a warm isolate's set-up is not the run's CPU time

  let ending: Ending | undefined;
  let cpuNs = 0n;
  let memoryBytes = 0;
  // Heap statistics need the isolate's lock, which a busy script holds: read them only when the
  // isolate is idle, never from the watchdog (that would block until the script yields).
  const sampleHeap = () => {
    if (isolate.isDisposed) return;
    const heap = isolate.getHeapStatisticsSync();
    memoryBytes = Math.max(memoryBytes, heap.total_heap_size + heap.externally_allocated_size);
  };
  const sampleCpu = () => {
    if (!isolate.isDisposed) cpuNs = isolate.cpuTime;
  };
  const end = (why: Ending) => {
    if (ending || isolate.isDisposed) return;
    ending = why;
    sampleCpu();
    isolate.dispose();
  };
  const watchdog = setTimeout(() => end('timed_out'), Math.max(0, deadline - performance.now()));
  const onAbort = () => end('cancelled');
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });

  const finish = (partial: Pick<EngineResult, 'status' | 'exitCode'> & Partial<EngineResult>): EngineResult => {
    const wallMs = performance.now() - startedAt;
    return {
      stdout: out.stdout,
      stderr: out.stderr,
      truncated: out.truncated,
      usage: {
        // After a memory-limit disposal V8's counters are gone; wall time bounds CPU time then.
        cpuMs: priorCpuMs + (cpuNs > 0n ? Number(cpuNs - cpuBefore) / 1e6 : wallMs),
        wallMs,
        memoryBytes: partial.status === 'memory_exceeded' ? Math.max(memoryBytes, memoryMb * 1024 * 1024) : memoryBytes,
      },
      ...partial,
    };
  };

  try {
    let script: ivm.Script;
    try {
      // Sync: compiling runs no user code and this is the isolate's own thread (isolate-thread.ts);
      // an async call would cross to isolated-vm's thread pool and back for nothing.
      script = isolate.compileScriptSync(job.code, { filename: 'main.js' });
    } catch (e) {
      if (ending || isolate.isDisposed) throw e;
      const message = errorMessage(e);
      out.write(2, `${message}\n`);
      return finish({ status: 'failed', exitCode: 1, error: resultError('syntax_error', message) });
    }

    const remaining = () => Math.max(1, Math.floor(deadline - performance.now()));
    // The completion value's JSON (its getters and toJSON are the script's code too).
    const json =
      syncSliceMs > 0
        ? await runHere(script, prepared, sliced ? syncSliceMs : remaining(), sliced, remaining)
        : await runOff(script, prepared, remaining);
    counts?.resolve(true); // the attempt counts from here on
    sampleCpu();
    sampleHeap();

    let result: unknown;
    if (typeof json === 'string') {
      if (Buffer.byteLength(json) > outputBytes) {
        out.truncated = true;
        out.write(2, `[sandgate] the completion value is larger than ${outputBytes} bytes; it was dropped\n`);
      } else {
        result = JSON.parse(json);
      }
    } else if (json === null) {
      out.write(2, '[sandgate] the completion value is not JSON-serializable; it was dropped\n');
    }
    return finish({ status: 'succeeded', exitCode: 0, ...(result !== undefined && { result }) });
  } catch (e) {
    if (e === SLICE_ENDED && !ending && !isolate.isDisposed) {
      // Thrown away: its queued tool calls find no bridge, its held output is dropped.
      sink.tool = undefined;
      counts?.resolve(false);
      sampleCpu();
      isolate.dispose();
      return { sliceExpired: true, cpuMs: priorCpuMs + Number(cpuNs - cpuBefore) / 1e6 };
    }
    counts?.resolve(true); // any other end is the run's own: its output is seen
    if (!ending && !isolate.isDisposed) {
      sampleCpu(); // the script has stopped (exception or its own timeout): the isolate is idle
      sampleHeap();
    }
    if (ending === 'cancelled') {
      return finish({ status: 'cancelled', exitCode: null, error: resultError('cancelled') });
    }
    const message = errorMessage(e);
    if (ending === 'timed_out' || isTimeout(e)) {
      return finish({
        status: 'timed_out',
        exitCode: null,
        error: resultError('timed_out', timeoutMs),
      });
    }
    // V8 refuses a large ArrayBuffer under the limit with a RangeError: that too is the memory cap.
    if (isolate.isDisposed || /memory limit|Array buffer allocation failed/i.test(message)) {
      return finish({
        status: 'memory_exceeded',
        exitCode: null,
        error: resultError('memory_exceeded', memoryMb),
      });
    }
    out.write(2, `${userStack(e, message)}\n`);
    return finish({ status: 'failed', exitCode: 1, error: resultError('uncaught_exception', message) });
  } finally {
    clearTimeout(watchdog);
    signal.removeEventListener('abort', onAbort);
    sink.out = undefined;
    sink.tool = undefined; // a call queued by the script after its end reaches nothing here either
    // The script has returned and nothing can schedule more work (no timers, no I/O): the
    // isolate is idle, so its disposal can wait until the result is on its way.
    if (!isolate.isDisposed) setImmediate(() => isolate.isDisposed || isolate.dispose());
  }
}

type Json = string | null | undefined;

/**
 * The script and its completion value's JSON on this thread, for at most `timeoutMs` in all; a
 * completion value that is a promise is awaited off it (the thread is free while the script waits
 * for tool calls), and so is its JSON. A timeout that ends a slice, not the run's deadline, throws
 * SLICE_ENDED.
 */
async function runHere(
  script: ivm.Script,
  { context, isPromise, toJson }: PreparedIsolate,
  timeoutMs: number,
  sliced: boolean,
  remaining: () => number,
): Promise<Json> {
  const ends = performance.now() + timeoutMs;
  const left = () => Math.max(1, Math.floor(ends - performance.now()));
  let value: ivm.Reference;
  try {
    value = script.runSync(context, { timeout: timeoutMs, reference: true });
    // A primitive's JSON runs none of the script's code: made here, with no call into the isolate.
    const primitive = primitiveJson(value);
    if (primitive !== NOT_PRIMITIVE) return primitive;
    // What follows may run the script's code (a Proxy's traps, a toJSON): inside the slice too.
    if (value.typeof !== 'object' || isPromise.applySync(undefined, [value.derefInto()], { timeout: left() }) !== true)
      return toJson.applySync(undefined, [value.derefInto()], { timeout: left(), result: { copy: true } }) as Json;
  } catch (e) {
    throw sliced && isTimeout(e) ? SLICE_ENDED : e;
  }
  const settled = await context.evalClosure('return $0', [value.derefInto()], {
    timeout: remaining(),
    result: { promise: true, reference: true },
  });
  return jsonOff(toJson, settled, remaining);
}

/** The script and its completion value's JSON off this thread (isolated-vm's pool), to the deadline. */
async function runOff(
  script: ivm.Script,
  { context, toJson }: PreparedIsolate,
  remaining: () => number,
): Promise<Json> {
  // `reference` keeps the completion value inside the isolate; `promise` awaits an async one.
  const value = await script.run(context, { timeout: remaining(), promise: true, reference: true });
  return jsonOff(toJson, value, remaining);
}

const NOT_PRIMITIVE = Symbol('not a primitive');

/** The JSON of a completion value JSON.stringify answers for without running code, else NOT_PRIMITIVE. */
function primitiveJson(value: ivm.Reference): Json | typeof NOT_PRIMITIVE {
  switch (value.typeof) {
    case 'undefined':
      return undefined;
    case 'number':
    case 'string':
    case 'boolean':
      // NaN and ±Infinity become "null", as they do inside.
      return JSON.stringify(value.copySync());
    default:
      return NOT_PRIMITIVE;
  }
}

const jsonOff = async (toJson: PreparedIsolate['toJson'], value: ivm.Reference, remaining: () => number) =>
  (await toJson.apply(undefined, [value.derefInto()], { timeout: remaining(), result: { copy: true } })) as Json;

const isTimeout = (e: unknown) => /execution timed out/i.test(errorMessage(e));

/** The user's stack frames only: frames past the isolate boundary are the host's and stay private. */
function userStack(e: unknown, message: string): string {
  if (!(e instanceof Error) || !e.stack) return message;
  const lines = e.stack.split('\n');
  const boundary = lines.findIndex((l) => l.includes('<isolated-vm boundary>'));
  return (boundary === -1 ? lines : lines.slice(0, boundary)).join('\n');
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.name && e.name !== 'Error' ? `${e.name}: ${e.message}` : e.message;
  return String(e);
}
