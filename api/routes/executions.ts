// POST/GET/DELETE /v1/executions: admit a run (authenticated, then authorized for its task and
// profile, then within the profile's ceiling and inputs), queue it, and optionally wait for its end.
import type { Queue } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import {
  Execution,
  ExecutionAccepted,
  ExecutionId,
  type ExecutionJob,
  ExecutionQuery,
  ExecutionRequest,
  isFinal,
} from '../../contract/execution.ts';
import type { Principal } from '../../contract/principal.ts';
import type { EngineName, Profile } from '../../contract/profile.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import { worstCaseCost } from '../../guard/budget/pricing.ts';
import { authorizeProfile } from '../../guard/policy/authorize.ts';
import type { PolicyDecisionPoint } from '../../guard/policy/decision-point.ts';
import { taskFor } from './tasks.ts';
import { admissionError } from '../../guard/budget/admission-error.ts';
import type { WorkCanceller } from '../../guard/lifecycle/cancel-work.ts';
import { type Auditor, capped } from '../../guard/audit/auditor.ts';
import { sha256Hex } from '../../guard/audit/canonical.ts';
import type { ExecutionEvents } from '../../state/record-events.ts';
import type { ExecutionStore } from '../../state/executions.ts';
import type { ProfileSet } from '../../guard/profiles.ts';

export interface ExecutionRouteDeps {
  profiles: ProfileSet;
  queues: ReadonlyMap<EngineName, Queue>;
  store: ExecutionStore;
  events: ExecutionEvents;
  waitGraceMs: number;
  availableProfiles: () => Promise<ReadonlySet<string>>;
  policy: PolicyDecisionPoint;
  budgets: BudgetStore;
  canceller: WorkCanceller;
  audit: Auditor;
}

const IdParams = z.strictObject({ id: ExecutionId });
const errors = { 400: ErrorBody, 401: ErrorBody, 402: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody, 429: ErrorBody, 503: ErrorBody };

/** The profile is the ceiling: a request may lower a limit, never raise it. */
function limitsFor(req: ExecutionRequest, profile: Profile): ExecutionJob['limits'] {
  const { timeoutMs, memoryMb, outputBytes, codeBytes } = profile.limits;
  const check = (name: string, asked: number | undefined, ceiling: number, unit: string) => {
    if (asked !== undefined && asked > ceiling) {
      throw new SandgateError('limit_exceeds_profile', `${name} ${asked} is above the ceiling of profile "${profile.name}": at most ${ceiling} ${unit}`);
    }
  };
  check('timeoutMs', req.timeoutMs, timeoutMs, 'ms');
  check('memoryMb', req.memoryMb, memoryMb, 'MB');
  const size = Buffer.byteLength(req.code);
  if (size > codeBytes) {
    throw new SandgateError('code_too_large', `code is ${size} bytes; profile "${profile.name}" accepts at most ${codeBytes}`);
  }
  return { timeoutMs: req.timeoutMs ?? timeoutMs, memoryMb: req.memoryMb ?? memoryMb, outputBytes };
}

export function taskIdFor(principal: Principal, asked: string | undefined): string | null {
  if (principal.role !== 'agent' || !principal.taskId) return asked ?? null;
  if (asked && asked !== principal.taskId) {
    throw new SandgateError('forbidden', `this token is bound to task ${principal.taskId}`);
  }
  return principal.taskId;
}

export const executionRoutes: FastifyPluginAsyncZod<ExecutionRouteDeps> = async (app, deps) => {
  const { profiles, queues, store, events } = deps;

  /** Agents see only their own executions; anything else is "not found", so ids leak nothing. */
  const loadOwned = async (principal: Principal, id: string) => {
    const record = await store.get(id);
    if (!record || (principal.role === 'agent' && record.agentId !== principal.agentId)) {
      throw new SandgateError('not_found', `no execution ${id}`);
    }
    const { starts: _starts, ...execution } = record;
    return execution;
  };

  app.post(
    '/v1/executions',
    {
      config: { roles: ['agent'] },
      schema: {
        summary: 'Run code in a sandbox profile',
        tags: ['executions'],
        body: ExecutionRequest,
        querystring: ExecutionQuery,
        response: { 200: Execution, 202: ExecutionAccepted, ...errors },
      },
    },
    async (request, reply) => {
      // The refusal is filed under the task only once the task is known to be the agent's: never
      // in the trace of another agent's task.
      const owned: { taskId: string | null } = { taskId: null };
      try {
        return await admitExecution(request, reply, owned);
      } catch (e) {
        // Refusals are audited too (best effort: the refusal stands either way).
        if (e instanceof SandgateError && e.code !== 'audit_unavailable') {
          const ctx = { agentId: request.agent?.id, principalId: request.principal?.id, taskId: owned.taskId };
          const data = { profile: request.body.profile, codeSha256: sha256Hex(request.body.code), reasoning: request.body.reasoning ?? null, refused: { code: e.code, message: e.message } };
          await deps.audit.record('execution.refused', ctx, data).catch(() => {});
        }
        throw e;
      }
    },
  );

  async function admitExecution(
    request: FastifyRequest<{ Body: ExecutionRequest; Querystring: z.infer<typeof ExecutionQuery> }>,
    reply: FastifyReply,
    owned: { taskId: string | null },
  ) {
    const principal = request.principal!;
    const body = request.body;
    const taskId = taskIdFor(principal, body.taskId);
    const task = taskId ? await taskFor(deps.budgets, principal, taskId) : undefined;
    owned.taskId = taskId;
    // Untrusted inputs taint the task for good, whatever comes of the request, so the task's state
    // says nothing about the profile either.
    const untrusted = body.untrusted || (body.files ?? []).some((f) => f.untrusted);
    if (untrusted && taskId) await deps.budgets.taint(taskId, `inputs of an execution on ${body.profile} marked untrusted`);
    // Authorize before anything about the profile is checked: see guard/policy/authorize.ts.
    const caller = { agent: request.agent!, scopes: principal.role === 'agent' ? principal.scopes : undefined };
    const { found: profile, decision } = authorizeProfile(deps.policy, caller, body.profile, profiles.get(body.profile), {
      taskTainted: untrusted || (task?.tainted ?? false),
    });
    if (body.language && body.language !== profile.language) {
      throw new SandgateError('language_mismatch', `profile "${profile.name}" runs ${profile.language}, not ${body.language}`);
    }
    if (profile.engine === 'isolate' && (body.files?.length || body.stdin)) {
      throw new SandgateError('unsupported_input', `profile "${profile.name}" has no filesystem or stdin: send code only`);
    }
    if (profile.engine === 'docker' && body.files?.length) {
      const { maxCount, maxBytes } = profile.files;
      if (body.files.length > maxCount) {
        throw new SandgateError('limit_exceeds_profile', `${body.files.length} files; profile "${profile.name}" takes at most ${maxCount}`);
      }
      const bytes = body.files.reduce((n, f) => n + Buffer.byteLength(f.content, f.encoding === 'base64' ? 'base64' : 'utf8'), 0);
      if (bytes > maxBytes) throw new SandgateError('files_too_large', `files total ${bytes} bytes; profile "${profile.name}" takes at most ${maxBytes}`);
    }
    const limits = limitsFor(body, profile);
    const queue = queues.get(profile.engine);
    if (!queue || !(await deps.availableProfiles()).has(profile.name)) {
      throw new SandgateError('engine_unavailable', `profile "${profile.name}" cannot run now: its engine (${profile.engine}) or runtime is not available here`);
    }

    const id = `ex_${randomBytes(15).toString('base64url')}`;
    const agent = request.agent!;
    // Rate limit, task caps and the worst-case cost against task and day, in one atomic step.
    const worstCase = worstCaseCost(profile, limits);
    const admission = await deps.budgets.admit({ id, kind: 'run', agentId: agent.id, limits: agent.limits, taskId, worstCase });
    if (!admission.ok) throw admissionError(admission, taskId, worstCase, `${agent.limits.runsPerMinute} runs`);
    const refund = () => deps.budgets.settle({ id, agentId: agent.id, taskId, cost: 0, refund: true }).catch(() => {});

    // Audit before effect: the code is not queued unless its request is on disk.
    let auditId: string;
    try {
      auditId = await deps.audit.record(
        'execution.requested',
        { agentId: agent.id, principalId: principal.id, taskId, subject: id },
        {
          profile: profile.name,
          language: profile.language,
          code: capped(body.code, 65536),
          stdin: body.stdin ? capped(body.stdin) : null,
          files: (body.files ?? []).map((f) => ({ path: f.path, sha256: sha256Hex(f.content), encoding: f.encoding ?? 'utf8' })),
          limits,
          reasoning: body.reasoning ?? null,
          decision: { allowed: true, policies: decision.policies },
          budget: { reserved: worstCase },
        },
      );
    } catch (e) {
      await refund();
      throw e;
    }

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
      ...(principal.role === 'agent' && principal.scopes && { scopes: principal.scopes }),
    };
    // Subscribe before enqueueing, so a run that ends at once is not missed.
    const waiter = request.query.wait ? events.waitForFinal(id, limits.timeoutMs + deps.waitGraceMs) : undefined;
    const created = await store.create({
      id,
      profile: profile.name,
      language: profile.language,
      agentId: job.agentId,
      taskId,
      createdAt: new Date().toISOString(),
      auditId,
    });
    if (!created) {
      waiter?.cancel();
      await refund();
      throw new SandgateError('agent_revoked', 'this agent has been revoked');
    }
    try {
      await queue.add('run', job, { jobId: id });
    } catch (e) {
      waiter?.cancel();
      await refund();
      await store.finish(id, 'rejected', { error: { code: 'dependency_unavailable', message: 'the job could not be queued' } }).catch(() => {});
      throw e;
    }
    if (!waiter) return reply.code(202).send({ id, status: 'queued' as const });

    request.raw.once('close', () => waiter.cancel());
    await waiter.done;
    const execution = await loadOwned(principal, id);
    if (!isFinal(execution.status)) return reply.code(202).send({ id, status: execution.status });
    return reply.code(200).send(execution);
  }

  app.get(
    '/v1/executions/:id',
    {
      config: { roles: ['agent', 'admin'] },
      schema: { summary: 'Read an execution', tags: ['executions'], params: IdParams, response: { 200: Execution, ...errors } },
    },
    async (request) => loadOwned(request.principal!, request.params.id),
  );

  app.delete(
    '/v1/executions/:id',
    {
      config: { roles: ['agent', 'admin'] },
      schema: {
        summary: 'Cancel a queued or running execution',
        tags: ['executions'],
        params: IdParams,
        response: { 200: Execution, ...errors },
      },
    },
    async (request) => {
      const { id } = request.params;
      const before = await loadOwned(request.principal!, id);
      // Off the queue and refunded if still waiting; if a runner holds it, the runner is told to stop.
      const outcome = await deps.canceller.cancel(id, { code: 'cancelled', message: `cancelled by ${request.principal!.role}` });
      if (outcome !== 'done') {
        throw new SandgateError('invalid_state', `execution ${id} has already ended (${(await store.get(id))?.status ?? before.status})`);
      }
      return loadOwned(request.principal!, id);
    },
  );
};
