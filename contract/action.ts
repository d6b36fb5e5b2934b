// Actions: one tool call by an agent, admitted like a run (policy, budget, audit), parked for a
// human when the tool is irreversible or the task is tainted, run once on the actions queue.
import { z } from 'zod';
import { TaskId } from './execution.ts';

export const ActionId = z.string().regex(/^act_[A-Za-z0-9_-]{10,64}$/, 'an action id (act_…)');
export const ApprovalId = z.string().regex(/^apr_[A-Za-z0-9_-]{10,64}$/, 'an approval id (apr_…)');

export const ActionRequest = z
  .strictObject({
    tool: z.string().min(1).max(64),
    args: z.record(z.string(), z.unknown()).default({}),
    taskId: TaskId.optional(),
    reasoning: z
      .string()
      .max(8000)
      .optional()
      .describe("the agent's stated reason, shown to the approver and kept in the audit trail"),
    untrusted: z
      .boolean()
      .default(false)
      .describe('the arguments carry data from an untrusted source: the task becomes tainted'),
  })
  .meta({ id: 'ActionRequest' });
export type ActionRequest = z.infer<typeof ActionRequest>;

export const ACTION_STATUSES = [
  'awaiting_approval',
  'queued',
  'running',
  'succeeded',
  'failed',
  'denied',
  'expired',
  'cancelled',
] as const;
export const ActionStatus = z.enum(ACTION_STATUSES);
export type ActionStatus = z.infer<typeof ActionStatus>;
export const FINAL_ACTION_STATUSES: readonly ActionStatus[] = ['succeeded', 'failed', 'denied', 'expired', 'cancelled'];

/** One egress decision: made on the IP actually connected to, not on the URL text. */
export const EgressDecision = z
  .object({
    url: z.string(),
    host: z.string(),
    ip: z.string().optional(),
    port: z.number().optional(),
    allowed: z.boolean(),
    reason: z.string(),
  })
  .meta({ id: 'EgressDecision' });
export type EgressDecision = z.infer<typeof EgressDecision>;

export const ApprovalStatus = z.enum(['pending', 'approved', 'denied', 'expired', 'used', 'cancelled']);

export const Approval = z
  .object({
    id: ApprovalId,
    actionId: ActionId,
    agentId: z.string(),
    taskId: z.string().nullable(),
    tool: z.string(),
    args: z.record(z.string(), z.unknown()),
    argsHash: z.string().describe('SHA-256 of the canonical arguments: the approval holds for exactly these'),
    reasoning: z.string().nullable(),
    tainted: z.boolean(),
    taintSources: z.array(z.string()),
    status: ApprovalStatus,
    requestedAt: z.string(),
    expiresAt: z.string(),
    decidedBy: z.string().nullable(),
    decidedAt: z.string().nullable(),
    reason: z.string().nullable(),
  })
  .meta({ id: 'Approval' });
export type Approval = z.infer<typeof Approval>;

export const Action = z
  .object({
    id: ActionId,
    tool: z.string(),
    status: ActionStatus,
    agentId: z.string(),
    taskId: z.string().nullable(),
    args: z.record(z.string(), z.unknown()),
    reasoning: z.string().nullable(),
    result: z.unknown().optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
    approval: Approval.pick({ id: true, status: true, expiresAt: true, decidedBy: true, reason: true }).optional(),
    egress: z.array(EgressDecision),
    usage: z.object({ cost: z.number() }),
    auditId: z.string().nullable().describe('the audit record of the request'),
    auditIds: z.array(z.string()).describe('every audit record of this action, in order'),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: 'Action' });
export type Action = z.infer<typeof Action>;

export const ActionAccepted = z.object({ id: ActionId, status: ActionStatus }).meta({ id: 'ActionAccepted' });

/** What the actions queue carries. The runner re-checks the approval against these exact args. */
export const ActionJob = z.strictObject({
  id: ActionId,
  agentId: z.string(),
  taskId: z.string().nullable(),
  tool: z.string(),
  args: z.record(z.string(), z.unknown()),
  argsHash: z.string(),
  approvalId: ApprovalId.nullable(),
  /** The destinations the agent's token granted when it asked (grants narrowed by scopes). */
  destinations: z.array(z.string()),
});
export type ActionJob = z.infer<typeof ActionJob>;

export const ApprovalDecisionRequest = z
  .strictObject({ decision: z.enum(['approve', 'deny']), reason: z.string().max(2000).optional() })
  .meta({ id: 'ApprovalDecisionRequest' });

export const ApprovalQuery = z.strictObject({ status: ApprovalStatus.optional() });
