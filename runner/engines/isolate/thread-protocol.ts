// Messages between the isolate engine (main thread) and its isolate threads.
import type { EngineResult, ExecutionJob } from '../../../contract/execution.ts';

export type ToThread =
  | { type: 'run'; id: string; job: ExecutionJob; warm: boolean; streamed?: boolean }
  | { type: 'cancel'; id: string }
  | { type: 'check'; id: string }
  | { type: 'tool-answer'; callId: number; answer: string };

export type FromThread =
  /** `restarted`: its first attempt outlasted its synchronous slice and was thrown away. */
  | { type: 'result'; id: string; result: EngineResult; restarted?: true }
  | { type: 'fault'; id: string; message: string }
  | { type: 'catastrophic'; message: string }
  /** Output the run `id` kept, as it was written, and the moment it was cut (the event stream). */
  | { type: 'output'; id: string; fd: 1 | 2; data: string }
  | { type: 'truncated'; id: string }
  /** A tools.call from the run `id`: the engine answers with a tool-answer of the same callId. */
  | { type: 'tool'; id: string; callId: number; name: string; argsJson: string };

export interface ThreadOptions {
  warm: number;
  /** Make isolates ahead of time at a low CPU priority, where the thread may raise it back. */
  lowPriorityRefill: boolean;
  /** A run's synchronous part runs on the thread for at most this long, then starts again off it (0: never on it). */
  syncSliceMs: number;
}
