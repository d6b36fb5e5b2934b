// One run in one never-used isolate: the console wired to a capped collector, nothing else (no
// require, no process, no fetch, no timers). A wall-clock watchdog disposes the isolate at the
// deadline, which also stops async work that escapes isolated-vm's own `timeout` (isolated-vm
// issues #108, #266). Runs inside an isolate thread (isolate-thread.ts).
import type ivm from 'isolated-vm';
import { resultError } from '../../../contract/errors.ts';
import type { EngineResult, ExecutionJob } from '../../../contract/execution.ts';
import { OutputCollector, type OutputListener } from '../output-collector.ts';
import { RESULT_TO_JSON } from './isolate-prelude.ts';
import type { PreparedIsolate, ToolCall } from './warm-isolates.ts';

type Ending = 'timed_out' | 'cancelled';

export async function runInIsolate(
  job: ExecutionJob,
  signal: AbortSignal,
  prepared: PreparedIsolate,
  tool?: ToolCall,
  output?: OutputListener,
): Promise<EngineResult> {
  const { timeoutMs, memoryMb, outputBytes } = job.limits;
  const out = new OutputCollector(outputBytes, output);
  const startedAt = performance.now();
  const deadline = startedAt + timeoutMs;
  const { isolate, context, sink } = prepared;
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
  const watchdog = setTimeout(() => end('timed_out'), timeoutMs);
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
        cpuMs: cpuNs > 0n ? Number(cpuNs - cpuBefore) / 1e6 : wallMs,
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
    // `reference` keeps the completion value inside the isolate; `promise` awaits an async one.
    const value = await script.run(context, { timeout: remaining(), promise: true, reference: true });
    // Sync as well: the completion value's getters may run, bounded by the same deadline.
    const json = context.evalClosureSync(RESULT_TO_JSON, [value.derefInto()], {
      timeout: remaining(),
      result: { copy: true },
    }) as string | undefined | null;
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
    if (!ending && !isolate.isDisposed) {
      sampleCpu(); // the script has stopped (exception or its own timeout): the isolate is idle
      sampleHeap();
    }
    if (ending === 'cancelled') {
      return finish({ status: 'cancelled', exitCode: null, error: resultError('cancelled') });
    }
    const message = errorMessage(e);
    if (ending === 'timed_out' || /execution timed out/i.test(message)) {
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
    // The script has returned and nothing can schedule more work (no timers, no I/O): the
    // isolate is idle, so its disposal can wait until the result is on its way.
    if (!isolate.isDisposed) setImmediate(() => isolate.isDisposed || isolate.dispose());
  }
}

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
