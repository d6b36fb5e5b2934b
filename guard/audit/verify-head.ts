// A chain's head file against the chain. The head file is not signed as a whole, so a forger can
// compose one from the chain's own signed checkpoints; what it still pins: the chain has records
// only if the opening checkpoint (or a later one) is named, the named checkpoint is in the chain,
// the chain has no later one but the one in flight, and only a signed closing checkpoint seals it.
// It lives in the live directory, and in the archive once its closed chain has moved there.
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AUDIT_GENESIS, AuditHeadFile } from '../../contract/audit.ts';
import { checkpointSignatureProblem } from './audit-signer.ts';
import {
  type Chain,
  type CheckpointInterval,
  isOpening,
  locate,
  sameCheckpoint,
  type VerifyError,
} from './verify-chain.ts';

export type HeadRead = { state: 'ok'; head: AuditHeadFile } | { state: 'missing' } | { state: 'invalid'; why: string };

/** The writer's head file from the first of `dirs` that holds one (the live directory first). */
export async function readHeadFile(dirs: string | readonly string[], writer: string): Promise<HeadRead> {
  let text: string | undefined;
  for (const dir of typeof dirs === 'string' ? [dirs] : dirs) {
    try {
      text = await readFile(join(dir, `${writer}.head.json`), 'utf8');
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') return { state: 'invalid', why: `unreadable (${code ?? (e as Error).message})` };
    }
  }
  if (text === undefined) return { state: 'missing' };
  try {
    const parsed = AuditHeadFile.safeParse(JSON.parse(text));
    return parsed.success ? { state: 'ok', head: parsed.data } : { state: 'invalid', why: 'not a v2 head file' };
  } catch {
    return { state: 'invalid', why: 'invalid JSON' };
  }
}

/** The interval the writer signed, from a head-file checkpoint of this writer that verifies; else null. */
export function signedInterval(
  read: HeadRead,
  writer: string,
  pinned: Map<string, KeyObject>,
): CheckpointInterval | null {
  if (read.state !== 'ok') return null;
  for (const cp of [read.head.checkpoint, read.head.next]) {
    if (cp && cp.writer === writer && !checkpointSignatureProblem(cp, pinned)) return cp;
  }
  return null;
}

/**
 * `read` is the head file as read before the chain's segments were followed, `after` as read
 * after the scan (the same file when nothing writes): a checkpoint the scan found beyond `read`
 * is no rollback when `after` shows the writer publishing it or past it.
 */
export function checkHeadFile(
  chain: Chain,
  read: HeadRead,
  after: HeadRead,
  pinned: Map<string, KeyObject>,
): VerifyError | null {
  const file = `${chain.writer}.head.json`;
  const at = (reason: string): VerifyError => ({ file, line: 1, reason });
  if (read.state === 'missing') {
    // The chain file is claimed before the head file is first written (see audit-writer.ts).
    return chain.head.seq === 0
      ? null
      : { file, line: 0, reason: 'head file missing: the chain cannot be checked for truncation' };
  }
  if (read.state === 'invalid') return at(`head file invalid: ${read.why}`);
  const { head } = read;
  if (head.writer !== chain.writer)
    return at(`head file of writer ${head.writer} found as writer ${chain.writer}'s: renamed or swapped`);
  for (const cp of [head.checkpoint, head.next]) {
    if (!cp) continue;
    if (cp.writer !== chain.writer)
      return at(
        `head file holds a checkpoint signed for writer ${cp.writer}, not ${chain.writer}: spliced from another chain`,
      );
    const problem = checkpointSignatureProblem(cp, pinned);
    if (problem) return at(`head file ${problem}`);
  }
  const held = head.checkpoint;
  if (!held) {
    if (chain.head.seq === 0 && !head.next) return null;
    return at(
      'head file names no checkpoint: the writer signs its opening checkpoint before its first record, so only an empty chain may lack one',
    );
  }
  if (head.next && (head.next.upToSeq < held.upToSeq || isOpening(head.next)))
    return at('head file invalid: its next checkpoint is not after its checkpoint');
  if (isOpening(held)) {
    if (held.head !== AUDIT_GENESIS)
      return at('head file invalid: an opening checkpoint over another hash than the genesis');
  } else {
    const seen = chain.checkpoints.get(held.upToSeq);
    if (!seen || !sameCheckpoint(seen.cp, held)) {
      return {
        ...locate(chain, held.upToSeq + 1), // a checkpoint record always sits right after the record it covers
        id: `${chain.writer}:${held.upToSeq + 1}`,
        reason: `tail truncated or chain rewritten: the head file's checkpoint (upToSeq ${held.upToSeq}) is not in the chain`,
      };
    }
  }
  const last = chain.last;
  // Only a head file that changed during the check says so: files at rest give no such leeway.
  const publishedSince =
    last !== null &&
    after.state === 'ok' &&
    after.head.writer === chain.writer &&
    (after.head.checkpoint?.signature !== held.signature || after.head.next?.signature !== head.next?.signature) &&
    [after.head.checkpoint, after.head.next].some(
      (cp) => cp && cp.upToSeq >= last.cp.upToSeq && !checkpointSignatureProblem(cp, pinned),
    );
  if (last && !sameCheckpoint(last.cp, held) && !(head.next && sameCheckpoint(last.cp, head.next)) && !publishedSince) {
    const named = isOpening(held) ? 'only the opening checkpoint' : `upToSeq ${held.upToSeq}`;
    return {
      file: last.file,
      line: last.line,
      id: last.id,
      reason: `checkpoint rolled back: the head file names ${named}, the chain holds upToSeq ${last.cp.upToSeq}`,
    };
  }
  if (!head.next && !held.closed && !isOpening(held)) {
    return at(
      `fake clean close: the head file seals the chain at upToSeq ${held.upToSeq}, which is not the writer's signed closing checkpoint`,
    );
  }
  return null;
}
