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
//
// Segments: a writer's chain may be spread over segment files in the live directory and the
// archive (segments.ts); they are verified as one chain, so a segment removed, truncated,
// reordered or renamed fails it, naming the segment. Beside a live writer: each head file is read
// before its chain's segments are found and again after the scan, and segments that appeared or
// moved meanwhile are followed, so a writer rotating or archiving during the check never fails it.
import type { KeyObject } from 'node:crypto';
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AUDIT_GENESIS, AuditCheckpoint, type AuditVerifyResult } from '../../contract/audit.ts';
import { checkpointSignatureProblem, pinKeys } from './audit-signer.ts';
import { listSegments, type SegmentFile, segmentName } from './segments.ts';
import {
  type Chain,
  firstIssue,
  isOpening,
  locate,
  sameCheckpoint,
  scanChain,
  type VerifyError,
} from './verify-chain.ts';
import { checkHeadFile, readHeadFile, signedInterval } from './verify-head.ts';

export type { VerifyError } from './verify-chain.ts';

export interface VerifyOptions {
  /** Checkpoint keys to trust: KeyObjects or PEM text. */
  publicKeys: ReadonlyArray<KeyObject | string>;
  /** Checkpoints a witness received; each must be in its chain, unchanged. */
  witnessCheckpoints?: readonly AuditCheckpoint[];
  /** Archive directories holding sealed segments (and closed chains) of the same writers. */
  archiveDirs?: readonly string[];
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
        file: segmentName(w.writer, 0),
        line: 0,
        id,
        reason: `chain file missing: the witness holds its checkpoint upToSeq ${w.upToSeq}`,
      };
    if (isOpening(w) && w.head === AUDIT_GENESIS) continue; // the chain exists: that is all an opening checkpoint says
    const seen = chain.checkpoints.get(w.upToSeq);
    if (!seen) {
      const why = chain.head.seq <= w.upToSeq ? 'tail truncated' : 'chain rewritten';
      return {
        ...locate(chain, w.upToSeq + 1),
        id,
        reason: `witness checkpoint not in chain (upToSeq ${w.upToSeq}): ${why}`,
      };
    }
    if (!sameCheckpoint(seen.cp, w))
      return {
        file: seen.file,
        line: seen.line,
        id: seen.id,
        reason: 'witness checkpoint differs from the chain: chain rewritten',
      };
  }
  return null;
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** A writer's segments: those listed, each openable from any directory, plus any made since the listing. */
async function segmentsOf(
  writer: string,
  listed: readonly SegmentFile[],
  dirs: readonly string[],
): Promise<SegmentFile[]> {
  const at = (index: number): SegmentFile => {
    const name = segmentName(writer, index);
    return { writer, index, name, paths: dirs.map((d) => join(d, name)) };
  };
  const out = listed.map((s) => ({ ...at(s.index), paths: s.paths }));
  const all = (s: SegmentFile): SegmentFile => ({
    ...s,
    paths: [...s.paths, ...at(s.index).paths.filter((p) => !s.paths.includes(p))],
  });
  for (let next = (listed.at(-1)?.index ?? -1) + 1; ; next++) {
    const candidate = at(next);
    const found: string[] = [];
    for (const p of candidate.paths) if (await exists(p)) found.push(p);
    if (found.length === 0) break;
    out.push({ ...candidate, paths: found });
  }
  return out.map(all);
}

/** Verifies the live directory together with its archives (default: none). */
export function verifyAuditDir(dir: string, opts: VerifyOptions): Promise<AuditVerifyResult> {
  return verifyAuditDirs([dir, ...(opts.archiveDirs ?? [])], opts);
}

/** Verifies every writer whose files are in any of `dirs` (the live directory first). */
export async function verifyAuditDirs(dirs: readonly string[], opts: VerifyOptions): Promise<AuditVerifyResult> {
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

  const [live, ...archives] = dirs;
  if (live === undefined) throw new TypeError('no audit directory given');
  if (!(await exists(live)) && archives.length === 0)
    return result({ file: live, line: 0, reason: 'audit directory missing' });
  const listed = await listSegments(dirs);
  for (const [writer, segments] of listed) {
    // Read before the segments are followed: the checkpoint it names is durable in one of them.
    const before = await readHeadFile(dirs, writer);
    // The interval is the writer's for its whole life, so any head-file version gives it.
    const interval = signedInterval(before, writer, pinned);
    const scanned = await scanChain(await segmentsOf(writer, segments, dirs), writer, pinned, counter, interval).catch(
      (e: NodeJS.ErrnoException): VerifyError => ({
        file: segmentName(writer, 0),
        line: 0,
        reason: `chain file unreadable: ${e.code ?? e.message}`,
      }),
    );
    if ('reason' in scanned) return result(scanned);
    chains.set(writer, scanned);
    // Read after the scan: a live writer can only have moved on from what the scan saw.
    const headError = checkHeadFile(scanned, before, await readHeadFile(dirs, writer), pinned);
    if (headError) return result(headError);
  }
  // A head file without its chain: the chain is claimed first, so it was deleted (unless the head names nothing).
  const heads = new Set<string>();
  for (const dir of dirs) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names) if (n.endsWith('.head.json')) heads.add(n.slice(0, -'.head.json'.length));
  }
  for (const writer of [...heads].sort()) {
    if (chains.has(writer)) continue;
    if (await segmentsOf(writer, [], dirs).then((s) => s.length > 0)) continue; // a writer that started after the listing
    const read = await readHeadFile(dirs, writer);
    if (read.state !== 'ok' || read.head.checkpoint || read.head.next) {
      return result({
        file: segmentName(writer, 0),
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
