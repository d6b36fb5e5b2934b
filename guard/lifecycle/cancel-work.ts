// Cancelling executions, one or a task's worth, with the budget kept right: a run cancelled while
// queued never ran, so its whole reservation (and the run itself) goes back to the task; a run
// cancelled while running is told to stop and its runner settles what it used.
import type { Redis } from 'ioredis';
import type { RunError } from '../../contract/execution.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import { publishCancel } from '../../state/cancel-channel.ts';
import type { ExecutionStore, TransitionResult } from '../../state/executions.ts';

/** Why queued work of a spent task ends cancelled. */
export const TASK_EXHAUSTED: RunError = {
  code: 'budget_exceeded',
  message: 'the task reached a budget cap before this run started; it was cancelled and refunded',
};

export interface CancelWorkDeps {
  store: ExecutionStore;
  budgets: BudgetStore;
  redis: Redis;
  redisPrefix: string;
  /** Takes a queued job off its queue (the API has the queues; a runner passes nothing). */
  dequeue?: (id: string) => Promise<void>;
}

export interface WorkCanceller {
  /** Cancels a queued or running execution; `queuedOnly` leaves running ones alone. */
  cancel(id: string, reason: RunError, queuedOnly?: boolean): Promise<TransitionResult>;
  /** Cancels the queued executions of a task whose budget is spent. Returns how many. */
  cancelQueuedOfTask(taskId: string, reason: RunError): Promise<number>;
}

export function createWorkCanceller(deps: CancelWorkDeps): WorkCanceller {
  const { store, budgets } = deps;

  const cancel = async (id: string, reason: RunError, queuedOnly = false): Promise<TransitionResult> => {
    const record = await store.get(id);
    if (!record) return 'missing';
    const queued = await store.cancel(id, reason, true);
    if (queued === 'done') {
      await budgets.settle({ id, agentId: record.agentId, taskId: record.taskId, cost: 0, refund: true });
      await deps.dequeue?.(id);
      return 'done';
    }
    if (queuedOnly) return queued;
    const running = await store.cancel(id, reason);
    if (running === 'done') await publishCancel(deps.redis, deps.redisPrefix, id);
    return running;
  };

  return {
    cancel,
    async cancelQueuedOfTask(taskId, reason) {
      let cancelled = 0;
      for (const id of await store.idsOfTask(taskId)) {
        if ((await cancel(id, reason, true)) === 'done') cancelled++;
      }
      return cancelled;
    },
  };
}
