// Audit records: one JSON line each in an append-only, hash-chained file per writer (one writer
// per process start, see guard/audit/). A record's `hash` commits to every other field, `prev`
// to the record before it, so editing, removing or reordering a line breaks the chain; signed
// checkpoints (records of kind `audit.checkpoint`) pin the chain's head against truncation and,
// by their interval, bound how much of a chain can ever be without one.
import { z } from 'zod';

/** `prev` of the first record of every chain. */
export const AUDIT_GENESIS = '0'.repeat(64);
export const CHECKPOINT_KIND = 'audit.checkpoint';

export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex sha256');
/** Also the file name of the writer's chain (`<writer>.jsonl`, then `<writer>~<n>.jsonl`), hence the narrow alphabet. */
export const AuditWriterId = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'letters, digits . _ - (at most 128)');
export const AUDIT_KIND_PATTERN = /^[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)*$/;
export const AuditKind = z
  .string()
  .max(64)
  .regex(AUDIT_KIND_PATTERN, "dotted lower-case words, e.g. 'execution.requested'");
const Ref = z.string().min(1).max(200);

const inputFields = {
  kind: AuditKind,
  agentId: Ref.optional(),
  principalId: Ref.optional(),
  taskId: Ref.optional(),
  subject: Ref.optional().describe('the execution, action or approval the record is about'),
  data: z.record(z.string(), z.unknown()).describe('JSON object; values of secret-looking keys are redacted'),
};

/** What a caller hands to the writer; the writer adds the chain fields. */
export const AuditInput = z.strictObject(inputFields);
export type AuditInput = z.input<typeof AuditInput>;

export const AuditRecord = z
  .strictObject({
    v: z.literal(1),
    id: z.string().describe('writer:seq'),
    writer: AuditWriterId,
    seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    time: z.iso.datetime({ precision: 3 }),
    ...inputFields,
    prev: Sha256Hex.describe('hash of the previous record of this writer; 64 zeros for the first'),
    hash: Sha256Hex.describe('sha256 of the RFC 8785 canonical JSON of the record without `hash`'),
  })
  .refine((r) => r.id === `${r.writer}:${r.seq}`, { message: 'id must be writer:seq', path: ['id'] })
  .meta({ id: 'AuditRecord' });
export type AuditRecord = z.infer<typeof AuditRecord>;

/**
 * A signed checkpoint: what a checkpoint record holds as `data`, what the head file names and
 * what a witness receives. The signature covers every field but keyId and signature (see
 * checkpointPayload in guard/audit/chain.ts): the writer, the position, the chain hash, whether
 * the writer closed here, and the writer's checkpoint interval, which the verifier enforces on
 * the records after it, so a forger can neither move it nor widen the unsigned tail.
 */
export const AuditCheckpoint = z
  .strictObject({
    writer: AuditWriterId,
    upToSeq: z
      .number()
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .describe('0: the opening checkpoint, signed before the first record'),
    head: Sha256Hex.describe('hash of the record at upToSeq (the genesis hash for 0)'),
    closed: z.boolean().describe('the writer closed cleanly here: nothing may follow'),
    everyRecords: z
      .number()
      .int()
      .min(1)
      .max(Number.MAX_SAFE_INTEGER)
      .describe('the writer checkpoints after at most this many records'),
    everyMs: z
      .number()
      .int()
      .min(1)
      .max(Number.MAX_SAFE_INTEGER)
      .describe('…and before a record this many ms after the first uncheckpointed one'),
    segment: z
      .number()
      .int()
      .min(1)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('the segment file it sits in (`<writer>~<segment>.jsonl`); absent: the first, `<writer>.jsonl`'),
    keyId: z.string().min(1).max(64),
    signature: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, 'base64 Ed25519 signature'),
  })
  .meta({ id: 'AuditCheckpoint' });
export type AuditCheckpoint = z.infer<typeof AuditCheckpoint>;
/** `data` of a checkpoint record: the checkpoint itself, writer included. */
export const CheckpointData = AuditCheckpoint;
export type CheckpointData = AuditCheckpoint;

/**
 * `<writer>.head.json`: the last checkpoint known durable in the chain (the opening one at first),
 * and the one being published (see the ordering note in guard/audit/audit-writer.ts).
 */
export const AuditHeadFile = z.strictObject({
  v: z.literal(2),
  writer: AuditWriterId,
  checkpoint: AuditCheckpoint.nullable(),
  next: AuditCheckpoint.nullable(),
});
export type AuditHeadFile = z.infer<typeof AuditHeadFile>;

export const AuditVerifyResult = z
  .object({
    ok: z.boolean(),
    records: z.number().int().describe('records verified (up to the first bad one)'),
    chains: z.number().int(),
    head: z.record(
      z.string(),
      z.object({
        seq: z.number().int(),
        hash: z.string(),
        closed: z.boolean().describe('ends with its signed closing checkpoint'),
      }),
    ),
    error: z
      .object({
        file: z.string(),
        line: z.number().int().describe('1-based, in `file`; line n of a first segment holds seq n'),
        id: z.string().optional(),
        reason: z.string(),
      })
      .optional()
      .describe('the first record that does not verify'),
  })
  .meta({ id: 'AuditVerifyResult' });
export type AuditVerifyResult = z.infer<typeof AuditVerifyResult>;
