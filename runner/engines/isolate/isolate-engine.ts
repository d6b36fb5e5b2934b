// The isolate engine: the only importer of isolated-vm. Each run gets a fresh V8 isolate with a
// heap limit, a console wired to a capped collector, and nothing else: no require, no process,
// no fetch, no timers. A wall-clock watchdog disposes the isolate at the deadline, which also
// stops async work that escapes isolated-vm's own `timeout` (isolated-vm issues #108, #266).
//
// Isolates run in this process, on isolated-vm's own threads, not in worker_threads: a native
// abort would take a worker thread's process down just the same, so the crash boundary that
// matters is the runner process (`npm run runner`), and BullMQ's stalled-job handling (with
// maxStalledCount 0) turns a runner crash into a `failed` run that never runs twice.
import ivm from 'isolated-vm';
import type { EngineResult, ExecutionJob } from '../../../contract/execution.ts';
import type { Engine } from '../engine.ts';
import { OutputCollector } from '../output-collector.ts';
import { PRELUDE, RESULT_TO_JSON } from './isolate-prelude.ts';

export interface IsolateEngineOptions {
  /** Called when V8 loses control of an isolate; the process must not go on serving. */
  onCatastrophicError?: (message: string) => void;
}

type Ending = 'timed_out' | 'cancelled';

export function createIsolateEngine(opts: IsolateEngineOptions = {}): Engine {
  const onCatastrophicError =
    opts.onCatastrophicError ??
    ((message: string) => {
      console.error(`isolated-vm catastrophic error: ${message}; aborting the runner`);
      process.abort();
    });

  return {
    name: 'isolate',
    run: (job, _profile, signal) => runInIsolate(job, signal, onCatastrophicError),
    async check() {
      const isolate = new ivm.Isolate({ memoryLimit: 8 });
      try {
        const ctx = await isolate.createContext();
        if ((await ctx.eval('1 + 1', { timeout: 1000 })) !== 2) throw new Error('isolate self-test failed');
      } finally {
        isolate.dispose();
      }
    },
    async close() {},
  };
}

async function runInIsolate(
  job: ExecutionJob,
  signal: AbortSignal,
  onCatastrophicError: (message: string) => void,
): Promise<EngineResult> {
  const { timeoutMs, memoryMb, outputBytes } = job.limits;
  const out = new OutputCollector(outputBytes);
  const startedAt = performance.now();
  const deadline = startedAt + timeoutMs;
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb, onCatastrophicError });

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
        cpuMs: cpuNs > 0n ? Number(cpuNs) / 1e6 : wallMs,
        wallMs,
        memoryBytes: partial.status === 'memory_exceeded' ? Math.max(memoryBytes, memoryMb * 1024 * 1024) : memoryBytes,
      },
      ...partial,
    };
  };

  try {
    const context = await isolate.createContext();
    await context.evalClosure(PRELUDE, [new ivm.Callback((fd: 1 | 2, line: string) => out.write(fd, line))], {
      timeout: 1000,
    });
    sampleHeap();

    let script: ivm.Script;
    try {
      script = await isolate.compileScript(job.code, { filename: 'main.js' });
    } catch (e) {
      if (ending || isolate.isDisposed) throw e;
      const message = errorMessage(e);
      out.write(2, `${message}\n`);
      return finish({ status: 'failed', exitCode: 1, error: { code: 'syntax_error', message } });
    }

    const remaining = () => Math.max(1, Math.floor(deadline - performance.now()));
    // `reference` keeps the completion value inside the isolate; `promise` awaits an async one.
    const value = await script.run(context, { timeout: remaining(), promise: true, reference: true });
    const json = (await context.evalClosure(RESULT_TO_JSON, [value.derefInto()], {
      timeout: remaining(),
      result: { copy: true },
    })) as string | undefined | null;
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
      return finish({ status: 'cancelled', exitCode: null, error: { code: 'cancelled', message: 'the run was cancelled' } });
    }
    const message = errorMessage(e);
    if (ending === 'timed_out' || /execution timed out/i.test(message)) {
      return finish({
        status: 'timed_out',
        exitCode: null,
        error: { code: 'timed_out', message: `the run passed its ${timeoutMs} ms wall-clock limit` },
      });
    }
    // V8 refuses a large ArrayBuffer under the limit with a RangeError: that too is the memory cap.
    if (isolate.isDisposed || /memory limit|Array buffer allocation failed/i.test(message)) {
      return finish({
        status: 'memory_exceeded',
        exitCode: null,
        error: { code: 'memory_exceeded', message: `the run passed its ${memoryMb} MB memory limit` },
      });
    }
    out.write(2, `${userStack(e, message)}\n`);
    return finish({ status: 'failed', exitCode: 1, error: { code: 'uncaught_exception', message } });
  } finally {
    clearTimeout(watchdog);
    signal.removeEventListener('abort', onAbort);
    if (!isolate.isDisposed) isolate.dispose();
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
