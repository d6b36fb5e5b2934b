// The runner: the only BullMQ Worker. One worker per engine queue takes jobs, moves the record
// queued → running (exactly once: a job handed out again after a crash finds it running and is
// failed instead of run twice), runs the engine, prices the usage and writes the final record.
import { type Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../contract/config.ts';
import { type EngineResult, ExecutionJob } from '../contract/execution.ts';
import type { EngineName } from '../contract/profile.ts';
import { executionQueueName } from '../contract/queues.ts';
import { subscribeCancels } from '../state/cancel-channel.ts';
import type { ExecutionStore } from '../state/executions.ts';
import { TASK_EXHAUSTED, type WorkCanceller } from '../guard/lifecycle/cancel-work.ts';
import type { BudgetStore } from '../state/budgets.ts';
import { actualCost } from '../guard/budget/pricing.ts';
import { type Auditor, capped } from '../guard/audit/auditor.ts';
import { sha256Hex } from '../guard/audit/canonical.ts';
import type { ProfileSet } from '../guard/profiles.ts';
import { type Engine, EngineUnavailable, faultResult } from './engines/engine.ts';
import { retryUntilDone } from './retry.ts';
import type { RunMetrics } from './run-metrics.ts';

export interface WorkerDeps {
  config: Config;
  /** For BullMQ (needs maxRetriesPerRequest: null); the worker duplicates it for blocking reads. */
  connection: Redis;
  /** A connection this worker may put into subscriber mode. */
  subscriber: Redis;
  store: ExecutionStore;
  budgets: BudgetStore;
  canceller: WorkCanceller;
  audit: Auditor;
  profiles: ProfileSet;
  engines: Partial<Record<EngineName, Engine>>;
  metrics: RunMetrics;
  logger: Logger;
}

export interface RunnerHandle {
  /** Stops taking work; in-flight runs get the grace period, then are cancelled. */
  close(graceMs?: number): Promise<void>;
  inFlight(): number;
}

const RUNNER_LOST = {
  code: 'runner_lost',
  message: 'the runner executing this run stopped before it finished; it is not retried, so the code never runs twice',
};

/** Settles a reservation at its full amount (the script caps the cost at what was reserved). */
const WORST_CASE = 1e6;

/** How long a finished run's result is held and retried while Redis is away. */
const RESULT_HOLD_MS = 5 * 60_000;

export async function buildWorker(deps: WorkerDeps): Promise<RunnerHandle> {
  const { config, store, profiles, metrics, logger } = deps;
  const inFlight = new Map<string, AbortController>();
  /** Runs that have ended here and whose result is being written: never "lost" by this process. */
  const holding = new Set<string>();
  const stopRetrying = new AbortController();

  await subscribeCancels(deps.subscriber, config.SANDGATE_PREFIX, (id) => {
    inFlight.get(id)?.abort(new Error('cancelled'));
  });

  const settleRun = async (job: Pick<ExecutionJob, 'id' | 'agentId' | 'taskId'>, cost: number, refund: boolean) => {
    const { exhausted } = await deps.budgets.settle({ id: job.id, agentId: job.agentId, taskId: job.taskId, cost, refund });
    // Stop, not spiral: once the task's spend is gone, nothing queued for it starts.
    if (exhausted && job.taskId) {
      const cancelled = await deps.canceller.cancelQueuedOfTask(job.taskId, TASK_EXHAUSTED);
      const ctx = { agentId: job.agentId, taskId: job.taskId, subject: job.id };
      await deps.audit.record('task.exhausted', ctx, { cap: exhausted, cancelledExecutions: cancelled }).catch(() => {});
    }
  };

  const process = async (job: Job): Promise<void> => {
    const parsed = ExecutionJob.safeParse(job.data);
    if (!parsed.success) {
      logger.error({ jobId: job.id, issues: parsed.error.issues }, 'malformed job');
      await store.finish(String(job.id), 'failed', { error: { code: 'malformed_job', message: 'the queued job did not match the contract' } });
      return;
    }
    const data = parsed.data;
    const profile = profiles.get(data.profile);
    const engine = profile && deps.engines[profile.engine];
    const settle = (cost: number, refund = false) => settleRun(data, cost, refund);
    if (!profile || !engine) {
      const error = { code: 'engine_unavailable', message: `this runner cannot run profile "${data.profile}"` };
      if ((await store.finish(data.id, 'failed', { error })) === 'done') await settle(0, true);
      return;
    }
    if (!(await store.markRunning(data.id))) {
      // Cancelled while queued (refunded; nothing to run), or started before by a runner that
      // died: that one is charged its worst case, as it may have used all of it.
      const lost = (await store.finish(data.id, 'failed', { error: RUNNER_LOST })) === 'done';
      await (lost ? settle(WORST_CASE) : settle(0, true));
      return;
    }
    const ctx = { agentId: data.agentId, taskId: data.taskId, subject: data.id };
    // Appended in call order, so it lands before the run's end in this process's chain.
    deps.audit.record('run.started', ctx, { profile: profile.name }).catch((e: Error) => logger.error({ err: e.message, id: data.id }, 'run start not audited'));
    const controller = new AbortController();
    inFlight.set(data.id, controller);
    let result: EngineResult;
    try {
      result = await engine.run(data, profile, controller.signal);
    } catch (e) {
      if (e instanceof EngineUnavailable) {
        // Nothing of it ran (no sandbox could be started): failed and refunded in full.
        inFlight.delete(data.id);
        const error = { code: 'engine_unavailable', message: `the ${profile.engine} engine could not start the run: ${e.message}` };
        await deps.audit.record('run.finished', ctx, { status: 'failed', error, usage: null }).catch(() => undefined);
        if ((await store.finish(data.id, 'failed', { error })) === 'done') await settle(0, true);
        return;
      }
      logger.error({ err: e, id: data.id }, 'engine fault');
      result = faultResult('engine_fault', 'the engine failed to run this job; see the runner log');
    } finally {
      inFlight.delete(data.id);
    }
    if (result.status === 'cancelled' && controller.signal.reason instanceof Error && controller.signal.reason.message === 'shutdown') {
      result.error = { code: 'runner_shutdown', message: 'the runner shut down before the run finished' };
    }
    const usage = { ...result.usage, measured: result.usage.measured ?? true, cost: actualCost(profile, data.limits, result.usage) };
    const { status, exitCode, stdout, stderr, truncated } = result;
    const auditId = await deps.audit
      .record('run.finished', ctx, {
        status,
        exitCode,
        usage,
        stdout: capped(stdout),
        stderr: capped(stderr),
        result: result.result === undefined ? null : capped(JSON.stringify(result.result)),
        files: (result.files ?? []).map((f) => ({ path: f.path, sha256: sha256Hex(f.content) })),
        truncated,
        error: result.error ?? null,
      })
      .catch((e: Error) => {
        // The code has run: its result is still returned; the missing record is logged loudly.
        logger.error({ err: e.message, id: data.id }, 'the end of a run could not be audited');
        return undefined;
      });
    const outcome = {
      ...(auditId && { auditId }),
      exitCode,
      stdout,
      stderr,
      truncated,
      usage,
      ...(result.result !== undefined && { result: result.result }),
      ...(result.files && { files: result.files }),
      ...(result.error && { error: result.error }),
    };
    // The run has ended: its result is held here and written through a Redis blip rather than
    // lost (the job would otherwise end runner_lost, charged its worst case).
    holding.add(data.id);
    try {
      await retryUntilDone(
        async () => {
          // Cancelled while it ran (DELETE, revocation): the record is final already; add what it used.
          if ((await store.finish(data.id, status, outcome)) === 'refused') await store.amendCancelled(data.id, outcome);
        },
        { what: 'the result of a run', untilMs: RESULT_HOLD_MS, stop: stopRetrying.signal, logger, context: { id: data.id } },
      );
      await retryUntilDone(() => settle(usage.cost), { what: 'settling a run', untilMs: RESULT_HOLD_MS, stop: stopRetrying.signal, logger, context: { id: data.id } }).catch(
        (e) => logger.error({ err: (e as Error).message, id: data.id }, 'could not settle the run'),
      );
    } finally {
      holding.delete(data.id);
    }
    metrics.observe(profile.name, status, usage.wallMs, usage.cpuMs);
  };

  const concurrency: Record<EngineName, number> = {
    isolate: config.SANDGATE_ISOLATE_CONCURRENCY,
    docker: config.SANDGATE_DOCKER_CONCURRENCY,
  };
  const workers = (Object.keys(deps.engines) as EngineName[]).map((engineName) => {
    const worker = new Worker(executionQueueName(engineName), process, {
      connection: deps.connection,
      prefix: config.SANDGATE_PREFIX,
      concurrency: concurrency[engineName],
      // A run must never start twice: a job whose runner died is failed, not retried.
      maxStalledCount: 0,
      lockDuration: config.SANDGATE_LOCK_MS,
      stalledInterval: config.SANDGATE_STALLED_CHECK_MS,
      autorun: true,
    });
    worker.on('failed', (job, err) => {
      if (!job) return;
      const id = String(job.id);
      // Held here (its result is on its way through a Redis blip): this process is its runner.
      if (inFlight.has(id) || holding.has(id)) return;
      logger.warn({ id, reason: err.message }, 'job failed in the queue');
      // The queue gave up on the job (its runner crashed): the record must not stay "running".
      // A run that had started may have used its whole reservation; one that never did, none.
      const data = ExecutionJob.safeParse(job.data);
      const lost = async () => {
        if ((await store.finish(id, 'failed', { error: RUNNER_LOST }, ['running'])) === 'done') {
          if (data.success) await settleRun(data.data, WORST_CASE, false);
        } else if ((await store.finish(id, 'failed', { error: RUNNER_LOST }, ['queued'])) === 'done') {
          if (data.success) await settleRun(data.data, 0, true);
        }
      };
      lost().catch((e: Error) => logger.error({ err: e.message, id }, 'could not settle a lost job'));
    });
    let lastError = 0; // a Redis outage repeats the same error per reconnect: log it every 10 s
    worker.on('error', (err) => {
      if (Date.now() - lastError < 10_000) return;
      lastError = Date.now();
      logger.error({ err: err.message }, `worker ${engineName} error`);
    });
    // While its engine cannot take work, the worker takes none: jobs wait in the queue (for this
    // runner's recovery, or for another runner) instead of failing.
    deps.engines[engineName]?.onAvailability?.((available) => {
      if (available) worker.resume();
      else void worker.pause(true).catch(() => {});
      logger.info({ engine: engineName, available }, available ? 'taking jobs again' : 'not taking jobs while the engine is unavailable');
    });
    return worker;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));

  return {
    inFlight: () => inFlight.size,
    async close(graceMs = config.SANDGATE_SHUTDOWN_GRACE_MS) {
      const closing = Promise.all(workers.map((w) => w.close()));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        closing.then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), graceMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        logger.warn({ inFlight: inFlight.size }, 'grace period over: cancelling in-flight runs');
        for (const c of inFlight.values()) c.abort(new Error('shutdown'));
        await closing;
      }
      stopRetrying.abort();
      deps.subscriber.disconnect();
      await Promise.all(Object.values(deps.engines).map((e) => e?.close()));
    },
  };
}
