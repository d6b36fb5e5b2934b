// How a refused admission reads to the agent: the same words for runs and tool calls.
import { SandgateError } from '../../contract/errors.ts';
import type { Admission } from '../../state/budgets.ts';

/** The refusal of an admission: 429 with Retry-After over a per-minute limit, 402 naming the cap. */
export function admissionError(
  a: Exclude<Admission, { ok: true }>,
  taskId: string | null,
  worstCase: number,
  perMinute: string,
): SandgateError {
  if (a.reason === 'rate') {
    return new SandgateError('rate_limited', `more than ${perMinute} per minute; retry after ${a.retryAfterS} s`, {
      'retry-after': String(a.retryAfterS),
    });
  }
  if (a.reason === 'no_task') return new SandgateError('not_found', `no task ${taskId}`);
  if (a.cap === 'spendPerDay') {
    return new SandgateError(
      'budget_exceeded',
      `spendPerDay: this agent has ${a.left ?? 0} left today; the worst case of this request is ${worstCase}`,
    );
  }
  if (a.cap === 'maxSpend' && a.left !== undefined) {
    return new SandgateError(
      'budget_exceeded',
      `maxSpend: task ${taskId} has ${a.left} left (after what is reserved); the worst case of this request is ${worstCase}`,
    );
  }
  if (a.cap === 'task') return new SandgateError('budget_exceeded', `task ${taskId} is exhausted`);
  return new SandgateError('budget_exceeded', `${a.cap}: task ${taskId} has used its ${a.cap}; the task is exhausted`);
}
