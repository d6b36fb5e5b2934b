// The runner: the only BullMQ Worker of the execution queues. One worker per engine queue takes
// jobs and hands each to the executions lifecycle (guard/lifecycle/execution-lifecycle.ts):
// `start` (queued → running exactly once), the engine runs it, `finish`. What is BullMQ's
// business stays here: concurrency, stalled jobs, cancels reaching the run, pausing while an
// engine is down, and the grace period at shutdown.
import { DelayedError, type Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../contract/config.ts';
import { resultError } from '../contract/errors.ts';
import { type EngineResult, type Execution, ExecutionJob } from '../contract/execution.ts';
import type { EngineName, Profile } from '../contract/profile.ts';
import { executionQueueName } from '../contract/queues.ts';
import { LATE, within } from '../contract/within.ts';
import type { ExecutionLifecycle, HereClaim, WorkOwner } from '../guard/lifecycle/execution-lifecycle.ts';
import { NO_STAGES, type StageClock } from '../guard/lifecycle/stages.ts';
import type { ProfileSet } from '../guard/profiles.ts';
import { subscribeCancels } from '../state/cancel-channel.ts';
import type { EventStreamWriter, OutputPublisher } from '../state/event-streams.ts';
import type { ExecutionStore } from '../state/executions.ts';
import { queuePrefix, redisKeys } from '../state/keys.ts';
import type { LocalRuns } from '../state/local-runs.ts';
import type { RedisClient } from '../state/redis-client.ts';
import { type Engine, EngineUnavailable, faultResult } from './engines/engine.ts';
import { heldOutput } from './engines/held-output.ts';
import type { RunMetrics } from './run-metrics.ts';
import { createSlots, type Slots } from './slots.ts';

export interface WorkerDeps {
  config: Config;
  /** For BullMQ (needs maxRetriesPerRequest: null); the worker duplicates it for blocking reads. */
  connection: RedisClient;
  /** A connection this worker may put into subscriber mode. */
  subscriber: RedisClient;
  executions: ExecutionLifecycle;
  profiles: ProfileSet;
  engines: Partial<Record<EngineName, Engine>>;
  metrics: RunMetrics;
  logger: Logger;
  stages?: StageClock;
  /** Publishes each run's output into its event stream as it arrives. */
  streams?: EventStreamWriter;
  store: ExecutionStore;
  /** Where runs taken straight from this process's API side are listed (without it: none are). */
  local?: LocalRuns;
}

export interface RunnerHandle {
  /** Stops taking work; in-flight runs get the grace period, then are cancelled. */
  /** `closeBy` (ms since the epoch): when the engines must have let go (the shutdown's deadline). */
  close(graceMs?: number, closeBy?: number): Promise<void>;
  inFlight(): number;
  /**
   * A free slot of the job's engine in this process, for a run admission creates running and
   * this runner runs at once (no queue, no pick-up, no start of its own); the run is listed under
   * this runner as of then. A slot busy now may be waited for briefly (HERE_WAIT_MS, behind a
   * short line). Undefined, and nothing taken, when there is none (the job goes through the queue).
   */
  claimHere(job: ExecutionJob): Promise<HereClaim | undefined>;
}

/**
 * How long a run to be taken here waits for a busy slot of its engine before it goes through the
 * queue: an isolate run frees its slot within a few ms, and waiting costs less than the queue's
 * round trips; a container run takes longer, and goes to the queue where any runner may take it.
 */
export const HERE_WAIT_MS = 20;

/** A run handed to its engine. */
interface Launched {
  controller: AbortController;
  output: OutputPublisher | undefined;
  running: Promise<EngineResult>;
  /** The engine's time with it, once it has let go (a run started early may wait for its admission after). */
  engineMs(): number;
}

/** How often work held by a paused task or a suspended agent is looked at again. */
export const HELD_RETRY_MS = 1000;

/** `fn` at most once, however often the result is called. */
function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

export async function buildWorker(deps: WorkerDeps): Promise<RunnerHandle> {
  const { config, executions, profiles, metrics, logger, local } = deps;
  const stages = deps.stages ?? NO_STAGES;
  const inFlight = new Map<string, AbortController>();
  /** Runs that have ended here and whose result is being written: never "lost" by this process. */
  const holding = new Set<string>();
  const stopRetrying = new AbortController();
  const keys = redisKeys(config.SANDGATE_PREFIX);

  await subscribeCancels(deps.subscriber, config.SANDGATE_PREFIX, (id) => {
    inFlight.get(id)?.abort(new Error('cancelled'));
  });

  const concurrency: Record<EngineName, number> = {
    isolate: config.SANDGATE_ISOLATE_CONCURRENCY,
    docker: config.SANDGATE_DOCKER_CONCURRENCY,
  };
  const slots = Object.fromEntries(
    (Object.keys(deps.engines) as EngineName[]).map((e) => [e, createSlots(concurrency[e])]),
  ) as Partial<Record<EngineName, Slots>>;

  /**
   * Hands a run to its engine. A run started ahead of its admission's end: its tool calls wait
   * for `gates.tools` (the admission's yes), its output for `gates.output` (that yes, and its
   * request's audit record durable).
   */
  const launch = (
    data: ExecutionJob,
    profile: Profile,
    engine: Engine,
    gates?: { tools: Promise<boolean>; output: Promise<boolean> },
  ): Launched => {
    const controller = new AbortController();
    inFlight.set(data.id, controller);
    const stream = deps.streams?.output(keys.execution.stream(data.id));
    const output = stream && gates ? heldOutput(stream, gates.output) : stream;
    const admitted = gates?.tools;
    const engineStarted = performance.now();
    let engineMs = 0;
    const running = engine.run(data, profile, controller.signal, output, admitted).then((result) => {
      engineMs = performance.now() - engineStarted;
      return result;
    });
    // Awaited later (runAdmitted, or drop): a run started early may fail before its admission ends.
    running.catch(() => {});
    return { controller, output, running, engineMs: () => engineMs };
  };

  /** A run started ahead of an admission that did not end in yes: stopped, and nothing of it kept. */
  const drop = async (id: string, early: Launched): Promise<void> => {
    early.controller.abort(new Error('not admitted'));
    await early.running.catch(() => undefined);
    inFlight.delete(id);
  };

  /**
   * start → the engine → finish, for a job of either door (queue or this process's API side).
   * `engineDone` is called once the engine has let go of the run (its slot may serve the next run
   * while this one's end is written), or not at all when it never reached the engine. `early`:
   * the run was handed to its engine ahead of its admission's end (HereClaim.begin). `shown`: its
   * request's audit record is still being made durable (see finish).
   */
  const runAdmitted = async (
    data: ExecutionJob,
    profile: Profile,
    engine: Engine,
    createdRunning: boolean,
    engineDone: () => void,
    early?: Launched,
    shown?: Promise<boolean>,
  ): Promise<'held' | 'skip' | { record?: Execution }> => {
    let start: Awaited<ReturnType<typeof executions.start>> | undefined;
    try {
      start = await executions.start(data, createdRunning);
    } finally {
      if (early && start !== 'run') await drop(data.id, early); // it will not run: nothing of it kept
    }
    if (start !== 'run') return start;

    const launched = early ?? launch(data, profile, engine);
    const { controller, output, running } = launched;
    let result: EngineResult;
    let endedAt = new Date();
    try {
      executions.started(data, profile);
      result = await running;
      stages.observe('code', result.usage.wallMs);
      stages.observe('sandbox', Math.max(0, launched.engineMs() - result.usage.wallMs));
    } catch (e) {
      if (e instanceof EngineUnavailable) {
        inFlight.delete(data.id);
        await executions.unavailable(data, `the ${profile.engine} engine could not start the run: ${e.message}`);
        return {};
      }
      logger.error({ err: e, id: data.id }, 'engine fault');
      result = faultResult(resultError('engine_fault'));
    } finally {
      inFlight.delete(data.id);
      // Before the record's end: the last chunks land ahead of the final event.
      output?.close();
      // The record's finishedAt is the engine's end, before its slot serves another run: a
      // record's running span is its time in the sandbox, and spans of one slot never overlap.
      endedAt = new Date();
      engineDone();
    }
    if (
      result.status === 'cancelled' &&
      controller.signal.reason instanceof Error &&
      controller.signal.reason.message === 'shutdown'
    ) {
      result.error = resultError('runner_shutdown');
    }
    holding.add(data.id);
    try {
      const record = await executions.finish(data, profile, result, stopRetrying.signal, endedAt, shown);
      metrics.observe(profile.name, result.status, result.usage.wallMs, result.usage.cpuMs);
      return record ? { record } : {};
    } finally {
      holding.delete(data.id);
    }
  };

  const process = async (job: Job, token?: string): Promise<void> => {
    // BullMQ's timestamp is the add's (or the delay's end): wall clocks of one machine or NTP.
    stages.observe('pickup', Math.max(0, Date.now() - job.timestamp - (job.delay ?? 0)));
    const parsed = ExecutionJob.safeParse(job.data);
    if (!parsed.success) {
      logger.error({ jobId: job.id, issues: parsed.error.issues }, 'malformed job');
      await executions.malformed(String(job.id));
      return;
    }
    const data = parsed.data;
    const profile = profiles.get(data.profile);
    const engine = profile && deps.engines[profile.engine];
    const engineSlots = profile && slots[profile.engine];
    if (!profile || !engine || !engineSlots) {
      await executions.unavailable(data, `this runner cannot run profile "${data.profile}"`);
      return;
    }
    await engineSlots.take();
    const give = once(() => engineSlots.give());
    let ran: Awaited<ReturnType<typeof runAdmitted>>;
    try {
      ran = await runAdmitted(data, profile, engine, false, give);
    } finally {
      give();
    }
    if (ran === 'held') {
      // Its agent is suspended or its task paused: it waits in the queue, looked at again later.
      await job.moveToDelayed(Date.now() + HELD_RETRY_MS, token);
      throw new DelayedError();
    }
  };

  /** Ends a run taken here whose runner side failed (Redis away): as a lost queue job would end. */
  const unsettled = new Map<string, ExecutionJob>();
  const settleLost = async (id: string, owner: WorkOwner | undefined) => {
    await executions.lost(id, owner);
    await local?.remove(id);
  };
  const here = new Set<Promise<unknown>>();
  let closing = false;

  const claimHere = async (data: ExecutionJob): Promise<HereClaim | undefined> => {
    const profile = profiles.get(data.profile);
    const engine = profile && deps.engines[profile.engine];
    const engineSlots = profile && slots[profile.engine];
    if (closing || !local || !profile || !engine || !engineSlots) return undefined;
    if (!(await engineSlots.takeWithin(HERE_WAIT_MS))) return undefined;
    if (closing) {
      engineSlots.give();
      return undefined;
    }
    // Listed before its record is made running (same connection, sent first): if this process
    // dies from then on, a sweep ends it.
    const listed = local.add(data.id).then(
      () => true,
      (e: Error) => {
        logger.warn({ err: e.message, id: data.id }, 'a run taken here could not be listed under its runner');
        return false;
      },
    );
    const unlist = () => void listed.then((ok) => (ok ? local.remove(data.id) : undefined)).catch(() => {});
    const tools = Promise.withResolvers<boolean>();
    const output = Promise.withResolvers<boolean>();
    let early: Launched | undefined;
    let claimed = true;
    const startsEarly = engine.sealed === true && config.SANDGATE_ISOLATE_EARLY_START;
    return {
      startsEarly,
      begin() {
        if (claimed && !early && startsEarly)
          early = launch(data, profile, engine, { tools: tools.promise, output: output.promise });
      },
      release() {
        if (!claimed) return;
        claimed = false;
        tools.resolve(false);
        output.resolve(false);
        const done = () => {
          engineSlots.give();
          unlist();
        };
        if (early) void drop(data.id, early).finally(done);
        else done();
      },
      run(shown) {
        if (!claimed) throw new Error(`the slot of ${data.id} was given back`);
        claimed = false;
        tools.resolve(true);
        if (shown) {
          void shown.then((yes) => {
            output.resolve(yes);
            if (!yes) early?.controller.abort(new Error('not admitted'));
          });
        } else output.resolve(true);
        const give = once(() => engineSlots.give());
        const run = runAdmitted(data, profile, engine, true, give, early, shown)
          .then((ran) => {
            unlist();
            return typeof ran === 'object' ? ran.record : undefined;
          })
          .catch((e: Error) => {
            logger.error({ err: e.message, id: data.id }, 'a run taken here failed in its runner');
            unsettled.set(data.id, data);
            return undefined;
          })
          .finally(() => {
            give();
            here.delete(run);
          });
        here.add(run);
        return run;
      },
    };
  };

  // Runs listed by runners that died, and this runner's own that could not be ended: ended now.
  const sweepEvery = Math.max(250, Math.floor(config.SANDGATE_HEARTBEAT_TTL_MS / 3));
  let lastSweepError = 0;
  const sweep = async () => {
    if (!local) return;
    for (const [id, data] of [...unsettled]) {
      await settleLost(id, data); // still failing: kept, and this sweep ends (Redis is away)
      unsettled.delete(id);
    }
    for (const { runner, ids } of await local.orphans()) {
      for (const id of ids) {
        const record = await deps.store.get(id);
        if (record) await executions.lost(id, record);
      }
      if (ids.length > 0) logger.warn({ runner, runs: ids.length }, 'ended the runs of a runner that is gone');
      await local.forget(runner, ids);
    }
  };
  let sweeping = false; // one sweep at a time: a slow one is not overtaken by the next tick
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    sweep()
      .catch((e: Error) => {
        if (Date.now() - lastSweepError < 10_000) return;
        lastSweepError = Date.now();
        logger.error({ err: e.message }, 'sweeping the runs of gone runners failed');
      })
      .finally(() => {
        sweeping = false;
      });
  }, sweepEvery);
  sweeper.unref();

  const workers = (Object.keys(deps.engines) as EngineName[]).map((engineName) => {
    const worker = new Worker(executionQueueName(engineName), process, {
      connection: deps.connection,
      prefix: queuePrefix(config.SANDGATE_PREFIX, executionQueueName(engineName)),
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
      const data = ExecutionJob.safeParse(job.data);
      executions
        .lost(id, data.success ? data.data : undefined)
        .catch((e: Error) => logger.error({ err: e.message, id }, 'could not settle a lost job'));
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
      logger.info(
        { engine: engineName, available },
        available ? 'taking jobs again' : 'not taking jobs while the engine is unavailable',
      );
    });
    return worker;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));

  return {
    inFlight: () => inFlight.size,
    claimHere,
    async close(graceMs = config.SANDGATE_SHUTDOWN_GRACE_MS, closeBy?: number) {
      closing = true;
      clearInterval(sweeper);
      const drained = Promise.all([...workers.map((w) => w.close()), ...here]);
      if ((await within(drained, graceMs)) === LATE) {
        logger.warn({ inFlight: inFlight.size }, 'grace period over: cancelling in-flight runs');
        for (const c of inFlight.values()) c.abort(new Error('shutdown'));
        await drained;
      }
      stopRetrying.abort();
      deps.subscriber.disconnect();
      // The engines get what is left of the shutdown's time (removing containers is slow when
      // dockerd is busy), never less than their own floor.
      const budget = closeBy ? closeBy - Date.now() : undefined;
      await Promise.all(Object.values(deps.engines).map((e) => e?.close(budget)));
    },
  };
}
