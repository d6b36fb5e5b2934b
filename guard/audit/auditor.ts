// What the rest of Sandgate calls to audit something: one record, durable before the promise
// resolves (audit before effect), or a 503 `audit_unavailable` so the caller does nothing.
import type { AuditEventData, AuditEventKind, Capped } from '../../contract/audit-events.ts';
import { SandgateError } from '../../contract/errors.ts';
import type { AppendOptions, AuditWriter } from './audit-writer.ts';
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
   * `lazy`: nobody waits on it, so it rides with the next record's write (see AuditWriter.append;
   * a number bounds the wait, in ms).
   */
  record<K extends AuditEventKind>(
    kind: K,
    ctx: AuditContext,
    data: AuditEventData[K],
    opts?: AppendOptions,
  ): Promise<string>;
  /**
   * record(), with the id at once (sequenced now, durable once `durable` resolves; undefined when
   * it was refused outright). Whoever acts on it waits for `durable` first: audit before effect.
   */
  begin<K extends AuditEventKind>(
    kind: K,
    ctx: AuditContext,
    data: AuditEventData[K],
    opts?: AppendOptions,
  ): { id: string | undefined; durable: Promise<string> };
}

/** Output kept in a record: the first `cap` characters, and the SHA-256 of all of it. */
export const capped = (text: string, cap = 4096): Capped => ({
  text: text.length > cap ? text.slice(0, cap) : text,
  bytes: Buffer.byteLength(text),
  sha256: sha256Hex(text),
  cut: text.length > cap,
});

const inputOf = (kind: AuditEventKind, ctx: AuditContext, data: unknown) => ({
  kind,
  ...(ctx.agentId && { agentId: ctx.agentId }),
  ...(ctx.principalId && { principalId: ctx.principalId }),
  ...(ctx.taskId && { taskId: ctx.taskId }),
  ...(ctx.subject && { subject: ctx.subject }),
  data: data as Record<string, unknown>,
});

const unavailable = (e: unknown) =>
  new SandgateError(
    'audit_unavailable',
    `the audit record could not be written, so nothing was done: ${(e as Error).message}`,
  );

export function createAuditor(writer: AuditWriter): Auditor {
  const begin: Auditor['begin'] = (kind, ctx, data, opts) => {
    const started = writer.begin(inputOf(kind, ctx, data), opts);
    return {
      id: started.id,
      durable: started.durable.then(
        (r) => r.id,
        (e: unknown) => {
          throw unavailable(e);
        },
      ),
    };
  };
  return { begin, record: (kind, ctx, data, opts) => begin(kind, ctx, data, opts).durable };
}
