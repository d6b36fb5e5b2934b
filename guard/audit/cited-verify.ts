// Whether the records a page or an evidence pack cites are what the audit files say, told per
// record and honestly. The index in Redis is a copy; the files are the evidence. A record is
// `verified` only when (1) the directory's verify passed over its chain through its sequence
// number (hashes, links, signed checkpoints: audit-verify.ts), (2) its chain file holds a record
// with its id and hash, and (3) the copy shown hashes to that same hash (so no field of the copy
// was changed). A chain this process cannot read (written by another process or machine) is
// `unchecked`, never assumed good; so is a record written after the check began.
import type { AuditRecord, AuditVerifyResult } from '../../contract/audit.ts';
import type { RecordCheck, Verification } from '../../contract/console.ts';
import { canonicalJson, sha256Hex } from './canonical.ts';
import { chainFiles, readRecords } from './trace-files.ts';

export interface CitedVerifyDeps {
  /** The audit directories this process can read (its own chain among them). */
  dirs: readonly string[];
  /** Verifies those directories (GET /v1/audit/verify). */
  verify(): Promise<AuditVerifyResult>;
}

/** The hash a record's own fields give (the writer's rule: canonical JSON without `hash`). */
export function ownHash(r: AuditRecord): string {
  const { hash: _hash, ...rest } = r;
  return sha256Hex(canonicalJson(rest));
}

/** Did the directory verify fail in this writer's chain (its file, a segment of it, or its head file)? */
const failedIn = (result: AuditVerifyResult, writer: string): boolean => {
  if (result.ok || !result.error) return false;
  const file = result.error.file.split('/').pop() ?? '';
  return (
    file === `${writer}.jsonl` ||
    file.startsWith(`${writer}~`) ||
    file === `${writer}.head.json` ||
    result.error.id?.startsWith(`${writer}:`) === true
  );
};

export async function verifyCited(records: readonly AuditRecord[], deps: CitedVerifyDeps): Promise<Verification> {
  const checkedAt = new Date().toISOString();
  // Verify first: every record read from the files afterwards is at least as new as the check.
  const result = await deps.verify();
  const writers = new Set(records.map((r) => r.writer));
  const wanted = new Set(records.map((r) => r.id));
  const files = await chainFiles(deps.dirs, writers);
  const present = new Set(files.map((f) => /([^/]+?)(?:~\d+)?\.jsonl$/.exec(f)?.[1]));
  const inFiles = new Map(
    (await readRecords(files, (r) => wanted.has(r.id))).records.map((r) => [r.id, r.hash] as const),
  );
  const error = result.error
    ? `${result.error.file}:${result.error.line}${result.error.id ? ` (${result.error.id})` : ''}: ${result.error.reason}`
    : null;

  const check = (r: AuditRecord): RecordCheck => {
    if (ownHash(r) !== r.hash)
      return { status: 'failed', reason: 'this copy does not match its own hash: it was altered' };
    if (!present.has(r.writer))
      return {
        status: 'unchecked',
        reason: `chain ${r.writer} is not in this process's audit directory (another process wrote it): verify it there`,
      };
    if (failedIn(result, r.writer)) return { status: 'failed', reason: `its chain does not verify: ${error}` };
    const head = result.head[r.writer];
    if (!head || r.seq > head.seq) {
      return result.ok || head
        ? { status: 'unchecked', reason: 'written after the check began: check again' }
        : { status: 'unchecked', reason: `the check stopped before its chain: ${error}` };
    }
    const fileHash = inFiles.get(r.id);
    if (fileHash === undefined) return { status: 'failed', reason: 'its chain file has no record with this id' };
    if (fileHash !== r.hash) return { status: 'failed', reason: 'this copy differs from the record in the audit file' };
    return { status: 'verified', reason: null };
  };

  const out: Record<string, RecordCheck> = {};
  const counts = { verified: 0, failed: 0, unchecked: 0 };
  for (const r of records) {
    const c = check(r);
    out[r.id] = c;
    counts[c.status]++;
  }
  return {
    checkedAt,
    directories: [...deps.dirs],
    directory: { ok: result.ok, records: result.records, chains: result.chains, error },
    counts,
    records: out,
  };
}
