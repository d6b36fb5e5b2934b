// The isolate engine, main-thread side: spreads runs over a few isolate threads and keeps a
// backstop. Isolates live in those threads (see isolate-thread.ts), so the event loop that
// serves HTTP and Redis never stalls on V8 set-up, and a thread that stops answering is
// terminated and replaced without taking the process down.
import { Worker } from 'node:worker_threads';
import { resultError } from '../../../contract/errors.ts';
import type { EngineResult, ExecutionJob } from '../../../contract/execution.ts';
import { type Engine, faultResult } from '../engine.ts';
import type { OutputListener } from '../output-collector.ts';
import type { FromThread, ThreadOptions, ToThread } from './thread-protocol.ts';

export interface IsolateEngineOptions {
  /** Isolate threads (default 2). */
  threads?: number;
  /** Never-used isolates kept ready per thread and profile memory ceiling (0 = always cold). */
  warm?: number;
  /** Make those isolates at a low CPU priority while the thread is idle (where allowed; see thread-priority.ts). Default true. */
  lowPriorityRefill?: boolean;
  /** How long a run's synchronous part may hold its isolate thread before it starts again off it (ms; 0 = never on it; default 5; see isolate-run.ts). */
  syncSliceMs?: number;
  /** A run's first attempt outlasted its synchronous slice and the run started again (see isolate-run.ts). */
  onRestarted?: () => void;
  /** V8 lost control of an isolate: isolated-vm says the process must not go on serving. */
  onCatastrophicError?: (message: string) => void;
  onThreadError?: (err: Error) => void;
  /** Serves `tools.call` from inside a run; without it, the call fails with tools_unavailable. */
  tools?: ToolBridge;
}

/** Runs one tool call for a job; resolves with the value for the script, or throws a coded error. */
export type ToolBridge = (job: ExecutionJob, name: string, args: unknown, signal: AbortSignal) => Promise<unknown>;

/** Beyond the run's own timeout, how long a thread may stay silent before it is replaced. */
const BACKSTOP_MS = 5000;

interface Pending {
  resolve(result: EngineResult): void;
  reject(err: Error): void;
}

interface Thread {
  worker: Worker;
  pending: Map<string, Pending>;
  /** The job and signal of each run in flight, for the tool calls it makes. */
  runs: Map<
    string,
    {
      job: ExecutionJob;
      signal: AbortSignal;
      output: OutputListener | undefined;
      admitted: Promise<boolean> | undefined;
    }
  >;
}

const answerOf = async (run: () => Promise<unknown>): Promise<string> => {
  try {
    return JSON.stringify({ ok: true, value: (await run()) ?? null });
  } catch (e) {
    const err = e as Error & { code?: string };
    return JSON.stringify({ ok: false, code: err.code ?? 'tool_fault', message: err.message });
  }
};

export function createIsolateEngine(opts: IsolateEngineOptions = {}): Engine {
  const threadOptions: ThreadOptions = {
    warm: opts.warm ?? 2,
    lowPriorityRefill: opts.lowPriorityRefill ?? true,
    syncSliceMs: opts.syncSliceMs ?? 5,
  };
  const onCatastrophicError =
    opts.onCatastrophicError ??
    ((message: string) => {
      console.error(`isolated-vm catastrophic error: ${message}; aborting`);
      process.abort();
    });
  let seq = 0;
  let closed = false;

  const spawn = (): Thread => {
    const worker = new Worker(new URL('./isolate-thread.ts', import.meta.url), { workerData: threadOptions });
    const thread: Thread = { worker, pending: new Map(), runs: new Map() };
    worker.on('message', (msg: FromThread) => {
      if (msg.type === 'catastrophic') return onCatastrophicError(msg.message);
      if (msg.type === 'output') return thread.runs.get(msg.id)?.output?.write(msg.fd, msg.data);
      if (msg.type === 'truncated') return thread.runs.get(msg.id)?.output?.truncated();
      if (msg.type === 'tool') {
        const run = thread.runs.get(msg.id);
        const bridge = opts.tools;
        void answerOf(async () => {
          // A run started ahead of its admission's end calls nothing before that end says yes.
          if (!run || !bridge || (run.admitted && !(await run.admitted)))
            throw Object.assign(new Error(resultError('tools_unavailable').message), { code: 'tools_unavailable' });
          return bridge(run.job, msg.name, JSON.parse(msg.argsJson), run.signal);
        }).then((answer) => worker.postMessage({ type: 'tool-answer', callId: msg.callId, answer } satisfies ToThread));
        return;
      }
      const p = thread.pending.get(msg.id);
      if (!p) return;
      thread.pending.delete(msg.id);
      if (msg.type === 'result') {
        if (msg.restarted) opts.onRestarted?.();
        p.resolve(msg.result);
      } else p.reject(new Error(msg.message));
    });
    worker.on('error', (err) => opts.onThreadError?.(err));
    worker.on('exit', () => {
      for (const p of thread.pending.values())
        p.resolve(faultResult(resultError('engine_fault', 'the isolate thread stopped during the run')));
      thread.pending.clear();
      const i = threads.indexOf(thread);
      if (i !== -1 && !closed) threads[i] = spawn();
    });
    return thread;
  };

  const threads: Thread[] = Array.from({ length: Math.max(1, opts.threads ?? 2) }, spawn);
  const leastBusy = () => threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));

  const call = (thread: Thread, msg: Extract<ToThread, { id: string }>, backstopMs: number): Promise<EngineResult> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // The thread is stuck (an isolate that ignores dispose): replace it; its runs fail.
        thread.pending.delete(msg.id);
        resolve(faultResult(resultError('engine_fault', 'the isolate thread stopped answering and was replaced')));
        void thread.worker.terminate();
      }, backstopMs);
      thread.pending.set(msg.id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      thread.worker.postMessage(msg);
    });

  return {
    name: 'isolate',
    // A run is V8 code in an isolate with no host objects but its console and tools.call.
    sealed: true,
    async run(job, profile, signal, output, admitted) {
      if (closed) throw new Error('the isolate engine is closed');
      const thread = leastBusy();
      const id = `${job.id}#${++seq}`;
      // Tool calls of this run end with it: its deadline or cancel aborts a call still waiting. A
      // timer cleared at the end, not AbortSignal.timeout: that one outlives the run by its whole
      // timeout, and every run's would reach the old generation of the heap.
      const runEnded = new AbortController();
      const deadline = setTimeout(() => runEnded.abort(new Error('timed out')), job.limits.timeoutMs);
      const onAbort = () => {
        runEnded.abort(signal.reason);
        thread.worker.postMessage({ type: 'cancel', id } satisfies ToThread);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      thread.runs.set(id, { job, signal: runEnded.signal, output, admitted });
      try {
        const warm = job.limits.memoryMb === profile.limits.memoryMb;
        const msg = { type: 'run' as const, id, job, warm, streamed: output !== undefined };
        return await call(thread, msg, job.limits.timeoutMs + BACKSTOP_MS);
      } finally {
        clearTimeout(deadline);
        thread.runs.delete(id);
        signal.removeEventListener('abort', onAbort);
      }
    },
    async check() {
      await Promise.all(threads.map((t) => call(t, { type: 'check', id: `check#${++seq}` }, 2000)));
    },
    async close() {
      closed = true;
      await Promise.all(threads.map((t) => t.worker.terminate()));
    },
  };
}
