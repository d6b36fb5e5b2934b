// Messages between the isolate engine (main thread) and its isolate threads.
import type { EngineResult, ExecutionJob } from '../../../contract/execution.ts';

export type ToThread =
  | { type: 'run'; id: string; job: ExecutionJob; warm: boolean }
  | { type: 'cancel'; id: string }
  | { type: 'check'; id: string };

export type FromThread =
  | { type: 'result'; id: string; result: EngineResult }
  | { type: 'fault'; id: string; message: string }
  | { type: 'catastrophic'; message: string };

export interface ThreadOptions {
  warm: number;
}
