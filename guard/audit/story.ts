// A task's story from its audit records, one readable line each: what was asked and why, what
// was decided (policies, approvals and by whom), what ran, what came back, what it cost. Used by
// GET /v1/tasks/:id/trace and by `npm run audit -- trace` (from the files alone).
import type { AuditRecord } from '../../contract/audit.ts';
import { asAuditEvent } from '../../contract/audit-events.ts';

export function storyLine(r: AuditRecord): string {
  const e = asAuditEvent(r);
  return `${r.time} ${r.subject ?? ''} ${e ? describe(e) : r.kind}`.replace(/ {2,}/g, ' ');
}

const because = (reasoning: string | null) => (reasoning ? ` because "${reasoning}"` : '');

function describe(e: NonNullable<ReturnType<typeof asAuditEvent>>): string {
  switch (e.kind) {
    case 'agent.created':
      return `agent "${e.data.name}" created`;
    case 'agent.revoked':
      return `agent revoked${e.data.reason ? `: "${e.data.reason}"` : ''}; ${e.data.cancelledExecutions} runs and ${e.data.cancelledActions} tool calls cancelled`;
    case 'agent.enabled':
      return `agent enabled again (token generation ${e.data.tokenGeneration})`;
    case 'principal.created':
      return `${e.data.role} "${e.data.name}" created`;
    case 'token.issued':
      return `token issued${e.data.audience ? ` for ${e.data.audience}` : ''}, valid until ${e.data.expiresAt}`;
    case 'task.created':
      return `task created: "${e.data.goal}"`;
    case 'usage.reported':
      return `reported ${e.data.tokens} model tokens, cost ${e.data.cost}${because(e.data.reasoning)}`;
    case 'task.exhausted':
      return `task exhausted (${e.data.cap}); ${e.data.cancelledExecutions} queued runs cancelled`;
    case 'execution.requested':
      return `asked to run ${e.data.profile} code${because(e.data.reasoning)}; allowed by ${e.data.decision.policies.join(', ')}; reserved ${e.data.budget.reserved}`;
    case 'execution.refused':
      return `asked to run ${e.data.profile} code${because(e.data.reasoning)}; refused: ${e.data.refused.code} (${e.data.refused.message})`;
    case 'run.started':
      return `run started on ${e.data.profile}`;
    case 'run.finished': {
      const out = e.data.stdout ? `; stdout: ${JSON.stringify(e.data.stdout.text.slice(0, 200))}` : '';
      const why = e.data.error && e.data.status !== 'succeeded' ? ` [${e.data.error.code}]` : '';
      const cost =
        e.data.charged === 'worst_case' ? 'charged its whole reservation' : `cost ${e.data.usage?.cost ?? 0}`;
      return `run ${e.data.status}${why} (exit ${e.data.exitCode ?? null}), ${cost}${out}`;
    }
    case 'action.requested':
      return `asked to call ${e.data.tool} ${JSON.stringify(e.data.args)}${because(e.data.reasoning)}${e.data.approval ? '; waits for a human approver' : ''}${e.data.tainted ? ' (task tainted)' : ''}`;
    case 'action.refused':
      return `asked to call ${e.data.tool}${because(e.data.reasoning)}; refused: ${e.data.refused.code} (${e.data.refused.message})`;
    case 'approval.decided':
      return `${e.data.by} ${e.data.decision === 'approve' ? 'approved' : 'denied'} ${e.data.tool}${e.data.reason ? `: "${e.data.reason}"` : ''}`;
    case 'approval.expired':
      return `nobody decided on ${e.data.tool} in time: expired, not sent`;
    case 'action.started':
      return `calling ${e.data.tool}`;
    case 'action.finished':
      return `${e.data.tool} ${e.data.status}${e.data.error ? `: ${e.data.error.code}` : ''}`;
    case 'alert.raised':
      return `ALERT ${e.data.detector} (${e.data.severity}): ${e.data.summary}; the service responded: ${e.data.response}`;
    case 'alert.delivered':
      return `alert ${e.data.alertId} ${e.data.ok ? 'delivered' : 'not delivered'} to ${e.data.sink} (${e.data.event})`;
    case 'alert.acknowledged':
      return `${e.data.by} acknowledged alert ${e.data.alertId}${e.data.reason ? `: "${e.data.reason}"` : ''}`;
    case 'alert.resolved':
      return `${e.data.by} resolved alert ${e.data.alertId}${e.data.reason ? `: "${e.data.reason}"` : ''}`;
    case 'agent.suspended':
      return `agent suspended by ${e.data.by}${e.data.reason ? `: ${e.data.reason}` : ''}`;
    case 'agent.resumed':
      return `agent resumed by ${e.data.by}${e.data.reason ? `: "${e.data.reason}"` : ''}`;
    case 'agent.throttled':
      return `agent throttled to ${e.data.factor * 100}% of its rate for ${e.data.forS} s`;
    case 'task.paused':
      return `task paused by ${e.data.by}${e.data.reason ? `: ${e.data.reason}` : ''}`;
    case 'task.resumed':
      return `task resumed by ${e.data.by}${e.data.reason ? `: "${e.data.reason}"` : ''}`;
  }
}
