// Offline verification of an audit directory: every chain, its head file, and optionally the
// checkpoints a witness received. Stops at the first record that does not verify and names it.
//
// The forger in mind holds every file of the directory and the public key, not the signing key.
// Caught: any edited, inserted, removed or reordered line (hash, prev, seq); a torn last line; a
// chain re-hashed and re-signed with any key but a pinned one; a checkpoint moved, duplicated,
// altered, or spliced in from another writer's chain; checkpoints stripped (re-linked or not), or
// records added after the last one, beyond the signed interval (verify-chain.ts); a head file
// removed, naming no checkpoint, another writer's, a checkpoint not in the chain, an older one
// than the chain's last, or faking a clean close (verify-head.ts); with witness checkpoints, a
// chain deleted, or rolled back or rewritten together with its head file.
// What it cannot catch alone: the records after the last signed checkpoint the forger keeps, at
// most one interval of them (by count, and by their own timestamps, which the forger also
// writes), cut or rewritten with a head file composed to match, so the chain reads as a writer
// killed before its next checkpoint; a whole chain rolled back that way to an earlier
// checkpoint; a chain deleted together with its head file. The witness catches those. Nor does
// anything help once the signing key itself leaked.
import type { KeyObject } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { AUDIT_GENESIS, AuditCheckpoint, type AuditVerifyResult } from '../../contract/audit.ts';
import { checkpointSignatureProblem, pinKeys } from './audit-signer.ts';
import { type Chain, firstIssue, isOpening, sameCheckpoint, scanChain, type VerifyError } from './verify-chain.ts';
import { checkHeadFile, readHeadFile, signedInterval } from './verify-head.ts';

export type { VerifyError } from './verify-chain.ts';

export interface VerifyOptions {
  /** Checkpoint keys to trust: KeyObjects or PEM text. */
  publicKeys: ReadonlyArray<KeyObject | string>;
  /** Checkpoints a witness received; each must be in its chain, unchanged. */
  witnessCheckpoints?: readonly AuditCheckpoint[];
}

function checkWitness(
  chains: Map<string, Chain>,
  witness: readonly AuditCheckpoint[],
  pinned: Map<string, KeyObject>,
): VerifyError | null {
  for (const [i, raw] of witness.entries()) {
    const parsed = AuditCheckpoint.safeParse(raw);
    if (!parsed.success)
      return { file: 'witness', line: i + 1, reason: `witness checkpoint invalid: ${firstIssue(parsed.error)}` };
    const w = parsed.data;
    const problem = checkpointSignatureProblem(w, pinned);
    if (problem) return { file: 'witness', line: i + 1, reason: `witness ${problem}` };
    const chain = chains.get(w.writer);
    const id = `${w.writer}:${w.upToSeq + 1}`;
    if (!chain)
      return {
        file: `${w.writer}.jsonl`,
        line: 0,
        id,
        reason: `chain file missing: the witness holds its checkpoint upToSeq ${w.upToSeq}`,
      };
    if (isOpening(w) && w.head === AUDIT_GENESIS) continue; // the chain exists: that is all an opening checkpoint says
    const seen = chain.checkpoints.get(w.upToSeq);
    if (!seen) {
      const why = chain.head.seq <= w.upToSeq ? 'tail truncated' : 'chain rewritten';
      return {
        file: chain.file,
        line: w.upToSeq + 1,
        id,
        reason: `witness checkpoint not in chain (upToSeq ${w.upToSeq}): ${why}`,
      };
    }
    if (!sameCheckpoint(seen.cp, w))
      return {
        file: chain.file,
        line: seen.line,
        id: seen.id,
        reason: 'witness checkpoint differs from the chain: chain rewritten',
      };
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
    head: Object.fromEntries(
      [...chains.values()].map((c) => [c.writer, { ...c.head, closed: c.last?.cp.closed ?? false }]),
    ),
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
    // The interval is the writer's for its whole life, so any head-file version gives it; the head
    // file is checked against a read made after the scan, which a live writer can only have moved on.
    const interval = signedInterval(await readHeadFile(dir, writer), writer, pinned);
    const scanned = await scanChain(dir, writer, pinned, counter, interval).catch(
      (e: NodeJS.ErrnoException): VerifyError => ({
        file: `${writer}.jsonl`,
        line: 0,
        reason: `chain file unreadable: ${e.code ?? e.message}`,
      }),
    );
    if ('reason' in scanned) return result(scanned);
    chains.set(writer, scanned);
    const headError = checkHeadFile(scanned, await readHeadFile(dir, writer), pinned);
    if (headError) return result(headError);
  }
  // A head file without its chain: the chain is claimed first, so it was deleted (unless the head names nothing).
  for (const name of names.filter((n) => n.endsWith('.head.json'))) {
    const writer = name.slice(0, -'.head.json'.length);
    if (chains.has(writer)) continue;
    const read = await readHeadFile(dir, writer);
    if (read.state !== 'ok' || read.head.checkpoint || read.head.next) {
      return result({
        file: `${writer}.jsonl`,
        line: 0,
        reason: 'chain file missing: its head file names a checkpoint',
      });
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
