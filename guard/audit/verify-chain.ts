// One chain file, streamed: each line's schema, position, link and hash; each checkpoint's
// signature and whether it sits where, and in whose chain, it was signed; and the interval rule
// on the records between checkpoints, which the writer obeys exactly (see audit-writer.ts), so a
// chain with checkpoints stripped, or records added after its last one, breaks it.
import type { KeyObject } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type AuditCheckpoint,
  AuditRecord,
  type AuditVerifyResult,
  CHECKPOINT_KIND,
  CheckpointData,
} from '../../contract/audit.ts';
import { checkpointSignatureProblem } from './audit-signer.ts';
import { sha256Hex } from './canonical.ts';
import { type CheckpointTerms, hashMember, startChain } from './chain.ts';

export type VerifyError = NonNullable<AuditVerifyResult['error']>;
export type CheckpointInterval = Pick<CheckpointTerms, 'everyRecords' | 'everyMs'>;

export interface SeenCheckpoint {
  cp: AuditCheckpoint;
  line: number;
  id: string;
}

export interface Chain {
  writer: string;
  file: string;
  head: { seq: number; hash: string };
  checkpoints: Map<number, SeenCheckpoint>;
  /** The last checkpoint record; null when there is none (the opening one, in the head file, is the last). */
  last: SeenCheckpoint | null;
}

const CHUNK = 4 << 20;
const HASH_MEMBER_BYTES = hashMember('0'.repeat(64)).length;

export const firstIssue = (error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }): string => {
  const issue = error.issues[0];
  return issue ? `${issue.path.map(String).join('.') || '(record)'}: ${issue.message}` : 'invalid';
};

/** The signature covers every other field, so equal signatures over equal positions are the same checkpoint. */
export const sameCheckpoint = (a: AuditCheckpoint, b: AuditCheckpoint): boolean =>
  a.writer === b.writer &&
  a.upToSeq === b.upToSeq &&
  a.head === b.head &&
  a.closed === b.closed &&
  a.signature === b.signature;

/** The opening checkpoint lives only in the head file (and at the witness); every other one is a chain record. */
export const isOpening = (cp: AuditCheckpoint): boolean => cp.upToSeq === 0 && !cp.closed;

const duration = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);
const intervalText = (t: CheckpointInterval): string => `${t.everyRecords} records / ${duration(t.everyMs)}`;

/**
 * Streams `<writer>.jsonl`; returns the chain's state, or the first bad line. `interval` is the
 * one the writer signed (from its head file), applied from the first record on; without it the
 * rule starts at the first checkpoint, and the head file check fails the chain anyway.
 */
export async function scanChain(
  dir: string,
  writer: string,
  pinned: Map<string, KeyObject>,
  counter: { records: number },
  interval: CheckpointInterval | null,
): Promise<Chain | VerifyError> {
  const file = `${writer}.jsonl`;
  const chain: Chain = {
    writer,
    file,
    head: { seq: 0, hash: startChain(writer).hash },
    checkpoints: new Map(),
    last: null,
  };
  let terms = interval;
  const run = { count: 0, startSeq: 0, startMs: 0 }; // the records since the last checkpoint
  let line = 0;
  const bad = (reason: string, id?: string): VerifyError => ({ file, line, ...(id ? { id } : {}), reason });

  const checkpoint = (r: AuditRecord): VerifyError | null => {
    const parsed = CheckpointData.safeParse(r.data);
    if (!parsed.success) return bad(`schema: checkpoint ${firstIssue(parsed.error)}`, r.id);
    const cp = parsed.data;
    const problem = checkpointSignatureProblem(cp, pinned);
    if (problem === 'checkpoint signature invalid') {
      return bad(
        `${problem}: its writer, upToSeq, head, interval or closed flag was changed after signing, or another key made it`,
        r.id,
      );
    }
    if (problem) return bad(problem, r.id);
    if (cp.writer !== writer)
      return bad(
        `checkpoint signed for writer ${cp.writer} found in writer ${writer}'s file: spliced from another chain`,
        r.id,
      );
    if (cp.upToSeq !== r.seq - 1) {
      return bad(
        `checkpoint signed for upToSeq ${cp.upToSeq} found at seq ${r.seq}: moved, duplicated or reordered (it belongs at seq ${cp.upToSeq + 1})`,
        r.id,
      );
    }
    if (cp.head !== r.prev)
      return bad(
        `checkpoint signed over another chain hash: records 1..${cp.upToSeq} before it were rewritten and re-linked`,
        r.id,
      );
    if (terms && (cp.everyRecords !== terms.everyRecords || cp.everyMs !== terms.everyMs)) {
      return bad(`checkpoint interval ${intervalText(cp)} differs from the writer's ${intervalText(terms)}`, r.id);
    }
    terms = cp;
    const seen = { cp, line, id: r.id };
    chain.checkpoints.set(cp.upToSeq, seen);
    chain.last = seen;
    run.count = 0;
    return null;
  };

  // No run of records between checkpoints is longer, or wider by its own timestamps, than the interval.
  const inRun = (r: AuditRecord): VerifyError | null => {
    const t = Date.parse(r.time);
    if (run.count === 0) {
      run.startSeq = r.seq;
      run.startMs = t;
    }
    run.count++;
    if (!terms) return null;
    const within = `no signed checkpoint within records ${run.startSeq}..${r.seq}`;
    if (run.count > terms.everyRecords) {
      return bad(
        `${within} (the writer checkpoints every ${terms.everyRecords} records): checkpoints stripped or records added`,
        r.id,
      );
    }
    if (t - run.startMs >= terms.everyMs) {
      const apart = `${((t - run.startMs) / 1000).toFixed(3)} s apart by their timestamps`;
      return bad(
        `${within}, ${apart} (the writer checkpoints every ${duration(terms.everyMs)}): checkpoints stripped or records added`,
        r.id,
      );
    }
    return null;
  };

  // One line: parse, schema, position in the chain, then the hash over the exact bytes on disk.
  // Hashing the bytes (minus the hash member) rather than re-canonicalizing the parsed record
  // spares most of the cost, and is stricter: the writer writes the canonical form, so for an
  // untouched line the bytes are the canonical JSON, and any changed byte changes the hash.
  const check = (data: Buffer, start: number, end: number): VerifyError | null => {
    let raw: unknown;
    try {
      raw = JSON.parse(data.toString('utf8', start, end));
    } catch {
      return bad('invalid JSON');
    }
    const parsed = AuditRecord.safeParse(raw);
    if (!parsed.success) return bad(`schema: ${firstIssue(parsed.error)}`);
    const r = parsed.data;
    if (r.writer !== writer)
      return bad(
        `record of writer ${r.writer} found in writer ${writer}'s file: spliced from another chain or renamed`,
        r.id,
      );
    if (r.seq !== chain.head.seq + 1)
      return bad(`seq out of order: expected ${chain.head.seq + 1}, found ${r.seq}`, r.id);
    if (r.prev !== chain.head.hash)
      return bad('prev mismatch: the previous record was changed, removed or moved', r.id);
    const at = data.lastIndexOf(hashMember(r.hash), end - HASH_MEMBER_BYTES);
    if (at < start) return bad('hash mismatch: no hash member', r.id);
    const hash = sha256Hex(Buffer.concat([data.subarray(start, at), data.subarray(at + HASH_MEMBER_BYTES, end)]));
    if (hash !== r.hash) return bad('hash mismatch: the record was changed', r.id);
    const closed = chain.last?.cp.closed ? chain.last : null;
    if (closed)
      return bad(
        `record after the closing checkpoint (line ${closed.line}): appended after the writer closed the chain`,
        r.id,
      );
    const error = r.kind === CHECKPOINT_KIND ? checkpoint(r) : inRun(r);
    if (error) return error;
    chain.head = { seq: r.seq, hash: r.hash };
    counter.records++;
    return null;
  };

  const fh = await open(join(dir, file), 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let carry: Buffer | null = null;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      const data: Buffer = carry ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      let start = 0;
      for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
        line++;
        const error = check(data, start, nl);
        if (error) return error;
        start = nl + 1;
      }
      carry = start < data.length ? Buffer.from(data.subarray(start)) : null; // a copy: buf is reused
    }
    if (carry) {
      line++;
      return bad('truncated record: the last line is incomplete');
    }
  } finally {
    await fh.close();
  }
  return chain;
}
