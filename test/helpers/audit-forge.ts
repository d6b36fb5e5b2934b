// A forger's toolkit for the audit tests: it reads and rewrites chain and head files, re-hashes
// and re-links records (the chain hash needs no key), and reuses checkpoints it finds. Nothing
// here touches a signing key: whatever it makes that verifies is a hole.
import { copyFile, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_GENESIS, type AuditCheckpoint, type AuditRecord, CHECKPOINT_KIND } from '../../contract/audit.ts';
import { sealRecord } from '../../guard/audit/chain.ts';

export const isCheckpoint = (r: AuditRecord): boolean => r.kind === CHECKPOINT_KIND;
export const checkpointOf = (r: AuditRecord): AuditCheckpoint => r.data as unknown as AuditCheckpoint;

export const readRecords = async (dir: string, writer: string): Promise<AuditRecord[]> =>
  (await readFile(join(dir, `${writer}.jsonl`), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);

/** The records as `writer`'s chain, renumbered from seq 1 and re-hashed: a chain that links. */
export function relink(writer: string, records: readonly AuditRecord[]): string[] {
  let prev = AUDIT_GENESIS;
  return records.map((r, i) => {
    const { hash: _hash, ...rest } = r;
    const sealed = sealRecord({ ...rest, writer, id: `${writer}:${i + 1}`, seq: i + 1, prev });
    prev = sealed.record.hash;
    return sealed.line;
  });
}

export const writeLines = (dir: string, writer: string, lines: readonly string[]): Promise<void> =>
  writeFile(join(dir, `${writer}.jsonl`), lines.map((l) => `${l}\n`).join(''));

/** Re-links `records` and writes them as `writer`'s chain. */
export const writeChain = (dir: string, writer: string, records: readonly AuditRecord[]): Promise<void> =>
  writeLines(dir, writer, relink(writer, records));

/** A head file composed from checkpoints the forger holds. */
export const writeHead = (
  dir: string,
  writer: string,
  checkpoint: AuditCheckpoint | null,
  next: AuditCheckpoint | null = null,
): Promise<void> =>
  writeFile(join(dir, `${writer}.head.json`), `${JSON.stringify({ v: 2, writer, checkpoint, next })}\n`);

export const readHead = async (
  dir: string,
  writer: string,
): Promise<{ checkpoint: AuditCheckpoint | null; next: AuditCheckpoint | null }> =>
  JSON.parse(await readFile(join(dir, `${writer}.head.json`), 'utf8'));

/** Temp directories, removed by cleanup(). */
export function tempDirs(): {
  make(prefix: string): Promise<string>;
  copyOf(dir: string): Promise<string>;
  cleanup(): Promise<void>;
} {
  const made: string[] = [];
  const make = async (prefix: string) => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    made.push(dir);
    return dir;
  };
  return {
    make,
    async copyOf(dir) {
      const copy = await make('audit-forged-');
      await cp(dir, copy, { recursive: true });
      return copy;
    },
    cleanup: async () => {
      await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

/** The chain and head file of `writer` as they are now: a state a crash could leave. */
export async function snapshot(from: string, writer: string, to: string): Promise<void> {
  for (const f of [`${writer}.jsonl`, `${writer}.head.json`]) await copyFile(join(from, f), join(to, f));
}
