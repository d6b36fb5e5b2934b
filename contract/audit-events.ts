// The vocabulary of the audit trail: every kind of record Sandgate writes, with the data it
// carries. Writers are typed by it (guard/audit/auditor.ts takes a kind and exactly its data) and
// readers narrow a stored record to its kind (`asAuditEvent`), so the task's story and the
// console read fields without casts.
import type { AuditRecord } from './audit.ts';

/** Output or a value kept in a record: the first characters, and the SHA-256 of all of it. */
export interface Capped {
  text: string;
  bytes: number;
  sha256: string;
  cut: boolean;
}

interface Refused {
  code: string;
  message: string;
}

interface Decision {
  allowed: true;
  policies: string[];
}

interface ErrorData {
  code: string;
  message: string;
}

export interface AuditEventData {
  // identity
  'agent.created': { name: string; grants: unknown; limits: unknown };
  'agent.revoked': { cancelledExecutions: number; cancelledActions: number; reason?: string | null };
  'agent.enabled': { tokenGeneration: number };
  'principal.created': { name: string; role: string };
  'token.issued': { expiresAt: string; ttlSeconds: number | undefined; scopes: unknown; audience?: string };
  // tasks
  'task.created': { goal: string; budget: unknown };
  'usage.reported': { tokens: number; cost: number; reasoning: string | null; prompt: Capped | null };
  'task.exhausted': { cap: string; cancelledExecutions: number };
  // runs
  'execution.requested': {
    profile: string;
    language: string;
    code: Capped;
    stdin: Capped | null;
    files: Array<{ path: string; sha256: string; encoding: string }>;
    limits: { timeoutMs: number; memoryMb: number; outputBytes: number };
    reasoning: string | null;
    decision: Decision;
    budget: { reserved: number };
  };
  'execution.refused': { profile: string; codeSha256: string; reasoning: string | null; refused: Refused };
  'run.started': { profile: string };
  'run.finished': {
    status: string;
    error: ErrorData | null;
    usage: { cpuMs: number; wallMs: number; memoryBytes: number; cost: number; measured?: boolean } | null;
    exitCode?: number | null;
    stdout?: Capped;
    stderr?: Capped;
    result?: Capped | null;
    files?: Array<{ path: string; sha256: string }>;
    truncated?: boolean;
    /** A run whose runner was lost: charged its whole reservation (it may have used it) or nothing. */
    charged?: 'worst_case' | 'nothing';
  };
  // tool calls
  'action.requested': {
    tool: string;
    args: Record<string, unknown>;
    argsHash: string;
    reasoning: string | null;
    untrusted: boolean;
    tainted: boolean;
    decision: Decision;
    budget: { reserved: number };
    approval: { id: string; expiresInMs: number; required: string } | null;
    destinations: string[];
  };
  'action.refused': { tool: string; args: Record<string, unknown>; reasoning: string | null; refused: Refused };
  'approval.decided': {
    approvalId: string;
    tool: string;
    argsHash: string;
    decision: 'approve' | 'deny';
    by: string;
    reason: string | null;
  };
  'approval.expired': { approvalId: string; tool: string; outcome: string };
  'action.started': { tool: string; argsHash: string; approvalId: string | null };
  // watching
  'alert.raised': {
    alertId: string;
    detector: string;
    severity: string;
    response: string;
    summary: string;
    evidence: Record<string, unknown>;
    triggeredBy: string[];
  };
  'alert.delivered': { alertId: string; sink: string; event: string; ok: boolean; detail: string };
  'alert.acknowledged': { alertId: string; by: string; reason: string | null };
  'alert.resolved': { alertId: string; by: string; reason: string | null };
  'agent.suspended': { alertId: string | null; by: string; reason: string | null };
  'agent.resumed': { by: string; reason: string | null };
  'agent.throttled': { alertId: string; factor: number; forS: number };
  'task.paused': { alertId: string | null; by: string; reason: string | null };
  'task.resumed': { by: string; reason: string | null };
  'action.finished': {
    tool: string;
    status: string;
    result: Capped;
    error: ErrorData | null;
    egress: unknown[];
    cost: number;
    untrustedSource: string | null;
  };
}

export type AuditEventKind = keyof AuditEventData;

/** A stored record whose kind Sandgate wrote: `data` has that kind's shape. */
export type AuditEvent = {
  [K in AuditEventKind]: Omit<AuditRecord, 'kind' | 'data'> & { kind: K; data: AuditEventData[K] };
}[AuditEventKind];

// Every kind once: the compiler refuses a kind missing here or one that is not in the vocabulary.
const KINDS: Record<AuditEventKind, true> = {
  'agent.created': true,
  'agent.revoked': true,
  'agent.enabled': true,
  'principal.created': true,
  'token.issued': true,
  'task.created': true,
  'usage.reported': true,
  'task.exhausted': true,
  'execution.requested': true,
  'execution.refused': true,
  'run.started': true,
  'run.finished': true,
  'action.requested': true,
  'action.refused': true,
  'approval.decided': true,
  'approval.expired': true,
  'action.started': true,
  'action.finished': true,
  'alert.raised': true,
  'alert.delivered': true,
  'alert.acknowledged': true,
  'alert.resolved': true,
  'agent.suspended': true,
  'agent.resumed': true,
  'agent.throttled': true,
  'task.paused': true,
  'task.resumed': true,
};
export const AUDIT_EVENT_KINDS = Object.keys(KINDS) as AuditEventKind[];

/** The record as its kind's event, or undefined for a kind outside the vocabulary (a checkpoint). */
export function asAuditEvent(record: AuditRecord): AuditEvent | undefined {
  return Object.hasOwn(KINDS, record.kind) ? (record as unknown as AuditEvent) : undefined;
}
