// POST/GET/DELETE /v1/executions: the HTTP face of the executions lifecycle
// (guard/lifecycle/execution-lifecycle.ts), plus `?wait=true`, which waits for the run's end,
// and the run's event stream (GET …/:id/stream, or POST ?stream=true): Server-Sent Events.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, resultError, SandgateError } from '../../contract/errors.ts';
import {
  Execution,
  ExecutionAccepted,
  ExecutionId,
  ExecutionQuery,
  ExecutionRequest,
  isFinal,
  StreamQuery,
} from '../../contract/execution.ts';
import type { Principal } from '../../contract/principal.ts';
import { LATE, within } from '../../contract/within.ts';
import { ownedOrNotFound } from '../../guard/lifecycle/access.ts';
import type { ExecutionLifecycle } from '../../guard/lifecycle/execution-lifecycle.ts';
import type { StageClock } from '../../guard/lifecycle/stages.ts';
import type { ExecutionStore } from '../../state/executions.ts';
import type { IdempotencyStore } from '../../state/idempotency.ts';
import type { Keys } from '../../state/keys.ts';
import type { RecordEvents } from '../../state/record-events.ts';
import { cursorOf, type EventStreamServer } from '../event-stream.ts';
import { idempotency } from '../idempotency.ts';

export interface ExecutionRouteDeps {
  executions: ExecutionLifecycle;
  store: ExecutionStore;
  events: RecordEvents;
  waitGraceMs: number;
  idempotency: IdempotencyStore;
  stages?: StageClock;
  eventStreams: EventStreamServer;
  keys: Keys;
}

/** The OpenAPI description of an event-stream answer (the reply is written raw, not serialized). */
export const EventStreamBody = z
  .string()
  .describe(
    'text/event-stream: `status`, `chunk` ({seq, stream, data}), `truncated` and `final` (the record) events; `id:` is the cursor for Last-Event-ID / ?after=',
  );

const IdParams = z.strictObject({ id: ExecutionId });

const errors = {
  400: ErrorBody,
  401: ErrorBody,
  402: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  413: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
};

export const executionRoutes: FastifyPluginAsyncZod<ExecutionRouteDeps> = async (app, deps) => {
  const { store, events } = deps;

  /** Agents see only their own executions; anything else is "not found", so ids leak nothing. */
  const loadOwned = async (principal: Principal, id: string) => {
    const { starts: _starts, ...execution } = ownedOrNotFound(principal, await store.get(id), 'execution', id);
    return execution;
  };
  const finalRecord = (id: string) => async () => {
    const record = await store.get(id);
    if (!record || !isFinal(record.status)) return undefined;
    const { starts: _starts, ...execution } = record;
    return { record: execution, endedAt: execution.finishedAt };
  };

  app.post(
    '/v1/executions',
    {
      config: { roles: ['agent'], agentReadBeside: true },
      schema: {
        summary: 'Run code in a sandbox profile',
        tags: ['executions'],
        body: ExecutionRequest,
        querystring: ExecutionQuery,
        response: { 200: Execution, 201: EventStreamBody, 202: ExecutionAccepted, ...errors },
      },
    },
    async (request, reply) => {
      const principal = request.principal!;
      if (request.query.wait && request.query.stream)
        throw new SandgateError('validation_failed', 'querystring: ask for ?wait=true or ?stream=true, not both');
      // Started on the agent this process read last (config.agentReadBeside): admission waits for
      // the agent read again beside its first step. A retry under an Idempotency-Key and a stream
      // wait for it first (a replay takes no admission step, and a stream is no onSend reply).
      const caller = { principal, agent: request.agent!, ...(request.agentRead && { verify: request.agentRead }) };
      if (request.agentRead && (request.query.stream || request.headers['idempotency-key'] !== undefined))
        await request.agentRead;
      const once = await idempotency(deps.idempotency, request, 'run', request.body);
      if (request.query.stream) {
        // 201 (the execution is created; Location names it), the body is its event stream from
        // the start; a client that loses it reconnects to GET …/:id/stream with its cursor. A
        // retry under the same Idempotency-Key gets the stream of the run admitted first.
        const id =
          once.replayId ??
          (
            await deps.executions.admit(caller, request.body).catch(async (e: unknown) => {
              await once.release();
              throw e;
            })
          ).id;
        if (!once.replayId) await once.settle(id);
        return deps.eventStreams.serve(request, reply, {
          key: deps.keys.execution.stream(id),
          after: '0-0',
          status: 201,
          headers: { location: `/v1/executions/${id}`, 'x-execution-id': id },
          finalRecord: finalRecord(id),
        });
      }
      if (once.replayId) {
        // A retry of an admitted request: that record as it is now, nothing admitted again.
        const execution = await loadOwned(principal, once.replayId);
        if (isFinal(execution.status)) return reply.code(200).send(execution);
        return reply.code(202).send({ id: execution.id, status: execution.status });
      }
      let waiter: ReturnType<RecordEvents['waitForFinal']> | undefined;
      // With ?wait=true the waiter subscribes before the record exists, so no end is missed; and
      // a runner of this process with a free slot may take the run at once (`ran`).
      const admitted = await deps.executions
        .admit(caller, request.body, {
          here: request.query.wait,
          beforeRecord: (newId, limits) => {
            if (!request.query.wait) return () => {};
            waiter = events.waitForFinal(newId, limits.timeoutMs + deps.waitGraceMs);
            return () => waiter?.cancel();
          },
        })
        .catch(async (e: unknown) => {
          await once.release();
          throw e;
        });
      const { id } = admitted;
      // Nothing is answered, and the key is not bound, before the request's audit record is
      // durable (a run taken here may be admitted while it is written); if it cannot be, the
      // admission is undone and this is a 503, and the key is free for the retry.
      const bound = admitted.durable.then(
        () => once.settle(id),
        async (e: unknown) => {
          await once.release();
          throw e;
        },
      );
      bound.catch(() => {}); // awaited before any answer below
      if (!waiter) {
        await bound;
        return reply.code(202).send({ id, status: 'queued' as const });
      }
      const w = waiter;
      request.raw.once('close', () => w.cancel());
      const queuedAt = performance.now();
      // Run here: its record comes back with its end (read in the same round trip as the move),
      // within the same deadline as the waiter's (a result held through a Redis blip is not).
      const ran = admitted.ran && (await within(admitted.ran, admitted.limits.timeoutMs + deps.waitGraceMs));
      await bound;
      if (ran && ran !== LATE && isFinal(ran.status)) {
        w.cancel();
        deps.stages?.observe('wait', performance.now() - queuedAt);
        return reply.code(200).send(ran);
      }
      await w.done;
      const endedAt = performance.now();
      deps.stages?.observe('wait', endedAt - queuedAt);
      const execution = await loadOwned(principal, id);
      // The reply's own serialisation is not in here: fastify's onResponse would be, at a cost.
      deps.stages?.observe('reply', performance.now() - endedAt);
      if (!isFinal(execution.status)) return reply.code(202).send({ id, status: execution.status });
      return reply.code(200).send(execution);
    },
  );

  app.get(
    '/v1/executions/:id',
    {
      config: { roles: ['agent', 'admin'] },
      schema: {
        summary: 'Read an execution',
        tags: ['executions'],
        params: IdParams,
        response: { 200: Execution, ...errors },
      },
    },
    async (request) => loadOwned(request.principal!, request.params.id),
  );

  app.get(
    '/v1/executions/:id/stream',
    {
      config: { roles: ['agent', 'admin'] },
      schema: {
        summary: "Follow an execution's output and status as Server-Sent Events (replay from Last-Event-ID or ?after=)",
        tags: ['executions'],
        params: IdParams,
        querystring: StreamQuery,
        response: { 200: EventStreamBody, ...errors },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const after = cursorOf(request, request.query.after);
      await loadOwned(request.principal!, id); // not yours is not found
      return deps.eventStreams.serve(request, reply, {
        key: deps.keys.execution.stream(id),
        after,
        finalRecord: finalRecord(id),
      });
    },
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
      const outcome = await deps.executions.cancel(id, resultError('cancelled', request.principal!.role));
      if (outcome !== 'done') {
        throw new SandgateError(
          'invalid_state',
          `execution ${id} has already ended (${(await store.get(id))?.status ?? before.status})`,
        );
      }
      return loadOwned(request.principal!, id);
    },
  );
};
