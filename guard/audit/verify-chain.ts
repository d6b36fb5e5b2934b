// One chain, its segment files in order, streamed: each line's schema, position, link and hash;
// each checkpoint's signature and whether it sits where (in whose chain, which segment) it was
// signed; and the interval rule on the records between checkpoints, which the writer obeys
// exactly (see audit-writer.ts), so a chain with checkpoints stripped, or records added after its
// last one, breaks it. Segments: none missing (by name, and by seq and prev running on across
// them), each but the newest ending with a checkpoint signed for it, each after the first opening
// with one signed for it over the previous segment's last record (segments.ts).
import type { KeyObject } from 'node:crypto';
import { setImmediate as yieldOnce } from 'node:timers/promises';
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
import { fileSha256, openFirst, type SegmentFile, segmentName } from './segments.ts';

export type VerifyError = NonNullable<AuditVerifyResult['error']>;
export type CheckpointInterval = Pick<CheckpointTerms, 'everyRecords' | 'everyMs'>;

export interface SeenCheckpoint {
  cp: AuditCheckpoint;
  file: string;
  line: number;
  id: string;
}

export interface ScannedSegment {
  name: string;
  index: number;
  /** The seq its first line holds (the next seq when it is empty). */
  firstSeq: number;
}

export interface Chain {
  writer: string;
  /** The newest segment's file name. */
  file: string;
  segments: ScannedSegment[];
  head: { seq: number; hash: string };
  checkpoints: Map<number, SeenCheckpoint>;
  /** The last checkpoint record; null when there is none (the opening one, in the head file, is the last). */
  last: SeenCheckpoint | null;
}

const CHUNK = 4 << 20;
/** A live writer may be mid-write at the newest segment's end: a torn tail that is still growing is read on. */
const TAIL_RETRIES = 50;
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

/** Where seq `seq` is (or would be) in the chain's files. */
export function locate(chain: Chain, seq: number): { file: string; line: number } {
  const segment = chain.segments.findLast((s) => s.firstSeq <= seq) ?? chain.segments[0];
  return segment ? { file: segment.name, line: seq - segment.firstSeq + 1 } : { file: chain.file, line: seq };
}

/**
 * Streams the writer's segments in order; returns the chain's state, or the first bad line.
 * `interval` is the one the writer signed (from its head file), applied from the first record
 * on; without it the rule starts at the first checkpoint, and the head file check fails the
 * chain anyway.
 */
export async function scanChain(
  segments: readonly SegmentFile[],
  writer: string,
  pinned: Map<string, KeyObject>,
  counter: { records: number },
  interval: CheckpointInterval | null,
): Promise<Chain | VerifyError> {
  let file = segmentName(writer, 0);
  let index = 0;
  const chain: Chain = {
    writer,
    file,
    segments: [],
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
    if ((cp.segment ?? 0) !== index)
      return bad(
        `checkpoint signed for segment ${segmentName(writer, cp.segment ?? 0)} found in ${file}: segment renamed, reordered or its records moved`,
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
    const seen = { cp, file, line, id: r.id };
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
    if (line === 1 && index > 0) {
      // A segment opens with a checkpoint signed for it over the previous segment's last record.
      const signedFor = r.kind === CHECKPOINT_KIND ? (r.data as { segment?: unknown }).segment : undefined;
      if (r.kind !== CHECKPOINT_KIND) return bad('segment opens without its signed opening checkpoint', r.id);
      if (signedFor !== index)
        return bad(
          `segment opens with a checkpoint signed for ${segmentName(writer, typeof signedFor === 'number' ? signedFor : 0)}: segments renamed or reordered`,
          r.id,
        );
      if (r.seq !== chain.head.seq + 1) {
        // The previous segment is what changed: it does not end at the seal this one opens over.
        const previous = chain.segments.at(-2)!;
        return {
          file: previous.name,
          line: chain.head.seq - previous.firstSeq + 2,
          id: r.id,
          reason: `sealed segment does not end where ${file} opens (it ends at seq ${chain.head.seq}, ${file} opens after seq ${r.seq - 1}): truncated or replaced`,
        };
      }
    }
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

  const scanFile = async (paths: readonly string[], newest: boolean): Promise<VerifyError | null> => {
    const { fh } = await openFirst(paths);
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      let carry: Buffer | null = null;
      let position = 0;
      for (let retries = 0; ; ) {
        const { bytesRead } = await fh.read(buf, 0, CHUNK, position);
        position += bytesRead;
        if (bytesRead === 0) {
          // A torn tail of the newest segment may be a live writer's write in progress: read on
          // while the file grows (at rest it does not, and the torn line is reported at once).
          if (!carry || !newest || retries++ >= TAIL_RETRIES) break;
          if ((await fh.stat()).size > position) continue;
          await yieldOnce(); // at rest nothing changes meanwhile: files a crash left cost no wait
          if ((await fh.stat()).size > position) continue;
          break;
        }
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
    return null;
  };

  for (const [i, segment] of segments.entries()) {
    const expected = i === 0 ? 0 : segments[i - 1]!.index + 1;
    if (segment.index !== expected) {
      const missing =
        segment.index - expected === 1
          ? segmentName(writer, expected)
          : `${segmentName(writer, expected)} … ${segmentName(writer, segment.index - 1)}`;
      const after =
        i === 0 ? 'the chain has no first segment' : `${segments[i - 1]!.name} ends at seq ${chain.head.seq}`;
      return { file: segmentName(writer, expected), line: 0, reason: `segment missing: ${missing} (${after})` };
    }
    if (i > 0 && (chain.last === null || chain.last.cp.upToSeq !== chain.head.seq - 1 || chain.last.file !== file)) {
      return {
        file,
        line,
        reason: 'sealed segment does not end with its signed checkpoint: truncated or records added after its seal',
      };
    }
    if (segment.paths.length > 1) {
      // Mid-move, or copied by hand: both copies must be the same bytes.
      const hashes = new Set((await Promise.all(segment.paths.map(fileSha256))).filter((h) => h !== null));
      if (hashes.size > 1)
        return { file: segment.name, line: 0, reason: `segment differs between ${segment.paths.join(' and ')}` };
    }
    file = segment.name;
    index = segment.index;
    line = 0;
    chain.file = file;
    chain.segments.push({ name: file, index, firstSeq: chain.head.seq + 1 });
    const error = await scanFile(segment.paths, i === segments.length - 1);
    if (error) return error;
    if (line === 0 && i < segments.length - 1)
      return { file, line: 0, reason: 'segment empty, yet a later one exists: its records were removed' };
  }
  return chain;
}
