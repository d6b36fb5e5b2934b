// The evidence pack of an agent for a period: what a compliance review asks for, built only from
// the audit trail (so it says what the records say, each entry citing its record) plus the
// alerts' status now, and checked against the audit files (cited-verify.ts). Who created the
// agent and granted what, every token issued, every approval with its approver, every alert and
// who handled it, and every change of the agent's standing.
import type { AuditRecord } from '../../contract/audit.ts';
import { asAuditEvent } from '../../contract/audit-events.ts';
import type { AgentSummary, Evidence } from '../../contract/console.ts';
import type { AlertStore } from '../../state/alerts.ts';
import type { AuditIndex } from '../../state/audit-index.ts';
import { type CitedVerifyDeps, verifyCited } from '../audit/cited-verify.ts';
import { actorsOf, namePeople, type PeopleDeps } from './people.ts';

export interface EvidenceDeps extends PeopleDeps {
  auditIndex: AuditIndex;
  alerts: Pick<AlertStore, 'get'>;
  cited: CitedVerifyDeps;
}

/** One pack reads at most this many records of the period; beyond it says `truncated`. */
const MAX_PAGES = 100;
const PAGE = 1000;

type Approval = Evidence['approvals'][number];
type AlertEntry = Evidence['alerts'][number];

async function periodRecords(index: AuditIndex, agentId: string, fromMs: number, toMs: number) {
  const records: AuditRecord[] = [];
  let after: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const { records: batch, next } = await index.query({ agentId, sinceMs: fromMs, untilMs: toMs, after, limit: PAGE });
    records.push(...batch);
    if (!next) return { records, truncated: false };
    after = next;
  }
  return { records, truncated: true };
}

export async function buildEvidence(
  agent: AgentSummary,
  period: { fromMs: number; toMs: number },
  generatedBy: string,
  deps: EvidenceDeps,
): Promise<Evidence> {
  const [createdPage, { records, truncated }] = await Promise.all([
    deps.auditIndex.query({ agentId: agent.id, kind: 'agent.created', limit: 1 }),
    periodRecords(deps.auditIndex, agent.id, period.fromMs, period.toMs),
  ]);
  const createdRecord = createdPage.records[0];
  const cited = new Map<string, AuditRecord>();
  const cite = (r: AuditRecord) => {
    cited.set(r.id, r);
    return r.id;
  };

  let created: Evidence['created'] = null;
  const createdEvent = createdRecord && asAuditEvent(createdRecord);
  if (createdEvent?.kind === 'agent.created') {
    created = {
      at: createdEvent.time,
      by: createdEvent.principalId ?? 'unknown',
      grants: createdEvent.data.grants,
      limits: createdEvent.data.limits,
      auditId: cite(createdRecord!),
    };
  }

  const standing: Evidence['standing'] = [];
  const tokens: Evidence['tokens'] = [];
  const tasks: Evidence['tasks'] = [];
  const approvals = new Map<string, Approval>();
  const alerts = new Map<string, AlertEntry>();
  const approval = (id: string, tool: string): Approval => {
    let a = approvals.get(id);
    if (!a) {
      a = {
        approvalId: id,
        actionId: null,
        taskId: null,
        tool,
        argsHash: null,
        requested: null,
        decision: 'pending',
        by: null,
        reason: null,
        at: null,
        auditId: null,
      };
      approvals.set(id, a);
    }
    return a;
  };

  for (const r of records) {
    const e = asAuditEvent(r);
    if (!e) continue;
    switch (e.kind) {
      case 'token.issued':
        tokens.push({
          at: e.time,
          by: e.principalId ?? 'unknown',
          expiresAt: e.data.expiresAt,
          ttlSeconds: e.data.ttlSeconds ?? null,
          scopes: e.data.scopes ?? null,
          taskId: e.taskId ?? null,
          auditId: cite(r),
        });
        break;
      case 'task.created':
        tasks.push({ taskId: e.taskId ?? '', goal: e.data.goal, at: e.time, auditId: cite(r) });
        break;
      case 'agent.revoked':
      case 'agent.enabled':
      case 'agent.suspended':
      case 'agent.resumed':
      case 'agent.throttled':
      case 'task.paused':
      case 'task.resumed': {
        const d = e.data as { by?: string; reason?: string | null; alertId?: string | null };
        standing.push({
          kind: e.kind,
          at: e.time,
          by: d.by ?? e.principalId ?? null,
          reason: d.reason ?? null,
          alertId: d.alertId ?? null,
          taskId: e.taskId ?? null,
          auditId: cite(r),
        });
        break;
      }
      case 'action.requested':
        if (e.data.approval) {
          const a = approval(e.data.approval.id, e.data.tool);
          Object.assign(a, { actionId: e.subject ?? null, taskId: e.taskId ?? null, argsHash: e.data.argsHash });
          a.requested = { at: e.time, args: e.data.args, reasoning: e.data.reasoning, auditId: cite(r) };
        }
        break;
      case 'approval.decided': {
        const a = approval(e.data.approvalId, e.data.tool);
        Object.assign(a, {
          actionId: a.actionId ?? e.subject ?? null,
          taskId: a.taskId ?? e.taskId ?? null,
          argsHash: e.data.argsHash,
          decision: e.data.decision,
          by: e.data.by,
          reason: e.data.reason,
          at: e.time,
          auditId: cite(r),
        });
        break;
      }
      case 'approval.expired': {
        const a = approval(e.data.approvalId, e.data.tool);
        Object.assign(a, { decision: 'expired', at: e.time, auditId: cite(r) });
        break;
      }
      case 'alert.raised':
        alerts.set(e.data.alertId, {
          alertId: e.data.alertId,
          detector: e.data.detector,
          severity: e.data.severity,
          summary: e.data.summary,
          response: e.data.response,
          taskId: e.taskId ?? null,
          raisedAt: e.time,
          triggeredBy: e.data.triggeredBy,
          status: 'open',
          acknowledged: null,
          resolved: null,
          auditId: cite(r),
        });
        break;
      case 'alert.acknowledged':
      case 'alert.resolved': {
        const entry = alerts.get(e.data.alertId);
        if (!entry) break; // raised before the period: its handling alone is not this period's alert
        entry[e.kind === 'alert.acknowledged' ? 'acknowledged' : 'resolved'] = {
          by: e.data.by,
          at: e.time,
          reason: e.data.reason,
          auditId: cite(r),
        };
        break;
      }
      default:
        break;
    }
  }

  // The alert's status now (it may have been handled after the period, or expired from the store).
  await Promise.all(
    [...alerts.values()].map(async (a) => {
      a.status = (await deps.alerts.get(a.alertId))?.status ?? (a.resolved ? 'resolved' : 'unknown (expired)');
    }),
  );
  const citedRecords = [...cited.values()];
  const [people, verification] = await Promise.all([
    namePeople([generatedBy, ...citedRecords.flatMap(actorsOf)], deps),
    verifyCited(citedRecords, deps.cited),
  ]);
  return {
    agent: {
      id: agent.id,
      name: agent.name,
      status: agent.status,
      createdAt: agent.createdAt,
      revokedAt: agent.revokedAt,
      grants: agent.grants,
      limits: agent.limits,
    },
    period: { from: new Date(period.fromMs).toISOString(), to: new Date(period.toMs).toISOString() },
    generatedAt: new Date().toISOString(),
    generatedBy,
    created,
    standing,
    tokens,
    approvals: [...approvals.values()],
    alerts: [...alerts.values()],
    tasks,
    people,
    auditIds: citedRecords.map((r) => r.id),
    truncated,
    verification,
  };
}
