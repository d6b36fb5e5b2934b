// The hash chain, pure: how a record is built, hashed and linked, and what a checkpoint signs.
// No I/O here, so the writer, the verifier and the tests all share one definition.
import {
  AUDIT_GENESIS,
  AUDIT_KIND_PATTERN,
  type AuditCheckpoint,
  AuditInput,
  type AuditRecord,
  CHECKPOINT_KIND,
} from '../../contract/audit.ts';
import { canonicalJson, sha256Hex } from './canonical.ts';
import { redact } from './redact.ts';

/** The last record of a chain (seq 0 and the genesis hash before the first). */
export interface ChainHead {
  readonly writer: string;
  readonly seq: number;
  readonly hash: string;
}

export const startChain = (writer: string): ChainHead => ({ writer, seq: 0, hash: AUDIT_GENESIS });

export interface SealedRecord {
  record: AuditRecord;
  /** The record's canonical JSON, without the trailing newline: exactly what goes on disk. */
  line: string;
  head: ChainHead;
}

/** The member the writer splices into the canonical text, and the verifier cuts out again. */
export const hashMember = (hash: string): string => `,"hash":"${hash}"`;

/**
 * Hashes and seals a record. The line is canonicalize(record), but built from the one
 * canonicalization the hash needs anyway: keys sort as agentId, data, [hash], id, … and every
 * top-level member after `data` is a string or number, so the last `,"id":"` in the text is the
 * top-level one (a quote inside a string is always escaped) and `hash` goes right before it.
 */
export function sealRecord(unsealed: Omit<AuditRecord, 'hash'>): { record: AuditRecord; line: string } {
  const text = canonicalJson(unsealed);
  const hash = sha256Hex(text);
  const at = text.lastIndexOf(',"id":"');
  if (at < 0) throw new Error('record has no id');
  return { record: { ...unsealed, hash }, line: text.slice(0, at) + hashMember(hash) + text.slice(at) };
}

const INPUT_KEYS = new Set(['kind', 'agentId', 'principalId', 'taskId', 'subject', 'data']);
const isRef = (v: unknown) => v === undefined || (typeof v === 'string' && v.length >= 1 && v.length <= 200);

/**
 * AuditInput's rules, checked by hand for the input every record of the service is (~14 µs of
 * schema parsing a record, three a run): true only for an input the schema accepts as it is.
 * Anything else goes through the schema, which accepts it or says what is wrong.
 */
function plainlyValid(input: AuditInput): boolean {
  if (typeof input !== 'object' || input === null) return false;
  for (const key in input) if (!INPUT_KEYS.has(key)) return false;
  const { kind, data } = input;
  return (
    typeof kind === 'string' &&
    kind.length <= 64 &&
    AUDIT_KIND_PATTERN.test(kind) &&
    isRef(input.agentId) &&
    isRef(input.principalId) &&
    isRef(input.taskId) &&
    isRef(input.subject) &&
    typeof data === 'object' &&
    data !== null &&
    !Array.isArray(data) &&
    Object.getPrototypeOf(data) === Object.prototype
  );
}

/** Validates and redacts `input`, then makes it the record after `head`. */
export function appendRecord(head: ChainHead, input: AuditInput, now: Date = new Date()): SealedRecord {
  const valid = plainlyValid(input) ? input : AuditInput.parse(input);
  const seq = head.seq + 1;
  // Optional fields are set only when present, so the record equals JSON.parse(line).
  const unsealed: Omit<AuditRecord, 'hash'> = {
    v: 1,
    id: `${head.writer}:${seq}`,
    writer: head.writer,
    seq,
    time: now.toISOString(),
    kind: valid.kind,
    ...(valid.agentId === undefined ? {} : { agentId: valid.agentId }),
    ...(valid.principalId === undefined ? {} : { principalId: valid.principalId }),
    ...(valid.taskId === undefined ? {} : { taskId: valid.taskId }),
    ...(valid.subject === undefined ? {} : { subject: valid.subject }),
    data: redact(valid.data),
    prev: head.hash,
  };
  const { record, line } = sealRecord(unsealed);
  return { record, line, head: { writer: head.writer, seq, hash: record.hash } };
}

/** What a checkpoint signs besides the chain position: set by the writer, enforced by the verifier. */
export interface CheckpointTerms {
  /** The writer's closing checkpoint: nothing may follow it. */
  closed: boolean;
  everyRecords: number;
  everyMs: number;
  /** The segment the checkpoint record sits in; 0 (the first segment) is left out of what is signed. */
  segment?: number;
}

/** Domain tag: a signature made for anything else (or by the older format) never verifies as a checkpoint. */
export const CHECKPOINT_SIGNED = 'sandgate.audit.checkpoint/2';

/**
 * The bytes a checkpoint signature covers: the writer (so it cannot move to another chain), the
 * position and chain hash (nor along its own), whether it closes the chain, and the interval.
 */
export const checkpointPayload = (c: Omit<AuditCheckpoint, 'keyId' | 'signature'>): string =>
  canonicalJson({
    signed: CHECKPOINT_SIGNED,
    writer: c.writer,
    upToSeq: c.upToSeq,
    head: c.head,
    closed: c.closed,
    everyRecords: c.everyRecords,
    everyMs: c.everyMs,
    ...(c.segment ? { segment: c.segment } : {}),
  });

export interface CheckpointSigner {
  readonly keyId: string;
  /** base64 Ed25519 signature of the UTF-8 payload. */
  sign(payload: string): string;
}

/**
 * A checkpoint over everything up to `head`, and the input of the record that carries it. The
 * record is appended right after `head`, so its seq is always upToSeq + 1 and its prev is the
 * signed head: the verifier relies on that and needs no memory of older hashes. At seq 0 it is
 * the opening checkpoint, which the writer puts in its head file before the first record.
 */
export function makeCheckpoint(
  head: ChainHead,
  signer: CheckpointSigner,
  terms: CheckpointTerms,
): { checkpoint: AuditCheckpoint; input: AuditInput } {
  const signed = {
    writer: head.writer,
    upToSeq: head.seq,
    head: head.hash,
    closed: terms.closed,
    everyRecords: terms.everyRecords,
    everyMs: terms.everyMs,
    ...(terms.segment ? { segment: terms.segment } : {}),
  };
  const checkpoint: AuditCheckpoint = {
    ...signed,
    keyId: signer.keyId,
    signature: signer.sign(checkpointPayload(signed)),
  };
  return { checkpoint, input: { kind: CHECKPOINT_KIND, data: checkpoint } };
}
