// Offline verification of an audit directory: every chain, its head file, and optionally the
// checkpoints a witness received. Stops at the first record that does not verify and names it.
//
// What it catches: any edited, inserted, removed or reordered line (hash, prev, seq); a torn
// last line; a chain re-hashed and re-signed with any key but a pinned one; a tail cut back
// past the head file's checkpoint; a head file rolled back to an older checkpoint or removed;
// with witness checkpoints, a chain and its head file rolled back or rewritten together, or a
// chain deleted outright.
// What it cannot catch alone: whole lines cut from a tail that no checkpoint covers yet (at most
// one checkpoint interval, plus the one checkpoint in flight while a writer runs), a chain
// deleted together with its head file, or a consistent rollback of chain + head file; those
// need witness checkpoints held elsewhere. Nor does it help if the signing key itself leaked.
import type { KeyObject } from 'node:crypto';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AuditCheckpoint,
  AuditHeadFile,
  AuditRecord,
  type AuditVerifyResult,
  CHECKPOINT_KIND,
  CheckpointData,
} from '../../contract/audit.ts';
import { checkpointSignatureProblem, pinKeys } from './audit-signer.ts';
import { sha256Hex } from './canonical.ts';
import { hashMember, startChain } from './chain.ts';

export interface VerifyOptions {
  /** Checkpoint keys to trust: KeyObjects or PEM text. */
  publicKeys: ReadonlyArray<KeyObject | string>;
  /** Checkpoints a witness received; each must be in its chain, unchanged. */
  witnessCheckpoints?: readonly AuditCheckpoint[];
}

export type VerifyError = NonNullable<AuditVerifyResult['error']>;

interface SeenCheckpoint {
  upToSeq: number;
  head: string;
  signature: string;
  line: number;
  id: string;
}

interface Chain {
  writer: string;
  file: string;
  head: { seq: number; hash: string };
  checkpoints: Map<number, SeenCheckpoint>;
  last: SeenCheckpoint | null;
}

const CHUNK = 4 << 20;
const HASH_MEMBER_BYTES = hashMember('0'.repeat(64)).length;

const firstIssue = (error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }): string => {
  const issue = error.issues[0];
  return issue ? `${issue.path.map(String).join('.') || '(record)'}: ${issue.message}` : 'invalid';
};

const sameCheckpoint = (a: { upToSeq: number; head: string; signature: string }, b: { upToSeq: number; head: string; signature: string }) =>
  a.upToSeq === b.upToSeq && a.head === b.head && a.signature === b.signature;

/** Streams one chain file; returns the chain's state, or the first bad line. */
async function scanChain(dir: string, writer: string, pinned: Map<string, KeyObject>, counter: { records: number }): Promise<Chain | VerifyError> {
  const file = `${writer}.jsonl`;
  const chain: Chain = { writer, file, head: { seq: 0, hash: startChain(writer).hash }, checkpoints: new Map(), last: null };
  let line = 0;
  const bad = (reason: string, id?: string): VerifyError => ({ file, line, ...(id ? { id } : {}), reason });

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
    if (r.writer !== writer) return bad(`record of writer ${r.writer} in the chain of ${writer}`, r.id);
    if (r.seq !== chain.head.seq + 1) return bad(`seq out of order: expected ${chain.head.seq + 1}, found ${r.seq}`, r.id);
    if (r.prev !== chain.head.hash) return bad('prev mismatch: the previous record was changed, removed or moved', r.id);
    const at = data.lastIndexOf(hashMember(r.hash), end - HASH_MEMBER_BYTES);
    if (at < start) return bad('hash mismatch: no hash member', r.id);
    const hash = sha256Hex(Buffer.concat([data.subarray(start, at), data.subarray(at + HASH_MEMBER_BYTES, end)]));
    if (hash !== r.hash) return bad('hash mismatch: the record was changed', r.id);
    if (r.kind === CHECKPOINT_KIND) {
      const cp = CheckpointData.safeParse(r.data);
      if (!cp.success) return bad(`schema: checkpoint ${firstIssue(cp.error)}`, r.id);
      if (cp.data.upToSeq !== r.seq - 1 || cp.data.head !== r.prev) return bad('checkpoint head mismatch', r.id);
      const problem = checkpointSignatureProblem({ writer, ...cp.data }, pinned);
      if (problem) return bad(problem, r.id);
      const seen = { upToSeq: cp.data.upToSeq, head: cp.data.head, signature: cp.data.signature, line, id: r.id };
      chain.checkpoints.set(seen.upToSeq, seen);
      chain.last = seen;
    }
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

/** The head file must name a checkpoint the chain holds, and no newer one but the one in flight. */
async function checkHeadFile(dir: string, chain: Chain, pinned: Map<string, KeyObject>): Promise<VerifyError | null> {
  const file = `${chain.writer}.head.json`;
  let text: string;
  try {
    text = await readFile(join(dir, file), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    // A writer publishes its head file before its first record (see audit-writer.ts).
    return chain.head.seq === 0 ? null : { file, line: 0, reason: 'head file missing: the chain cannot be checked for truncation' };
  }
  let head: AuditHeadFile;
  try {
    head = AuditHeadFile.parse(JSON.parse(text));
  } catch {
    return { file, line: 1, reason: 'head file invalid' };
  }
  for (const cp of [head.checkpoint, head.next]) {
    if (!cp) continue;
    if (head.writer !== chain.writer || cp.writer !== chain.writer) return { file, line: 1, reason: 'head file invalid: names another writer' };
    const problem = checkpointSignatureProblem(cp, pinned);
    if (problem) return { file, line: 1, reason: `head file ${problem}` };
  }
  const held = head.checkpoint;
  if (held) {
    const seen = chain.checkpoints.get(held.upToSeq);
    if (!seen || !sameCheckpoint(seen, held)) {
      return {
        file: chain.file,
        line: held.upToSeq + 1, // a checkpoint record always sits right after the record it covers
        id: `${chain.writer}:${held.upToSeq + 1}`,
        reason: `tail truncated or chain rewritten: the head file's checkpoint (upToSeq ${held.upToSeq}) is not in the chain`,
      };
    }
  }
  const last = chain.last;
  if (last && !(held && sameCheckpoint(last, held)) && !(head.next && sameCheckpoint(last, head.next))) {
    return {
      file: chain.file,
      line: last.line,
      id: last.id,
      reason: `checkpoint rolled back: the head file names ${held ? `upToSeq ${held.upToSeq}` : 'no checkpoint'}, the chain holds upToSeq ${last.upToSeq}`,
    };
  }
  return null;
}

function checkWitness(chains: Map<string, Chain>, witness: readonly AuditCheckpoint[], pinned: Map<string, KeyObject>): VerifyError | null {
  for (const [i, raw] of witness.entries()) {
    const parsed = AuditCheckpoint.safeParse(raw);
    if (!parsed.success) return { file: 'witness', line: i + 1, reason: `witness checkpoint invalid: ${firstIssue(parsed.error)}` };
    const w = parsed.data;
    const problem = checkpointSignatureProblem(w, pinned);
    if (problem) return { file: 'witness', line: i + 1, reason: `witness ${problem}` };
    const chain = chains.get(w.writer);
    const id = `${w.writer}:${w.upToSeq + 1}`;
    if (!chain) return { file: `${w.writer}.jsonl`, line: 0, id, reason: `chain file missing: the witness holds its checkpoint upToSeq ${w.upToSeq}` };
    const seen = chain.checkpoints.get(w.upToSeq);
    if (!seen) {
      const why = chain.head.seq <= w.upToSeq ? 'tail truncated' : 'chain rewritten';
      return { file: chain.file, line: w.upToSeq + 1, id, reason: `witness checkpoint not in chain (upToSeq ${w.upToSeq}): ${why}` };
    }
    if (!sameCheckpoint(seen, w)) return { file: chain.file, line: seen.line, id: seen.id, reason: 'witness checkpoint differs from the chain: chain rewritten' };
  }
  return null;
}

export async function verifyAuditDir(dir: string, opts: VerifyOptions): Promise<AuditVerifyResult> {
  const pinned = pinKeys(opts.publicKeys);
  const counter = { records: 0 };
  const chains = new Map<string, Chain>();
  const result = (error?: VerifyError): AuditVerifyResult => ({
    ok: !error,
    records: counter.records,
    chains: chains.size,
    head: Object.fromEntries([...chains.values()].map((c) => [c.writer, c.head])),
    ...(error ? { error } : {}),
  });

  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return result({ file: dir, line: 0, reason: 'audit directory missing' });
  }
  const writers = names.filter((n) => n.endsWith('.jsonl')).map((n) => n.slice(0, -'.jsonl'.length));
  for (const writer of writers) {
    const scanned = await scanChain(dir, writer, pinned, counter).catch(
      (e: NodeJS.ErrnoException): VerifyError => ({ file: `${writer}.jsonl`, line: 0, reason: `chain file unreadable: ${e.code ?? e.message}` }),
    );
    if ('reason' in scanned) return result(scanned);
    chains.set(writer, scanned);
    const headError = await checkHeadFile(dir, scanned, pinned);
    if (headError) return result(headError);
  }
  // A head file without its chain: fine only if it never named a checkpoint (claimed, then crashed).
  for (const name of names.filter((n) => n.endsWith('.head.json'))) {
    const writer = name.slice(0, -'.head.json'.length);
    if (chains.has(writer)) continue;
    let head: AuditHeadFile | null = null;
    try {
      head = AuditHeadFile.parse(JSON.parse(await readFile(join(dir, name), 'utf8')));
    } catch {
      // unreadable: treated as naming a checkpoint
    }
    if (!head || head.checkpoint || head.next) {
      return result({ file: `${writer}.jsonl`, line: 0, reason: 'chain file missing: its head file names a checkpoint' });
    }
  }
  return result(checkWitness(chains, opts.witnessCheckpoints ?? [], pinned) ?? undefined);
}

/** A witness's log: one checkpoint JSON per line. */
export async function readCheckpointsFile(path: string): Promise<AuditCheckpoint[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      const parsed = AuditCheckpoint.safeParse(JSON.parse(l));
      if (!parsed.success) throw new Error(`${path}:${i + 1}: not a checkpoint: ${firstIssue(parsed.error)}`);
      return parsed.data;
    });
}
