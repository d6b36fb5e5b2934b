// Where later features plug into the life of a run or a tool call without patching its path:
// admission checks run before anything is reserved or recorded and may refuse (a paused task, a
// suspended agent); observers are told of every step afterwards (detectors, stream publishers,
// metrics). An observer's failure is logged and never reaches the work it observes.
import type { Agent } from '../../contract/agent.ts';
import type { Usage } from '../../contract/execution.ts';
import type { TaskScope } from '../../contract/task.ts';

/** What is being admitted, as the checks see it: after authorization, before any effect. */
export interface AdmissionAttempt {
  kind: 'run' | 'tool';
  id: string;
  agent: Agent;
  taskId: string | null;
  /** The profile or the tool. */
  target: string;
  /** Canonical hash of what would be done (the code, or the tool's arguments). */
  inputHash: string;
  /** The tool is irreversible. */
  irreversible: boolean;
  tainted: boolean;
  /** Hosts the call itself names (an http_fetch URL), beyond what its tool is. */
  reaches: readonly string[];
  /** What the task declared it expects, if it did. */
  taskScope: TaskScope | null;
  worstCase: number;
}

export type LifecycleEvent =
  | { type: 'admitted'; attempt: AdmissionAttempt; auditId: string; status: 'queued' | 'awaiting_approval' }
  | {
      type: 'refused';
      kind: 'run' | 'tool';
      agentId: string;
      taskId: string | null;
      target: string;
      code: string;
      auditId: string | undefined;
    }
  | { type: 'started'; kind: 'run' | 'tool'; id: string; agentId: string; taskId: string | null; target: string }
  | {
      type: 'finished';
      kind: 'run' | 'tool';
      id: string;
      agentId: string;
      taskId: string | null;
      target: string;
      status: string;
      /** Hash of what came back (output or result), for detectors of repeated results. */
      resultHash: string;
      usage: Pick<Usage, 'cost'> & Partial<Usage>;
      auditId: string | undefined;
      /** Egress decisions of a tool call (refusals count as probing). */
      egress?: ReadonlyArray<{ host: string; allowed: boolean }>;
    }
  | {
      type: 'decided';
      id: string;
      agentId: string;
      taskId: string | null;
      target: string;
      decision: 'approve' | 'deny' | 'expire';
      by: string | null;
    }
  | {
      type: 'settled';
      kind: 'run' | 'tool';
      id: string;
      agentId: string;
      taskId: string | null;
      cost: number;
      refund: boolean;
    }
  | { type: 'task_exhausted'; agentId: string; taskId: string; cap: string }
  | { type: 'usage_reported'; agentId: string; taskId: string; tokens: number; cost: number; auditId: string };

export type AdmissionCheck = (attempt: AdmissionAttempt) => Promise<void>;
export type Observer = (event: LifecycleEvent) => void | Promise<void>;

export interface Hooks {
  /** Adds a check that runs on every admission, in the order added; it refuses by throwing. */
  check(fn: AdmissionCheck): void;
  observe(fn: Observer): void;
  runChecks(attempt: AdmissionAttempt): Promise<void>;
  emit(event: LifecycleEvent): void;
}

export function createHooks(onObserverError: (e: Error, event: LifecycleEvent) => void = () => {}): Hooks {
  const checks: AdmissionCheck[] = [];
  const observers: Observer[] = [];
  return {
    check: (fn) => void checks.push(fn),
    observe: (fn) => void observers.push(fn),
    async runChecks(attempt) {
      for (const c of checks) await c(attempt);
    },
    emit(event) {
      for (const o of observers) {
        try {
          const r = o(event);
          if (r instanceof Promise) r.catch((e: Error) => onObserverError(e, event));
        } catch (e) {
          onObserverError(e as Error, event);
        }
      }
    },
  };
}
