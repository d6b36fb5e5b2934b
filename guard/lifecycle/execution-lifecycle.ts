// The life of a run, in one place. The HTTP route and the runner's worker call these steps; they
// re-implement none of them.
//
// API side, `admit`, in this order (refuse before you reveal; audit before effect):
//   1. task       the task the caller may name (403/404), inputs marked untrusted taint it
//   2. authorize  Cedar on the profile before anything about it is checked (403)
//   3. inputs     language, stdin/files, ceilings, code size (400/413); engine available (503)
//   4. checks     admission hooks (a paused task or suspended agent refuses here)
//   5. reserve    rate limit, task caps, worst case against task and day (429/402); sent with 4
//   6. audit      "execution.requested" is durable, or 503 and nothing happens
//   7. record     created only while the agent is not revoked; made beside 6 (it names 6's id)
//                 and taken back if 6 fails; nothing starts before both are done. When the
//                 caller waits (`here`) and this process's runner has a free slot of the engine
//                 (claimed before the record), the record is created running, the start's own
//                 step in the same call (runs here: no queue, no pick-up, no start round trip)
//   8. enqueue    onto the engine's queue; or, created running, handed to that runner
// A failure after step 5 is undone in one place (undo.ts): the reservation refunded, a record
// that was created marked `rejected`. Every refusal is audited as "execution.refused".
//
// Runner side: `start` (queued → running, exactly once) → the engine runs it → `finish` (price,
// audit "run.finished", record, settle; held and retried through a Redis blip), or
// `unavailable` (no sandbox could be started: refunded), or `lost` (the queue gave up on it).
// Every step is told to the hooks' observers.
import type { Logger } from 'pino';
import type { Agent } from '../../contract/agent.ts';
import { resultError, SandgateError } from '../../contract/errors.ts';
import type { EngineResult, Execution, ExecutionJob, ExecutionRequest, RunError } from '../../contract/execution.ts';
import type { Principal } from '../../contract/principal.ts';
import type { EngineName, Profile } from '../../contract/profile.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import type { ExecutionStore, TransitionResult } from '../../state/executions.ts';
import { type Auditor, capped } from '../audit/auditor.ts';
import { sha256Hex } from '../audit/canonical.ts';
import { actualCost, worstCaseCost } from '../budget/pricing.ts';
import { authorizeProfile } from '../policy/authorize.ts';
import type { PolicyDecisionPoint } from '../policy/decision-point.ts';
import type { ProfileSet } from '../profiles.ts';
import { taskFor, taskIdFor } from './access.ts';
import { checkInputs } from './execution-inputs.ts';
import type { Hooks } from './hooks.ts';
import { newId } from './ids.ts';
import { retryUntilDone } from './retry.ts';
import { NO_STAGES, type StageClock, timed } from './stages.ts';
import { keepTryingWith, landing, withUndo } from './undo.ts';
import { createWorkBudget, type WorkRef } from './work-budget.ts';

export interface ExecutionLifecycleDeps {
  store: ExecutionStore;
  budgets: BudgetStore;
  audit: Auditor;
  policy: PolicyDecisionPoint;
  profiles: ProfileSet;
  hooks: Hooks;
  logger: Logger;
  /** Tells the runner holding a running execution to stop it, wherever it runs. */
  publishCancel(id: string): Promise<void>;
  /** API side: puts a job on its engine's queue, takes one off, and says what can run now. */
  enqueue?(engine: EngineName, job: ExecutionJob): Promise<void>;
  dequeue?(id: string): Promise<void>;
  availableProfiles?(): Promise<ReadonlySet<string>>;
  /**
   * A free slot of this process's runner for the job's engine, for a run that starts at once
   * (see runner/worker.ts claimHere; a busy one waited for briefly); undefined when there is
   * none, and the job is queued.
   */
  claimHere?(job: ExecutionJob): Promise<HereClaim | undefined>;
  /** How long a finished run's result is held and retried while Redis is away. */
  resultHoldMs?: number;
  /** Where the time of each step goes (sandgate_stage_seconds). */
  stages?: StageClock;
  /** Aborted at shutdown: background take-backs (see admitAs) stop retrying. */
  stopRetrying?: AbortSignal;
}

/**
 * The longest a run taken here waits for its request's audit record to be written with its end:
 * longer runs have it written on its own then, so the log shows them (and a process killed
 * meanwhile leaves a record without its request) within a few ms. Most runs end sooner.
 */
export const LAZY_REQUEST_MS = 5;

/** A slot of this process's runner, held for one admitted run (runs here). */
export interface HereClaim {
  /** begin() starts the run at once (a sealed engine, and early starts on). */
  readonly startsEarly: boolean;
  /**
   * Its request is sequenced in the audit log: a sealed engine (one whose runs reach nothing
   * outside it but through held tool calls) starts the run now, beside that record's write and
   * the record's creation. Nothing of it leaves the engine (tool calls, output, result) until
   * `run` (its admission said yes); `release` stops it and drops it whole.
   */
  begin(): void;
  /**
   * Its record was created running: runs it now; the record once it has ended, if it could be
   * read. `shown`: its request's audit record is not durable yet; the run's output and its end
   * wait for it, and if it says no, the run is stopped and nothing of it is kept (the admission
   * takes its record back).
   */
  run(shown?: Promise<boolean>): Promise<Execution | undefined>;
  /** It will not run here (refused, revoked, held, failed): the slot and its listing go back. Idempotent. */
  release(): void;
}

/** Whose work it is: enough to settle it. */
export type WorkOwner = Pick<ExecutionJob, 'id' | 'agentId' | 'taskId'>;

export interface Caller {
  principal: Principal;
  agent: Agent;
  /**
   * The agent being read again while admission starts on `agent`, the copy this process read
   * last (api/auth.ts, agentReadBeside). It is awaited beside the checks and the reservation:
   * nothing is recorded, audited or refused before it is back; a refusal it brings (revoked)
   * wins, and an agent that changed since is admitted again on what was read.
   */
  verify?: Promise<Agent>;
}

/** The agent read beside admission is not the copy it started on: admit again on the new one. */
class AgentChanged extends Error {
  readonly fresh: Agent;
  constructor(fresh: Agent) {
    super('the agent changed since this process read it');
    this.fresh = fresh;
  }
}

export interface Admitted {
  id: string;
  limits: ExecutionJob['limits'];
  auditId: string;
  /** Taken by this process's runner (`here`): its record once it has ended, if it could be read. */
  ran?: Promise<Execution | undefined>;
  /**
   * Resolves once the request's audit record is durable; nothing about the run may be answered
   * before (a run started here may be admitted while that record is still being written; see
   * admitAs). Rejects, the admission undone, if it cannot be made durable.
   */
  durable: Promise<void>;
}

export interface AdmitOptions {
  /** Runs just before the record exists (subscribe a waiter there); returns its undo. */
  beforeRecord?: (id: string, limits: ExecutionJob['limits']) => () => void;
  /** The caller waits for the end: a runner of this process with a free slot may take it at once. */
  here?: boolean;
}

export interface ExecutionLifecycle {
  /** Admits a run and queues it (or, with `here`, may hand it to this process's runner). */
  admit(caller: Caller, request: ExecutionRequest, opts?: AdmitOptions): Promise<Admitted>;
  /** Cancels a queued run (refunded, off its queue) or tells the runner of a running one to stop. */
  cancel(id: string, reason: RunError): Promise<TransitionResult>;
  /** Cancels every queued and running execution of an agent (revocation); returns how many. */
  cancelAllOf(agentId: string, reason: RunError): Promise<number>;
  /** Stop, not spiral: a task whose budget is spent cancels its queued runs, and says so. */
  stopTask(agentId: string, taskId: string, cap: string): Promise<number>;

  /**
   * queued → running: `run`; `skip` when it must not run (cancelled while queued, or started
   * before); `held` while its agent is suspended or its task paused (it stays queued and waits).
   * `createdRunning`: admission made the move already (runs here). After `run`, the runner hands
   * the job to its engine and then calls `started`.
   */
  start(job: ExecutionJob, createdRunning?: boolean): Promise<'run' | 'skip' | 'held'>;
  /**
   * The run is in its engine: audited ("run.started") and told. Called right after the engine
   * has been handed the run, so the record's hashing overlaps the run rather than delaying it.
   */
  started(job: ExecutionJob, profile: Profile): void;
  /**
   * The run has ended (at `endedAt`, its record's `finishedAt`; now if not given): price, audit,
   * record and settle it; the record as GET shows it then, if it could be read. `shown`: its
   * request's audit record was still being written when it was admitted (HereClaim.run); its end
   * is sequenced (so that one write takes both) and kept only if that record became durable.
   */
  finish(
    job: ExecutionJob,
    profile: Profile,
    result: EngineResult,
    stopRetrying?: AbortSignal,
    endedAt?: Date,
    shown?: Promise<boolean>,
  ): Promise<Execution | undefined>;
  /** No sandbox could be started: nothing ran, failed and refunded. */
  unavailable(job: ExecutionJob, message: string): Promise<void>;
  /** The queue gave up on the job (its runner died): a started run is charged its worst case. */
  lost(id: string, job: WorkOwner | undefined): Promise<void>;
  /** A job that does not match the contract. */
  malformed(id: string): Promise<void>;
}

const RUNNER_LOST = resultError('runner_lost', 'run');
const TASK_EXHAUSTED = resultError('budget_exceeded');

export function createExecutionLifecycle(deps: ExecutionLifecycleDeps): ExecutionLifecycle {
  const { store, audit, hooks, logger } = deps;
  const stages = deps.stages ?? NO_STAGES;
  const ref = (job: Pick<ExecutionJob, 'id' | 'agentId' | 'taskId'>): WorkRef => ({
    id: job.id,
    kind: 'run',
    agentId: job.agentId,
    taskId: job.taskId,
  });

  /** Cancels a run that has not started: refunded in full and taken off its queue. */
  const cancelQueued = async (id: string, reason: RunError): Promise<TransitionResult> => {
    const record = await store.get(id);
    if (!record) return 'missing';
    const done = await store.cancel(id, reason, true);
    if (done === 'done') {
      await budget.settle(ref({ id, agentId: record.agentId, taskId: record.taskId }), { refund: true });
      await deps.dequeue?.(id);
    }
    return done;
  };

  const stopTask = async (agentId: string, taskId: string, cap: string): Promise<number> => {
    let cancelled = 0;
    for (const id of await store.idsOfTask(taskId))
      if ((await cancelQueued(id, TASK_EXHAUSTED)) === 'done') cancelled++;
    await audit.record('task.exhausted', { agentId, taskId }, { cap, cancelledExecutions: cancelled }).catch(() => {});
    hooks.emit({ type: 'task_exhausted', agentId, taskId, cap });
    return cancelled;
  };

  const budget = createWorkBudget({
    budgets: deps.budgets,
    hooks,
    stopTask: async (a, t, c) => void (await stopTask(a, t, c)),
  });
  const hold = <T>(what: string, id: string, fn: () => Promise<T>, stop?: AbortSignal) =>
    retryUntilDone(fn, {
      what,
      untilMs: deps.resultHoldMs ?? 5 * 60_000,
      ...(stop && { stop }),
      logger,
      context: { id },
    });
  /** How an admission's undo step that failed keeps trying, in the background (see `landing`). */
  const keepTrying = keepTryingWith({ logger, untilMs: deps.resultHoldMs ?? 5 * 60_000, stop: deps.stopRetrying });

  /**
   * The end of a run whose runner is gone, in the log: the runner's own chain has its request and
   * maybe its start, never its end, so whoever ends it says so (the log alone tells what became of
   * it, and what it was charged). A failure here is logged; the record's end stands either way.
   */
  const auditLost = (id: string, job: WorkOwner | undefined, charged: 'worst_case' | 'nothing') =>
    audit
      .record(
        'run.finished',
        { ...(job && { agentId: job.agentId, taskId: job.taskId }), subject: id },
        { status: 'failed', error: RUNNER_LOST, usage: null, charged },
      )
      .catch((e: Error) => logger.error({ err: e.message, id }, 'the end of a lost run could not be audited'));

  /** The queue gave up on it, or its runner is gone: a started run may have used its whole reservation. */
  const lost = async (id: string, job: WorkOwner | undefined): Promise<void> => {
    // Settled first, as soon as the record is final (the bill follows the record at once); the
    // log then says what it was charged.
    if ((await store.finish(id, 'failed', { error: RUNNER_LOST }, ['running'])) === 'done') {
      if (job) await budget.settle(ref(job), { worstCase: true });
      await auditLost(id, job, 'worst_case');
    } else if ((await store.finish(id, 'failed', { error: RUNNER_LOST }, ['queued'])) === 'done') {
      if (job) await budget.settle(ref(job), { refund: true });
      await auditLost(id, job, 'nothing');
    }
  };

  async function admit(caller: Caller, body: ExecutionRequest, opts: AdmitOptions = {}): Promise<Admitted> {
    try {
      return await admitAs(caller, body, opts);
    } catch (e) {
      if (!(e instanceof AgentChanged)) throw e;
      return admitAs({ principal: caller.principal, agent: e.fresh }, body, opts);
    }
  }

  async function admitAs(caller: Caller, body: ExecutionRequest, opts: AdmitOptions): Promise<Admitted> {
    const { principal, agent } = caller;
    // 1. task: the refusal is filed under the task only once it is known to be the agent's.
    const owned: { taskId: string | null } = { taskId: null };
    try {
      const taskId = taskIdFor(principal, body.taskId);
      const task = taskId ? await taskFor(deps.budgets, principal, taskId) : undefined;
      owned.taskId = taskId;
      // Untrusted inputs taint the task for good, whatever comes of the request.
      const untrusted = body.untrusted || (body.files ?? []).some((f) => f.untrusted);
      if (untrusted && taskId)
        await deps.budgets.taint(taskId, `inputs of an execution on ${body.profile} marked untrusted`);

      const policyStarted = performance.now();
      const scopes = principal.role === 'agent' ? principal.scopes : undefined;
      const { found: profile, decision } = authorizeProfile(
        deps.policy,
        { agent, scopes },
        body.profile,
        deps.profiles.get(body.profile),
        {
          taskTainted: untrusted || (task?.tainted ?? false),
        },
      );

      // 3. inputs and engine.
      const limits = checkInputs(body, profile);
      stages.observe('policy', performance.now() - policyStarted);
      if (!deps.enqueue || !(await deps.availableProfiles?.())?.has(profile.name)) {
        throw new SandgateError(
          'engine_unavailable',
          `profile "${profile.name}" cannot run now: its engine (${profile.engine}) or runtime is not available here`,
        );
      }

      const id = newId('ex', agent.id);
      const worstCase = worstCaseCost(profile, limits);
      const codeSha256 = sha256Hex(body.code);
      // What the checks see.
      const attempt = {
        kind: 'run' as const,
        id,
        agent,
        taskId,
        target: profile.name,
        // The same code with the same inputs on the same profile is the same run (a loop).
        inputHash: sha256Hex(`${profile.name}\u0000${codeSha256}\u0000${sha256Hex(body.stdin ?? '')}`),
        irreversible: false,
        tainted: untrusted || (task?.tainted ?? false),
        reaches: [],
        taskScope: task?.scope ?? null,
        worstCase,
      };
      return await withUndo(async (undo) => {
        // 4. checks and 5. reserve, sent together (one round trip, not two). A check's refusal
        // wins and the reservation made beside it is given back (undo), so a refused run costs
        // nothing but the rate limiter's tick, which a refused request is fair to spend.
        const work = ref({ id, agentId: agent.id, taskId });
        const [checked, reserved, read] = await Promise.allSettled([
          timed(stages, 'checks', () => hooks.runChecks(attempt)),
          timed(stages, 'budget', () => budget.reserve(work, agent, worstCase)),
          caller.verify ?? agent,
        ]);
        if (reserved.status === 'fulfilled')
          undo.push(landing(() => budget.settle(work, { refund: true }), keepTrying('giving back a reservation', id)));
        if (read.status === 'rejected') throw read.reason;
        if (read.value !== agent) throw new AgentChanged(read.value);
        if (checked.status === 'rejected') throw checked.reason;
        if (reserved.status === 'rejected') throw reserved.reason;

        const job: ExecutionJob = {
          id,
          agentId: agent.id,
          taskId,
          profile: profile.name,
          language: profile.language,
          code: body.code,
          stdin: body.stdin ?? '',
          files: body.files ?? [],
          limits,
          ...(scopes && { scopes }),
        };
        // A free slot here is claimed before the record exists, so the record is made running
        // (and this run listed under its runner) in the same round trip. Claimed before the audit
        // record is begun: a wait for a slot must not leave that record's write unawaited.
        const claim = opts.here ? await deps.claimHere?.(job) : undefined;
        if (claim) undo.push(() => claim.release());
        // 6. audit before effect, and 7. the record beside it. The record is no effect (the run's
        // start is, and it waits for both); it names the audit record, sequenced at once. If the
        // audit record cannot be made durable, the record is taken back as if never made (503).
        // A waiter subscribes before the record exists, so a run that ends at once is not missed.
        const unsubscribe = opts.beforeRecord?.(id, limits);
        if (unsubscribe) undo.push(unsubscribe);
        const auditStarted = performance.now();
        // A run started here at once, whose record is made running: its request's record need
        // not be durable before the admission ends, only before anything of the run is seen (its
        // output, its end; its tool calls' own records follow it in the chain, so theirs being
        // durable makes it durable). So it is written lazily, and the run's end, or its first
        // tool call, or LAZY_REQUEST_MS, writes it: a short run costs one durable write, not two.
        const lazy = claim?.startsEarly === true;
        const requested = audit.begin(
          'execution.requested',
          { agentId: agent.id, principalId: principal.id, taskId, subject: id },
          {
            profile: profile.name,
            language: profile.language,
            code: capped(body.code, 65536),
            stdin: body.stdin ? capped(body.stdin) : null,
            files: (body.files ?? []).map((f) => ({
              path: f.path,
              sha256: sha256Hex(f.content),
              encoding: f.encoding ?? 'utf8',
            })),
            limits,
            reasoning: body.reasoning ?? null,
            decision: { allowed: true, policies: decision.policies },
            budget: { reserved: worstCase },
          },
          lazy ? { lazy: LAZY_REQUEST_MS } : undefined,
        );
        if (!requested.id) await requested.durable; // refused outright: 503 before anything is made
        const auditId = requested.id!;
        claim?.begin();
        const meta = {
          id,
          profile: profile.name,
          language: profile.language,
          agentId: agent.id,
          taskId,
          createdAt: new Date().toISOString(),
          auditId,
        };
        // The 'audit' stage is the wait for it; a lazy one is not waited on (its write is the
        // run's end's, in 'result').
        const durable = requested.durable.then(() => {
          if (!lazy) stages.observe('audit', performance.now() - auditStarted);
        });
        durable.catch(() => {}); // lazy: awaited below, or by the caller (Admitted.durable)
        const [audited, created] = await Promise.allSettled([
          lazy ? undefined : durable,
          timed(stages, 'record', () =>
            claim ? store.createRunning(meta) : store.create(meta).then((ok) => (ok ? 'queued' : 'revoked')),
          ),
        ]);
        // Taken back if anything below fails: gone if its audit record is not durable, else
        // final as rejected (the log has its request; its end is the refusal).
        const rejected = () =>
          store.finish(id, 'rejected', { error: resultError('dependency_unavailable', 'the job could not be queued') });
        const takeBack = (): Promise<unknown> =>
          lazy
            ? durable.then(rejected, () => store.discard(meta))
            : audited.status === 'rejected'
              ? store.discard(meta)
              : rejected();
        if (created.status === 'fulfilled' && created.value !== 'revoked')
          undo.push(landing(takeBack, keepTrying('taking back a record whose admission failed', id)));
        else if (created.status === 'rejected') {
          // Unanswered is not refused: Redis may have made the record before the connection
          // dropped. The 503 does not wait for Redis to come back; the record is taken back then,
          // in the background, so a request answered as failed leaves no queued record behind.
          undo.push(() => void keepTrying('taking back a record whose creation went unanswered', id)(takeBack));
        }
        if (audited.status === 'rejected') throw audited.reason;
        if (created.status === 'rejected') throw created.reason;
        if (created.value === 'revoked') throw new SandgateError('agent_revoked', 'this agent has been revoked');

        // 8. Created running: this process's runner runs it now. Otherwise (no free slot here, or
        // held: its agent suspended or its task paused) onto the queue, where it waits; a queued
        // job is an effect (any runner may take it), so its request is durable first.
        const admitted = () => hooks.emit({ type: 'admitted', attempt, auditId, status: 'queued' });
        if (created.value !== 'started') {
          claim?.release();
          if (lazy) await durable;
          await timed(stages, 'enqueue', () => deps.enqueue!(profile.engine, job));
        } else if (lazy) {
          // Run now; if the request cannot be made durable, the run is stopped with nothing of it
          // kept (run's `shown`) and this admission is undone as if it had failed here. The
          // stack is still this admission's (withUndo leaves it on success).
          const shown = durable.then(
            () => {
              admitted();
              return true;
            },
            async () => {
              await undo.run();
              return false;
            },
          );
          return { id, limits, auditId, ran: claim!.run(shown), durable };
        }
        admitted();
        const ran = created.value === 'started' ? claim?.run() : undefined;
        return { id, limits, auditId, ...(ran && { ran }), durable };
      });
    } catch (e) {
      // A refusal made on the copy read last waits for the agent read again: its own refusal
      // (revoked) wins, and a changed agent is admitted again; neither is this run's refusal.
      if (caller.verify && !(e instanceof AgentChanged)) {
        const fresh = await caller.verify;
        if (fresh !== agent) throw new AgentChanged(fresh);
      }
      if (e instanceof SandgateError && e.code !== 'audit_unavailable') {
        const ctx = { agentId: agent.id, principalId: principal.id, taskId: owned.taskId };
        const data = {
          profile: body.profile,
          codeSha256: sha256Hex(body.code),
          reasoning: body.reasoning ?? null,
          refused: { code: e.code, message: e.message },
        };
        const auditId = await audit.record('execution.refused', ctx, data).catch(() => undefined);
        hooks.emit({
          type: 'refused',
          kind: 'run',
          agentId: agent.id,
          taskId: owned.taskId,
          target: body.profile,
          code: e.code,
          auditId,
        });
      }
      throw e;
    }
  }

  return {
    admit,

    async cancel(id, reason) {
      const queued = await cancelQueued(id, reason);
      if (queued !== 'refused') return queued;
      const running = await store.cancel(id, reason);
      // The record is final now; its runner stops the run and adds what it used (finish).
      if (running === 'done') await deps.publishCancel(id);
      return running;
    },

    async cancelAllOf(agentId, reason) {
      let cancelled = 0;
      for (const id of await store.idsOfAgent(agentId)) if ((await this.cancel(id, reason)) === 'done') cancelled++;
      return cancelled;
    },

    stopTask,

    async start(job, createdRunning = false) {
      const started = performance.now();
      // Held (suspended agent, paused task) is decided in the same call that starts it.
      const running = createdRunning ? 'started' : await store.markRunning(job.id, job);
      if (!createdRunning) stages.observe('start', performance.now() - started);
      if (running === 'held') return 'held';
      if (running !== 'started') {
        // Cancelled while queued (refunded already; nothing to run), or started before by a
        // runner that died: that one is charged its worst case, as it may have used all of it.
        const lost = (await store.finish(job.id, 'failed', { error: RUNNER_LOST })) === 'done';
        await budget.settle(ref(job), lost ? { worstCase: true } : { refund: true });
        if (lost) await auditLost(job.id, job, 'worst_case');
        return 'skip';
      }
      return 'run';
    },

    started(job, profile) {
      // Appended in call order, so it lands before the run's end in this process's chain; nothing
      // waits on it, so it is written with the run's end (one durable write) or within LAZY_FLUSH_MS.
      audit
        .record(
          'run.started',
          { agentId: job.agentId, taskId: job.taskId, subject: job.id },
          { profile: profile.name },
          { lazy: true },
        )
        .catch((e: Error) => logger.error({ err: e.message, id: job.id }, 'run start not audited'));
      hooks.emit({
        type: 'started',
        kind: 'run',
        id: job.id,
        agentId: job.agentId,
        taskId: job.taskId,
        target: profile.name,
      });
    },

    async finish(job, profile, result, stopRetrying, endedAt = new Date(), shown) {
      const usage = {
        ...result.usage,
        measured: result.usage.measured ?? true,
        cost: actualCost(profile, job.limits, result.usage),
      };
      const { status, exitCode, stdout, stderr, truncated } = result;
      const resultStarted = performance.now();
      const ctx = { agentId: job.agentId, taskId: job.taskId, subject: job.id };
      // Sequenced now (its id goes into the record), made durable beside the settle, and before
      // the record's move: a result is in the log before anyone can read it (a runner killed in
      // between leaves a record still running, ended runner_lost, never a final record whose end
      // the log lacks; faults/runner-kill.ts). A failed audit is logged and the result still kept.
      // finish returns once all three are done, so a run taken here is answered after its end is
      // durable.
      const ended = audit.begin('run.finished', ctx, {
        status,
        exitCode,
        usage,
        stdout: capped(stdout),
        stderr: capped(stderr),
        result: result.result === undefined ? null : capped(JSON.stringify(result.result)),
        files: (result.files ?? []).map((f) => ({ path: f.path, sha256: sha256Hex(f.content) })),
        truncated,
        error: result.error ?? null,
      });
      const audited = ended.durable.catch((e: Error) => {
        // The code has run: its result is still returned; the missing record is logged loudly.
        logger.error({ err: e.message, id: job.id }, 'the end of a run could not be audited');
        return undefined;
      });
      // Not admitted after all (its request could not be made durable, so neither can this, which
      // follows it): nothing of its end is kept; the admission has taken its record back.
      if (shown && !(await shown)) return undefined;
      const outcome = {
        ...(ended.id && { auditId: ended.id }),
        exitCode,
        stdout,
        stderr,
        truncated,
        usage,
        ...(result.result !== undefined && { result: result.result }),
        ...(result.files && { files: result.files }),
        ...(result.error && { error: result.error }),
      };
      // Held through a Redis blip rather than lost (the job would end runner_lost at its worst
      // case). Cancelled while it ran (DELETE, revocation): the record is final; add what it used.
      // Settling depends on neither the end's audit record nor the record's move (a cancelled run
      // is charged what it used too), so it goes to Redis at once, beside them; only a run whose
      // request was still being written waited above, since an unwritten run leaves no charge.
      let record: Execution | undefined;
      const recorded = audited.then(() =>
        hold(
          'the result of a run',
          job.id,
          async () => {
            const moved = await store.finishAndRead(job.id, status, outcome, endedAt);
            record = moved.record;
            if (moved.done === 'refused') await store.amendCancelled(job.id, outcome);
          },
          stopRetrying,
        ),
      );
      const resulted = recorded.then(() => stages.observe('result', performance.now() - resultStarted));
      const settleStarted = performance.now();
      const settled = hold('settling a run', job.id, () => budget.settle(ref(job), { cost: usage.cost }), stopRetrying)
        .catch((e: Error) => logger.error({ err: e.message, id: job.id }, 'could not settle the run'))
        .then(() => stages.observe('settle', performance.now() - settleStarted));
      const [auditId] = await Promise.all([audited, recorded, settled, resulted]);
      hooks.emit({
        type: 'finished',
        kind: 'run',
        id: job.id,
        agentId: job.agentId,
        taskId: job.taskId,
        target: profile.name,
        status,
        resultHash: sha256Hex(
          `${exitCode}\u0000${stdout}\u0000${stderr}\u0000${JSON.stringify(result.result ?? null)}`,
        ),
        usage,
        auditId,
      });
      return record;
    },

    async unavailable(job, message) {
      const error = resultError('engine_unavailable', message);
      await audit
        .record(
          'run.finished',
          { agentId: job.agentId, taskId: job.taskId, subject: job.id },
          { status: 'failed', error, usage: null },
        )
        .catch(() => undefined);
      if ((await store.finish(job.id, 'failed', { error })) === 'done') await budget.settle(ref(job), { refund: true });
    },

    lost,

    async malformed(id) {
      await store.finish(id, 'failed', { error: resultError('malformed_job') });
    },
  };
}
