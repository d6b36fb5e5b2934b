// How a refused admission reads: 429 with Retry-After for a per-minute limit, 402 naming the cap
// and what is left, 404 for a task that does not exist.
import { describe, expect, it } from 'vitest';
import { admissionError } from '../../guard/budget/admission-error.ts';

describe('admission errors', () => {
  it('a rate limit is 429 rate_limited with Retry-After', () => {
    const e = admissionError({ ok: false, reason: 'rate', retryAfterS: 7 }, 't1', 0.5, '60 runs');
    expect(e).toMatchObject({ code: 'rate_limited', status: 429 });
    expect(e.headers).toEqual({ 'retry-after': '7' });
    expect(e.message).toMatch(/more than 60 runs per minute; retry after 7 s/);
  });

  it('maxSpend names the task, what is left and the worst case of the request', () => {
    const e = admissionError({ ok: false, reason: 'exhausted', cap: 'maxSpend', left: 0.25 }, 't1', 1, 'x');
    expect(e).toMatchObject({ code: 'budget_exceeded', status: 402 });
    expect(e.message).toBe(
      'maxSpend: task t1 has 0.25 left (after what is reserved); the worst case of this request is 1',
    );
  });

  it('spendPerDay names the agent day', () => {
    const e = admissionError({ ok: false, reason: 'exhausted', cap: 'spendPerDay', left: 0 }, null, 2, 'x');
    expect(e.message).toMatch(/^spendPerDay: this agent has 0 left today/);
  });

  it('a count cap says the task is exhausted', () => {
    expect(admissionError({ ok: false, reason: 'exhausted', cap: 'maxRuns' }, 't9', 1, 'x').message).toBe(
      'maxRuns: task t9 has used its maxRuns; the task is exhausted',
    );
    expect(admissionError({ ok: false, reason: 'exhausted', cap: 'task' }, 't9', 1, 'x').message).toBe(
      'task t9 is exhausted',
    );
  });

  it('an unknown task is 404', () => {
    expect(admissionError({ ok: false, reason: 'no_task' }, 't0', 1, 'x')).toMatchObject({
      code: 'not_found',
      status: 404,
    });
  });
});
