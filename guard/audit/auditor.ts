// What the rest of Sandgate calls to audit something: one record, durable before the promise
// resolves (audit before effect), or a 503 `audit_unavailable` so the caller does nothing.
import type { AuditRecord } from '../../contract/audit.ts';
import type { AuditEventData, AuditEventKind, Capped } from '../../contract/audit-events.ts';
import { SandgateError } from '../../contract/errors.ts';
import type { AuditWriter } from './audit-writer.ts';
import { sha256Hex } from './canonical.ts';

export interface AuditContext {
  agentId?: string | undefined;
  principalId?: string | undefined;
  taskId?: string | null | undefined;
  /** The execution, action or approval the record is about. */
  subject?: string | undefined;
}

export interface Auditor {
  /**
   * Appends one record of a kind of the vocabulary and resolves with its id once it is on disk.
   * `lazy`: nobody waits on it, so it rides with the next record's write (see AuditWriter.append).
   */
  record<K extends AuditEventKind>(
    kind: K,
    ctx: AuditContext,
    data: AuditEventData[K],
    opts?: { lazy?: boolean },
  ): Promise<string>;
}

/** Output kept in a record: the first `cap` characters, and the SHA-256 of all of it. */
export const capped = (text: string, cap = 4096): Capped => ({
  text: text.length > cap ? text.slice(0, cap) : text,
  bytes: Buffer.byteLength(text),
  sha256: sha256Hex(text),
  cut: text.length > cap,
});

export function createAuditor(writer: AuditWriter): Auditor {
  return {
    async record(kind, ctx, data, opts) {
      let record: AuditRecord;
      try {
        record = await writer.append(
          {
            kind,
            ...(ctx.agentId && { agentId: ctx.agentId }),
            ...(ctx.principalId && { principalId: ctx.principalId }),
            ...(ctx.taskId && { taskId: ctx.taskId }),
            ...(ctx.subject && { subject: ctx.subject }),
            data: data as unknown as Record<string, unknown>,
          },
          opts,
        );
      } catch (e) {
        throw new SandgateError(
          'audit_unavailable',
          `the audit record could not be written, so nothing was done: ${(e as Error).message}`,
        );
      }
      return record.id;
    },
  };
}
