// The TypeScript client an agent loop imports: typed from contract/ (types only), nothing at run
// time beyond fetch. Every POST that creates work carries an Idempotency-Key (one per logical
// call, reused by its retries), so a retry after a lost answer returns the first request's record
// instead of running twice; see http.ts for which failures are retried.
//
//   const sg = new SandgateClient({ baseUrl: 'http://127.0.0.1:8080', token });
//   const task = await sg.createTask({ goal: 'summarise the report', budget: { maxSpend: 1 } });
//   const run = await sg.runCode({ profile: 'python', code: 'print(6*7)', taskId: task.id });
//   const mail = await sg.callTool('send_email', { to, subject, body }, { taskId: task.id });
//   const done = await sg.waitForApproval(mail.id);
import type { z } from 'zod';
import type { Action, ActionRequest, ActionStatus } from '../contract/action.ts';
import type { Trace } from '../contract/console.ts';
import type { Execution, ExecutionRequest, ExecutionStatus } from '../contract/execution.ts';
import type { ProfileView } from '../contract/profile.ts';
import type { CreateTaskRequest, ReportUsageRequest, Task, TaskUsage } from '../contract/task.ts';
import type { ToolInfo } from '../contract/tool.ts';
import { SandgateApiError } from './errors.ts';
import { createHttp, type Http, type HttpOptions } from './http.ts';
import { readSse } from './sse.ts';

export * from './errors.ts';
export type { Action, Execution, Task };

export type RunCodeRequest = z.input<typeof ExecutionRequest>;
export type CreateTaskInput = z.input<typeof CreateTaskRequest>;
export type UsageReport = z.input<typeof ReportUsageRequest>;
export type CallToolOptions = Omit<z.input<typeof ActionRequest>, 'tool' | 'args'> & {
  idempotencyKey?: string;
  /** Wait for the call's end (default); an irreversible tool's answer comes back awaiting approval at once. */
  wait?: boolean;
  signal?: AbortSignal;
};

/** One event of a run's stream (GET /v1/executions/:id/stream). */
export type StreamEvent =
  | { type: 'status'; id: string; status: ExecutionStatus; at: string }
  | { type: 'chunk'; id: string; seq: number; stream: 'stdout' | 'stderr'; data: string }
  | { type: 'truncated'; id: string }
  | { type: 'final'; id: string | undefined; execution: Execution };

const FINAL_ACTION: readonly ActionStatus[] = ['succeeded', 'failed', 'denied', 'expired', 'cancelled'];
const FINAL_RUN: readonly ExecutionStatus[] = [
  'succeeded',
  'failed',
  'timed_out',
  'memory_exceeded',
  'cancelled',
  'rejected',
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Reconnects of one stream before it gives up (each resumes at its cursor). */
const STREAM_RECONNECTS = 5;

export class SandgateClient {
  readonly #http: Http;

  constructor(opts: HttpOptions) {
    this.#http = createHttp(opts);
  }

  /** Runs code and answers with the finished execution (waited for on the server, then polled). */
  async runCode(
    request: RunCodeRequest,
    opts: { idempotencyKey?: string; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Execution> {
    const idempotencyKey = opts.idempotencyKey ?? crypto.randomUUID();
    // The server waits up to the run's timeout plus its grace; this attempt waits a little longer.
    const timeoutMs = opts.timeoutMs ?? (request.timeoutMs ?? 60_000) + 45_000;
    const { status, body } = await this.#http.json<Execution | { id: string; status: ExecutionStatus }>({
      method: 'POST',
      path: '/v1/executions?wait=true',
      body: request,
      idempotencyKey,
      timeoutMs,
      ...(opts.signal && { signal: opts.signal }),
    });
    if (status === 200) return body as Execution;
    return this.waitForExecution(body.id, { timeoutMs, ...(opts.signal && { signal: opts.signal }) });
  }

  /** Queues code and answers at once with its id (follow it with `stream` or `getExecution`). */
  async startCode(request: RunCodeRequest, opts: { idempotencyKey?: string } = {}) {
    const { body } = await this.#http.json<{ id: string; status: ExecutionStatus }>({
      method: 'POST',
      path: '/v1/executions',
      body: request,
      idempotencyKey: opts.idempotencyKey ?? crypto.randomUUID(),
    });
    return body;
  }

  async getExecution(id: string): Promise<Execution> {
    return (await this.#http.json<Execution>({ method: 'GET', path: `/v1/executions/${encodeURIComponent(id)}` })).body;
  }

  async cancelExecution(id: string): Promise<Execution> {
    return (await this.#http.json<Execution>({ method: 'DELETE', path: `/v1/executions/${encodeURIComponent(id)}` }))
      .body;
  }

  /** Polls until the run is final (bounded by `timeoutMs`). */
  async waitForExecution(id: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Execution> {
    const until = Date.now() + (opts.timeoutMs ?? 120_000);
    for (let pause = 100; ; pause = Math.min(2000, pause * 2)) {
      const e = await this.getExecution(id);
      if (FINAL_RUN.includes(e.status)) return e;
      if (Date.now() > until || opts.signal?.aborted) throw new Error(`execution ${id} is still ${e.status}`);
      await sleep(pause);
    }
  }

  /**
   * A run's events as they happen: status changes, output chunks, then `final` with the record.
   * A dropped connection is resumed at the last event's id (Last-Event-ID), so no event comes twice.
   */
  async *stream(id: string, opts: { after?: string; signal?: AbortSignal } = {}): AsyncGenerator<StreamEvent> {
    let cursor = opts.after;
    for (let reconnects = 0; reconnects <= STREAM_RECONNECTS; reconnects++) {
      let res: Response;
      try {
        res = await this.#http.open({
          method: 'GET',
          path: `/v1/executions/${encodeURIComponent(id)}/stream`,
          headers: cursor ? { 'last-event-id': cursor } : {},
          timeoutMs: 24 * 3600_000, // the stream's own life bounds it (the server ends it)
          ...(opts.signal && { signal: opts.signal }),
        });
      } catch (e) {
        if (e instanceof SandgateApiError || opts.signal?.aborted) throw e;
        await sleep(250 * 2 ** reconnects);
        continue;
      }
      try {
        for await (const e of readSse(res.body!)) {
          if (e.id) cursor = e.id;
          const data = e.data ? JSON.parse(e.data) : {};
          if (e.event === 'final') {
            yield { type: 'final', id: e.id, execution: data as Execution };
            return;
          }
          if (e.event === 'status') yield { type: 'status', id: e.id!, status: data.status, at: data.at };
          else if (e.event === 'chunk')
            yield { type: 'chunk', id: e.id!, seq: data.seq, stream: data.stream, data: data.data };
          else if (e.event === 'truncated') yield { type: 'truncated', id: e.id! };
        }
      } catch (e) {
        if (opts.signal?.aborted) throw e;
      }
      await sleep(100 * 2 ** reconnects);
    }
    throw new Error(`the stream of execution ${id} broke ${STREAM_RECONNECTS} times`);
  }

  /**
   * Calls a tool. Waits for its end unless `wait: false`; an irreversible tool answers at once with
   * `status: 'awaiting_approval'` (then `waitForApproval`).
   */
  async callTool(tool: string, args: Record<string, unknown>, opts: CallToolOptions = {}): Promise<Action> {
    const { idempotencyKey = crypto.randomUUID(), wait = true, signal, ...rest } = opts;
    const { body } = await this.#http.json<{ id: string; status: ActionStatus }>({
      method: 'POST',
      path: '/v1/actions',
      body: { tool, args, ...rest },
      idempotencyKey,
      ...(signal && { signal }),
    });
    if (!wait || body.status === 'awaiting_approval') return this.getAction(body.id);
    return this.#waitForAction(body.id, 130_000, signal);
  }

  async getAction(id: string): Promise<Action> {
    return (await this.#http.json<Action>({ method: 'GET', path: `/v1/actions/${encodeURIComponent(id)}` })).body;
  }

  /**
   * Waits until a human has decided on the action and it has ended: `succeeded` or `failed` once
   * approved and made, `denied` or `expired` otherwise. Follows the action's event stream,
   * falling back to polling; bounded by `timeoutMs` (default 15 min, the default approval TTL).
   */
  async waitForApproval(id: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Action> {
    return this.#waitForAction(id, opts.timeoutMs ?? 15 * 60_000, opts.signal);
  }

  async #waitForAction(id: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<Action> {
    const until = Date.now() + timeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const stop = signal ? AbortSignal.any([signal, deadline]) : deadline;
    for (let pause = 100; ; pause = Math.min(2000, pause * 2)) {
      const action = await this.getAction(id);
      if (FINAL_ACTION.includes(action.status)) return action;
      if (Date.now() > until) throw new Error(`action ${id} is still ${action.status}`);
      signal?.throwIfAborted();
      // Follow its stream until `final` (or the deadline); then read the record again.
      try {
        const res = await this.#http.open({
          method: 'GET',
          path: `/v1/actions/${encodeURIComponent(id)}/stream`,
          timeoutMs,
          signal: stop,
        });
        for await (const e of readSse(res.body!)) if (e.event === 'final') break;
      } catch (e) {
        if (signal?.aborted) throw e;
        if (e instanceof SandgateApiError && e.status !== 404) throw e;
        await sleep(pause);
      }
    }
  }

  async createTask(input: CreateTaskInput): Promise<Task> {
    return (await this.#http.json<Task>({ method: 'POST', path: '/v1/tasks', body: input })).body;
  }

  async getTask(id: string): Promise<Task> {
    return (await this.#http.json<Task>({ method: 'GET', path: `/v1/tasks/${encodeURIComponent(id)}` })).body;
  }

  /** Adds the agent's own model usage to the task (and its day); 402 budget_exceeded once a cap is passed. */
  async reportUsage(taskId: string, usage: UsageReport): Promise<{ remaining: TaskUsage }> {
    return (
      await this.#http.json<{ remaining: TaskUsage }>({
        method: 'POST',
        path: `/v1/tasks/${encodeURIComponent(taskId)}/usage`,
        body: usage,
      })
    ).body;
  }

  /** The task's audit records in order with a readable story. */
  async trace(taskId: string): Promise<z.infer<typeof Trace>> {
    return (
      await this.#http.json<z.infer<typeof Trace>>({
        method: 'GET',
        path: `/v1/tasks/${encodeURIComponent(taskId)}/trace`,
      })
    ).body;
  }

  async tools(): Promise<Array<z.infer<typeof ToolInfo>>> {
    return (await this.#http.json<{ tools: Array<z.infer<typeof ToolInfo>> }>({ method: 'GET', path: '/v1/tools' }))
      .body.tools;
  }

  async profiles(): Promise<ProfileView[]> {
    return (await this.#http.json<{ profiles: ProfileView[] }>({ method: 'GET', path: '/v1/profiles' })).body.profiles;
  }
}
