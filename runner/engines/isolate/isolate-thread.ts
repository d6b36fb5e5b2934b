// An isolate thread: owns its isolates (creating a V8 isolate blocks the thread that does it for
// ~1.5 ms, which must not be the event loop that serves HTTP and Redis) and runs jobs sent by
// the isolate engine on the main thread.

import { parentPort, workerData } from 'node:worker_threads';
import ivm from 'isolated-vm';
import { runInIsolate } from './isolate-run.ts';
import { threadPriority } from './thread-priority.ts';
import type { FromThread, ThreadOptions, ToThread } from './thread-protocol.ts';
import { WarmIsolates } from './warm-isolates.ts';

const port = parentPort!;
const { warm, lowPriorityRefill, syncSliceMs } = workerData as ThreadOptions;
const send = (m: FromThread) => port.postMessage(m);
const onCatastrophicError = (message: string) => send({ type: 'catastrophic', message });
const priority = threadPriority(lowPriorityRefill);
const running = new Map<string, AbortController>();
// Low only while no run of this thread is in flight: a run's end is handled on this thread, and
// must not wait behind low-priority work (under load, the isolates are made at full priority).
const pool = new WarmIsolates(warm, onCatastrophicError, (work) =>
  running.size === 0 ? priority.whileLow(work) : work(),
);
const toolAnswers = new Map<number, (answer: string) => void>();
let toolCalls = 0;

/** tools.call crosses to the main thread, which owns Redis, policy and the queues. */
const callTool =
  (id: string) =>
  (name: string, argsJson: string): Promise<string> =>
    new Promise((resolve) => {
      const callId = ++toolCalls;
      toolAnswers.set(callId, resolve);
      send({ type: 'tool', id, callId, name, argsJson });
    });

async function run(id: string, msg: Extract<ToThread, { type: 'run' }>): Promise<void> {
  const controller = new AbortController();
  running.set(id, controller);
  const { memoryMb } = msg.job.limits;
  try {
    // Console output crosses to the main thread as it is written, for the run's event stream.
    const output = msg.streamed
      ? {
          write: (fd: 1 | 2, data: Buffer | string) =>
            send({ type: 'output', id, fd, data: typeof data === 'string' ? data : data.toString('utf8') }),
          truncated: () => send({ type: 'truncated', id }),
        }
      : undefined;
    const startedAt = performance.now();
    const attempt = (syncSliceMs: number, priorCpuMs?: number) =>
      runInIsolate(
        msg.job,
        controller.signal,
        pool.take(memoryMb, msg.warm),
        { startedAt, syncSliceMs, priorCpuMs },
        callTool(id),
        output,
      );
    const first = await attempt(syncSliceMs);
    // Its synchronous part outlasted the slice: from the start, in a fresh isolate, asynchronously.
    const result = 'sliceExpired' in first ? await attempt(0, first.cpuMs) : first;
    if ('sliceExpired' in result) throw new Error('an attempt without a slice cannot outlast one');
    send({ type: 'result', id, result, ...(result !== first && { restarted: true as const }) });
  } catch (e) {
    send({ type: 'fault', id, message: (e as Error).message });
  } finally {
    running.delete(id);
    if (msg.warm) pool.refill(memoryMb);
  }
}

async function check(id: string): Promise<void> {
  const isolate = new ivm.Isolate({ memoryLimit: 8 });
  try {
    const ctx = await isolate.createContext();
    if ((await ctx.eval('1 + 1', { timeout: 1000 })) !== 2) throw new Error('isolate self-test failed');
    send({
      type: 'result',
      id,
      result: {
        status: 'succeeded',
        exitCode: 0,
        stdout: '',
        stderr: '',
        truncated: false,
        usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0 },
      },
    });
  } catch (e) {
    send({ type: 'fault', id, message: (e as Error).message });
  } finally {
    isolate.dispose();
  }
}

port.on('message', (msg: ToThread) => {
  if (msg.type === 'run') void run(msg.id, msg);
  else if (msg.type === 'cancel') running.get(msg.id)?.abort();
  else if (msg.type === 'check') void check(msg.id);
  else if (msg.type === 'tool-answer') {
    toolAnswers.get(msg.callId)?.(msg.answer);
    toolAnswers.delete(msg.callId);
  }
});
