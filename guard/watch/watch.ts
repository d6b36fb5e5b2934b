// Watch the agents: detectors on the admission and result paths of every run and tool call, on
// the server and across processes (their state is in Redis: state/watch.ts), a graded response
// applied by the service itself at once, and an alert for a human.
//
// Where it plugs in: an admission check (guard/lifecycle/hooks.ts) that refuses the work of a
// suspended agent or a paused task (423, naming the alert), applies a throttle (429) and runs
// loop, spike, novelty and tainted-flow; observers of refusals (probing), results (a repeated
// result, egress refusals), settlements and reported model cost (cost velocity). A detector that
// fires raises an alert (deduplicated per agent and detector while open) and applies its
// response in the same Redis step; when the response stops this very request, it is refused.
// Redis unreachable: the check throws, so admission answers 503 as before (never fails open).
import type { Agent } from '../../contract/agent.ts';
import { ERRORS, SandgateError } from '../../contract/errors.ts';
import {
  type Alert,
  type Detector,
  type HoldReason,
  mergeWatch,
  type Response,
  SEVERITY,
  type WatchSettings,
} from '../../contract/watch.ts';
import type { AgentStore } from '../../state/agents.ts';
import type { AlertStore, Marker } from '../../state/alerts.ts';
import type { Trigger, WatchStore } from '../../state/watch.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { AdmissionAttempt, Hooks, LifecycleEvent } from '../lifecycle/hooks.ts';
import { newId } from '../lifecycle/ids.ts';
import { summarize } from './summaries.ts';

export type NotifyEvent = 'trigger' | 'renotify' | 'acknowledge' | 'resolve';

export interface WatchDeps {
  store: WatchStore;
  alerts: AlertStore;
  agents: AgentStore;
  audit: Auditor;
  hooks: Hooks;
  settings: WatchSettings;
  /** Hands an alert to the deliveries (a queue: never waits on a receiver). */
  notify(alert: Alert, event: NotifyEvent): Promise<void>;
  onRaised?(detector: Detector, severity: string): void;
  onError(e: Error, where: string): void;
}

export interface Watch {
  /** A human's hand on an agent or a task: suspend, resume; audited, each naming who. */
  suspendAgent(agentId: string, by: string, reason: string | null): Promise<void>;
  resumeAgent(agentId: string, by: string, reason: string | null): Promise<boolean>;
  resumeTask(taskId: string, agentId: string, by: string, reason: string | null): Promise<boolean>;
  suspension(agentId: string): Promise<HoldReason | undefined>;
  /** Acknowledges or resolves an alert; the receivers hear of it. */
  handle(alertId: string, to: 'acknowledged' | 'resolved', by: string, reason: string | null): Promise<Alert>;
}

/** Refusals that, in a burst, are probing: the agent trying what it may not (403, 402, 429). */
const PROBING_STATUSES = new Set([402, 403, 429]);

export function createWatch(deps: WatchDeps): Watch {
  const { store, alerts, audit } = deps;
  const settingsOf = (agent: Pick<Agent, 'watch'> | undefined) => mergeWatch(deps.settings, agent?.watch);
  // Observers only know the agent's id: its settings (not its revocation) may be a few seconds old.
  const cache = new Map<string, { at: number; settings: WatchSettings }>();
  const settingsFor = async (agentId: string): Promise<WatchSettings> => {
    const hit = cache.get(agentId);
    if (hit && Date.now() - hit.at < 5000) return hit.settings;
    const settings = settingsOf(await deps.agents.get(agentId));
    if (cache.size > 10_000) cache.clear();
    cache.set(agentId, { at: Date.now(), settings });
    return settings;
  };

  /** What the response of a detector does, and whether it stops work of this agent/task now. */
  const markerFor = (
    response: Response,
    taskId: string | null,
    hold: HoldReason,
    s: WatchSettings,
  ): Marker | undefined => {
    if (response === 'suspend_agent') return { key: 'suspended', hold, ttlS: 0 };
    if (response === 'pause_task' && taskId) return { key: 'paused', hold, ttlS: 0 };
    // A task-less loop cannot be paused: the agent is throttled instead.
    if (response === 'throttle' || response === 'pause_task')
      return { key: 'throttle', hold, ttlS: s.throttle.durationS };
    return undefined;
  };

  async function raise(
    trigger: Trigger,
    ctx: { agentId: string; taskId: string | null; target: string },
    s: WatchSettings,
  ) {
    const detector = trigger.detector;
    const configured = s[detector].response;
    const id = newId('alr', ctx.agentId);
    const summary = summarize(trigger, ctx.target, s);
    const hold: HoldReason = { alertId: id, by: `detector:${detector}`, at: new Date().toISOString(), reason: summary };
    const marker = markerFor(configured, ctx.taskId, hold, s);
    const action: Response = marker?.key === 'throttle' ? 'throttle' : configured;
    const resumes =
      marker?.key === 'suspended'
        ? { agentId: ctx.agentId }
        : marker?.key === 'paused' && ctx.taskId
          ? { taskId: ctx.taskId }
          : null;
    const auditIds = await store.recent(ctx.agentId);
    const evidence = { figures: trigger.figures, target: ctx.target };
    const severity = SEVERITY[detector];
    const raised = await alerts.raise(
      {
        id,
        detector,
        severity,
        agentId: ctx.agentId,
        taskId: ctx.taskId,
        action,
        summary,
        evidence,
        auditIds,
        resumes,
      },
      marker,
    );
    deps.onRaised?.(detector, severity);
    if (raised.raised) {
      const actx = { agentId: ctx.agentId, taskId: ctx.taskId, subject: raised.id };
      await audit.record('alert.raised', actx, {
        alertId: raised.id,
        detector,
        severity,
        response: action,
        summary,
        evidence,
        triggeredBy: auditIds,
      });
      if (marker?.key === 'suspended')
        await audit.record('agent.suspended', actx, { alertId: raised.id, by: hold.by, reason: summary });
      if (marker?.key === 'paused')
        await audit.record('task.paused', actx, { alertId: raised.id, by: hold.by, reason: summary });
      if (marker?.key === 'throttle') {
        await audit.record('agent.throttled', actx, {
          alertId: raised.id,
          factor: s.throttle.factor,
          forS: s.throttle.durationS,
        });
      }
      const alert = await alerts.get(raised.id);
      if (alert) await deps.notify(alert, 'trigger');
    }
    return { alertId: raised.id, marker };
  }

  /** Raises every trigger; returns the first that stops this very request (or undefined). */
  async function raiseAll(
    triggers: Trigger[],
    ctx: { agentId: string; taskId: string | null; target: string },
    s: WatchSettings,
  ) {
    let stops: { code: 'agent_suspended' | 'task_paused'; alertId: string } | undefined;
    for (const t of triggers) {
      const { alertId, marker } = await raise(t, ctx, s);
      if (!stops && marker?.key === 'suspended') stops = { code: 'agent_suspended', alertId };
      if (!stops && marker?.key === 'paused') stops = { code: 'task_paused', alertId };
    }
    return stops;
  }

  const heldError = (code: 'agent_suspended' | 'task_paused', hold: HoldReason) =>
    new SandgateError(
      code,
      code === 'agent_suspended'
        ? `this agent is suspended${hold.alertId ? ` by alert ${hold.alertId}` : ` by ${hold.by}`}${hold.reason ? ` (${hold.reason})` : ''}; a human must resume it`
        : `this task is paused${hold.alertId ? ` by alert ${hold.alertId}` : ` by ${hold.by}`}${hold.reason ? ` (${hold.reason})` : ''}; its queued work waits until a human resumes it`,
    );

  deps.hooks.check(async (attempt: AdmissionAttempt) => {
    const s = settingsOf(attempt.agent);
    const targets = [
      `${attempt.kind === 'run' ? 'profile' : 'tool'}:${attempt.target}`,
      ...attempt.reaches.map((h) => `dest:${h}`),
    ];
    const verdict = await store.admit(
      {
        id: attempt.id,
        agentId: attempt.agent.id,
        taskId: attempt.taskId,
        inputHash: attempt.inputHash,
        targets,
        perMinute:
          attempt.kind === 'run' ? attempt.agent.limits.runsPerMinute : attempt.agent.limits.toolCallsPerMinute,
        tainted: attempt.tainted,
        irreversible: attempt.irreversible,
      },
      s,
    );
    if (verdict.kind === 'held') throw heldError(verdict.code, verdict.hold);
    if (verdict.kind === 'throttled') {
      throw new SandgateError(
        'rate_limited',
        `this agent is throttled by alert ${verdict.hold.alertId}; retry after ${verdict.retryAfterS} s`,
        {
          'retry-after': String(verdict.retryAfterS),
        },
      );
    }
    const triggers = [...verdict.triggers, ...outOfScope(attempt, s)];
    if (!triggers.length) return;
    const stops = await raiseAll(
      triggers,
      { agentId: attempt.agent.id, taskId: attempt.taskId, target: attempt.target },
      s,
    );
    if (stops)
      throw heldError(
        stops.code,
        (await store.held(attempt.agent.id, attempt.taskId))?.hold ?? {
          alertId: stops.alertId,
          by: 'detector',
          at: '',
          reason: null,
        },
      );
  });

  const observe = async (e: LifecycleEvent) => {
    switch (e.type) {
      case 'admitted':
        await store.remember(e.attempt.agent.id, e.auditId);
        return;
      case 'refused': {
        if (e.auditId) await store.remember(e.agentId, e.auditId);
        const status = (ERRORS as Record<string, number>)[e.code];
        if (!status || !PROBING_STATUSES.has(status)) return;
        const s = await settingsFor(e.agentId);
        const triggers = await store.refusal({ member: e.auditId ?? newId('ex', e.agentId), agentId: e.agentId }, s);
        await raiseAll(triggers, { agentId: e.agentId, taskId: e.taskId, target: e.target }, s);
        return;
      }
      case 'finished': {
        if (e.auditId) await store.remember(e.agentId, e.auditId);
        const s = await settingsFor(e.agentId);
        const egressRefusals = (e.egress ?? []).filter((d) => !d.allowed).length;
        const triggers = await store.result(
          { id: e.id, agentId: e.agentId, resultHash: e.resultHash, egressRefusals },
          s,
        );
        await raiseAll(triggers, { agentId: e.agentId, taskId: e.taskId, target: e.target }, s);
        return;
      }
      case 'settled': {
        if (e.refund || e.cost <= 0) return;
        const s = await settingsFor(e.agentId);
        const triggers = await store.cost({ member: e.id, agentId: e.agentId, taskId: e.taskId, cost: e.cost }, s);
        await raiseAll(triggers, { agentId: e.agentId, taskId: e.taskId, target: e.kind }, s);
        return;
      }
      case 'usage_reported': {
        await store.remember(e.agentId, e.auditId);
        if (e.cost <= 0) return;
        const s = await settingsFor(e.agentId);
        const triggers = await store.cost({ member: e.auditId, agentId: e.agentId, taskId: e.taskId, cost: e.cost }, s);
        await raiseAll(triggers, { agentId: e.agentId, taskId: e.taskId, target: 'model usage' }, s);
        return;
      }
      default:
        return;
    }
  };
  // A detector that cannot run is loud (logged, counted), never silent; it never fails the work
  // it observes, which has already happened.
  deps.hooks.observe((e) => observe(e).catch((err: Error) => deps.onError(err, `watch ${e.type}`)));

  return {
    async suspendAgent(agentId, by, reason) {
      await store.suspend(agentId, { alertId: null, by, at: new Date().toISOString(), reason });
      await audit.record('agent.suspended', { agentId, principalId: by }, { alertId: null, by, reason });
    },
    async resumeAgent(agentId, by, reason) {
      const lifted = await store.resumeAgent(agentId);
      await audit.record('agent.resumed', { agentId, principalId: by }, { by, reason });
      return lifted;
    },
    suspension: (agentId) => store.suspension(agentId),
    async resumeTask(taskId, agentId, by, reason) {
      const lifted = await store.resumeTask(taskId, agentId);
      await audit.record('task.resumed', { agentId, principalId: by, taskId }, { by, reason });
      return lifted;
    },
    async handle(alertId, to, by, reason) {
      const done = await alerts.update(alertId, to, by, reason);
      if (!done.ok) {
        if (done.why === 'missing') throw new SandgateError('not_found', `no alert ${alertId}`);
        throw new SandgateError(
          'invalid_state',
          `alert ${alertId} is ${done.status}; an alert goes open → acknowledged → resolved`,
        );
      }
      const alert = (await alerts.get(alertId))!;
      const ctx = { agentId: alert.agentId, principalId: by, taskId: alert.taskId, subject: alertId };
      await audit.record(to === 'acknowledged' ? 'alert.acknowledged' : 'alert.resolved', ctx, { alertId, by, reason });
      await deps.notify(alert, to === 'acknowledged' ? 'acknowledge' : 'resolve');
      return alert;
    },
  };
}

/** Access the task's declared scope does not cover: novelty, named as such. */
function outOfScope(attempt: AdmissionAttempt, s: WatchSettings): Trigger[] {
  const scope = attempt.taskScope;
  if (!scope || !s.novelty.enabled) return [];
  const out: Trigger[] = [];
  const list = attempt.kind === 'run' ? scope.profiles : scope.tools;
  if (list && !list.includes(attempt.target))
    out.push({ detector: 'novelty', figures: ['outside the task scope', attempt.target] });
  for (const host of attempt.reaches) {
    if (
      scope.destinations &&
      !scope.destinations.some((d) => d === host || (d.startsWith('*.') && host.endsWith(d.slice(1))))
    ) {
      out.push({ detector: 'novelty', figures: ['outside the task scope', host] });
    }
  }
  return out;
}
