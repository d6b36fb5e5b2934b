// What the operator console reads beyond the core contract: agents with their figures, task
// lists, activity in time buckets, the verification of cited audit records, and the evidence
// pack of an agent. Every field here is computed from state or the audit trail; none is stored.
import { z } from 'zod';
import { Agent } from './agent.ts';
import { AuditRecord } from './audit.ts';
import { Task } from './task.ts';
import { HoldReason, Severity } from './watch.ts';

/** Who is calling: the console decides from this which pages and buttons to show. */
export const Me = z
  .object({
    role: z.enum(['admin', 'operator', 'approver', 'auditor']),
    id: z.string(),
    name: z.string(),
  })
  .meta({ id: 'Me' });

/** Counts and spend of one stretch of time (admitted work, refusals, settled and reported cost). */
export const ActivityFigures = z.object({
  runs: z.number().int(),
  toolCalls: z.number().int(),
  refused: z.number().int(),
  spend: z.number(),
});
export type ActivityFigures = z.infer<typeof ActivityFigures>;

export const AgentStatus = z.enum(['active', 'suspended', 'revoked']);

export const AgentSummary = Agent.extend({
  status: AgentStatus,
  suspended: HoldReason.nullable(),
  throttled: HoldReason.nullable().describe('set while a detector has slowed the agent'),
  lastHour: ActivityFigures.describe('admitted runs and tool calls, refusals and spend in the last 60 minutes'),
  today: z
    .object({ spent: z.number(), reserved: z.number(), cap: z.number(), left: z.number() })
    .describe("the agent's spend of the current UTC day against its spendPerDay"),
  openAlerts: z.number().int().describe('open or acknowledged, not yet resolved'),
  worstOpenSeverity: Severity.nullable(),
}).meta({ id: 'AgentSummary' });
export type AgentSummary = z.infer<typeof AgentSummary>;

export const AgentListQuery = z.strictObject({
  status: AgentStatus.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(200),
});

export const TaskListQuery = z.strictObject({
  agentId: z.string().max(80).optional(),
  status: z
    .enum(['open', 'all'])
    .default('all')
    .describe('open: not exhausted (paused ones included); all: every task still kept'),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export const ActivityQuery = z.strictObject({
  from: z.iso.datetime({ offset: true }).optional().describe('default: `to` minus one hour'),
  to: z.iso.datetime({ offset: true }).optional().describe('default: now'),
  bucketS: z.coerce
    .number()
    .int()
    .min(60)
    .max(86_400)
    .default(60)
    .describe('bucket length in seconds, a multiple of 60'),
});

export const Activity = z
  .object({
    scope: z.enum(['agent', 'task']),
    id: z.string(),
    from: z.string(),
    to: z.string(),
    bucketS: z.number().int(),
    buckets: z.array(ActivityFigures.extend({ start: z.string() })),
    total: ActivityFigures,
  })
  .meta({ id: 'Activity' });
export type Activity = z.infer<typeof Activity>;

/**
 * One cited record, checked against the audit files this process can read: `verified` means its
 * chain verified (hashes, links, signed checkpoints) through it and the indexed copy is the file's
 * record byte for byte; `failed` names why not; `unchecked` says why it could not be checked here
 * (another process wrote it, or it was written after the check).
 */
export const RecordCheck = z.object({
  status: z.enum(['verified', 'failed', 'unchecked']),
  reason: z.string().nullable(),
});
export type RecordCheck = z.infer<typeof RecordCheck>;

export const Verification = z
  .object({
    checkedAt: z.string(),
    directories: z.array(z.string()).describe('the audit directories read (this process)'),
    directory: z.object({
      ok: z.boolean(),
      records: z.number().int(),
      chains: z.number().int(),
      error: z.string().nullable().describe('the first bad record of the directory, if any'),
    }),
    counts: z.object({ verified: z.number().int(), failed: z.number().int(), unchecked: z.number().int() }),
    records: z.record(z.string(), RecordCheck),
  })
  .meta({ id: 'Verification' });
export type Verification = z.infer<typeof Verification>;

/** Names of the humans (and the admin, and detectors) that records cite by id. */
export const People = z.record(z.string(), z.object({ name: z.string(), role: z.string() }));
export type People = z.infer<typeof People>;

export const TraceQuery = z.strictObject({
  verify: z
    .enum(['true', 'false'])
    .default('false')
    .describe('also check each record against the audit files (humans only)'),
});

export const Trace = z
  .object({
    task: Task,
    records: z.array(AuditRecord),
    story: z.array(z.string()),
    people: People.optional(),
    verification: Verification.optional(),
  })
  .meta({ id: 'Trace' });

export const AuditRecordView = z
  .object({ record: AuditRecord, story: z.string(), people: People, verification: Verification })
  .meta({ id: 'AuditRecordView' });

export const EvidenceQuery = z.strictObject({
  from: z.iso.datetime({ offset: true }).optional().describe("default: the agent's creation"),
  to: z.iso.datetime({ offset: true }).optional().describe('default: now'),
});

const Handled = z.object({ by: z.string(), at: z.string(), reason: z.string().nullable(), auditId: z.string() });

export const Evidence = z
  .object({
    agent: z.object({
      id: z.string(),
      name: z.string(),
      status: AgentStatus,
      createdAt: z.string(),
      revokedAt: z.string().nullable(),
      grants: Agent.shape.grants,
      limits: Agent.shape.limits,
    }),
    period: z.object({ from: z.string(), to: z.string() }),
    generatedAt: z.string(),
    generatedBy: z.string(),
    created: z
      .object({ at: z.string(), by: z.string(), grants: z.unknown(), limits: z.unknown(), auditId: z.string() })
      .nullable()
      .describe('who created the agent and granted what (the grants are fixed at creation)'),
    standing: z
      .array(
        z.object({
          kind: z.string(),
          at: z.string(),
          by: z.string().nullable(),
          reason: z.string().nullable(),
          alertId: z.string().nullable(),
          taskId: z.string().nullable().describe('for a pause or resume of one task'),
          auditId: z.string(),
        }),
      )
      .describe(
        'revocations, re-enables, suspensions, resumes and throttles of the agent, and pauses and resumes of its tasks, in order',
      ),
    tokens: z.array(
      z.object({
        at: z.string(),
        by: z.string(),
        expiresAt: z.string(),
        ttlSeconds: z.number().nullable(),
        scopes: z.unknown(),
        taskId: z.string().nullable(),
        auditId: z.string(),
      }),
    ),
    approvals: z.array(
      z.object({
        approvalId: z.string(),
        actionId: z.string().nullable(),
        taskId: z.string().nullable(),
        tool: z.string(),
        argsHash: z.string().nullable(),
        requested: z
          .object({ at: z.string(), args: z.unknown(), reasoning: z.string().nullable(), auditId: z.string() })
          .nullable(),
        decision: z.enum(['approve', 'deny', 'expired', 'pending']),
        by: z.string().nullable(),
        reason: z.string().nullable(),
        at: z.string().nullable(),
        auditId: z.string().nullable(),
      }),
    ),
    alerts: z.array(
      z.object({
        alertId: z.string(),
        detector: z.string(),
        severity: z.string(),
        summary: z.string(),
        response: z.string(),
        taskId: z.string().nullable(),
        raisedAt: z.string(),
        triggeredBy: z.array(z.string()),
        status: z.string().describe('its status now'),
        acknowledged: Handled.nullable(),
        resolved: Handled.nullable(),
        auditId: z.string(),
      }),
    ),
    tasks: z.array(z.object({ taskId: z.string(), goal: z.string(), at: z.string(), auditId: z.string() })),
    people: People,
    auditIds: z.array(z.string()).describe('every record the pack cites'),
    truncated: z.boolean().describe('the period held more records than one pack reads (100 000)'),
    verification: Verification,
  })
  .meta({ id: 'Evidence' });
export type Evidence = z.infer<typeof Evidence>;

export const TaskList = z.object({ tasks: z.array(Task) });
export const AgentList = z.object({ agents: z.array(AgentSummary) });
