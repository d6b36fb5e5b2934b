// The actions runner: a BullMQ Worker on the actions queue, around the tool-call lifecycle
// (guard/lifecycle/action-lifecycle.ts). A tool call runs at most once: `start` moves it queued →
// running exactly once and uses an irreversible call's approval (single-use, for these exact
// arguments); a job whose runner died is failed, never retried. Delayed "expire" jobs end
// approvals nobody decided on.
import { DelayedError, type Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { ActionJob } from '../../contract/action.ts';
import type { Config } from '../../contract/config.ts';
import { resultError } from '../../contract/errors.ts';
import { ACTIONS_QUEUE } from '../../contract/queues.ts';
import type { ActionLifecycle } from '../../guard/lifecycle/action-lifecycle.ts';
import type { ToolSet } from '../../guard/tools/tool-registry.ts';
import { queuePrefix } from '../../state/keys.ts';
import type { RedisClient } from '../../state/redis-client.ts';
import { HELD_RETRY_MS } from '../worker.ts';
import type { Lookup } from './egress/safe-fetch.ts';
import type { HandlerResult } from './handlers/handler.ts';
import { runHttpCall } from './handlers/http-call.ts';
import { type HttpFetchArgs, runHttpFetch } from './handlers/http-fetch.ts';

export interface ActionWorkerDeps {
  config: Config;
  connection: RedisClient;
  toolCalls: ActionLifecycle;
  tools: ToolSet;
  /** Where handlers read the operator's credentials. */
  env: Record<string, string | undefined>;
  logger: Logger;
  /** Tests play hostile DNS through this. */
  lookup?: Lookup;
}

export const EXPIRE_JOB = 'expire';

export async function buildActionWorker(deps: ActionWorkerDeps): Promise<{ close(): Promise<void> }> {
  const { toolCalls, logger } = deps;

  /** The call itself, once the lifecycle has let it start: only a handler, never a policy. */
  const call = (job: ActionJob): Promise<HandlerResult> => {
    const tool = deps.tools.get(job.tool)!;
    if (tool.definition.handler.type === 'http_fetch')
      return runHttpFetch(tool.definition, job.args as unknown as HttpFetchArgs, job.destinations, deps.lookup);
    return runHttpCall(tool, job.id, job.args, deps.env);
  };

  const process = async (job: Job, token?: string): Promise<void> => {
    if (job.name === EXPIRE_JOB) {
      const { approvalId, actionId } = job.data as { approvalId: string; actionId: string };
      await toolCalls.expire(approvalId, actionId);
      return;
    }
    const parsed = ActionJob.safeParse(job.data);
    if (!parsed.success) {
      logger.error({ jobId: job.id }, 'malformed action job');
      return;
    }
    const data = parsed.data;
    const started = await toolCalls.start(data);
    if (!started.go && started.held) {
      // Its agent is suspended or its task paused: the call waits in the queue.
      await job.moveToDelayed(Date.now() + HELD_RETRY_MS, token);
      throw new DelayedError();
    }
    if (!started.go) {
      if (started.ended) await toolCalls.finish(data, started.ended);
      return;
    }
    let outcome: HandlerResult;
    try {
      outcome = await call(data);
    } catch (e) {
      logger.error({ err: e, id: data.id }, 'tool handler fault');
      outcome = { ok: false, error: resultError('tool_fault'), egress: [] };
    }
    await toolCalls.finish(data, outcome);
  };

  const worker = new Worker(ACTIONS_QUEUE, process, {
    connection: deps.connection,
    prefix: queuePrefix(deps.config.SANDGATE_PREFIX, ACTIONS_QUEUE),
    concurrency: deps.config.SANDGATE_ACTIONS_CONCURRENCY,
    maxStalledCount: 0, // a call must never be made twice
    lockDuration: deps.config.SANDGATE_LOCK_MS,
    stalledInterval: deps.config.SANDGATE_STALLED_CHECK_MS,
  });
  worker.on('failed', (job, err) => {
    if (!job || job.name === EXPIRE_JOB) return;
    logger.warn({ id: job.id, reason: err.message }, 'action job failed in the queue');
    toolCalls.lost(String(job.id)).catch(() => {});
  });
  worker.on('error', () => {}); // Redis outages surface through readiness and failing requests
  await worker.waitUntilReady();
  return { close: () => worker.close() };
}
