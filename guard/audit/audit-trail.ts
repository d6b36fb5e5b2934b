// The audit trail of one process, assembled: its own hash chain under $DATA_DIR/audit (durable
// before anything it records happens; sealed segments moving on to the archive), the checkpoint
// key kept apart, and the Redis index that makes every process's records readable from any API
// process.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditVerifyResult } from '../../contract/audit.ts';
import { type AuditIndex, createAuditIndex } from '../../state/audit-index.ts';
import type { RedisClient } from '../../state/redis-client.ts';
import { loadAuditSigner } from './audit-signer.ts';
import { verifyAuditDirs } from './audit-verify.ts';
import { createAuditWriter } from './audit-writer.ts';
import { type Auditor, createAuditor } from './auditor.ts';
import { createIndexCopier } from './index-copier.ts';

export interface AuditTrailOptions {
  dataDir: string;
  /** The checkpoint signing key; default $dataDir/keys/audit-signing.json. */
  keyFile?: string | undefined;
  witnessUrl?: string | undefined;
  witnessTimeoutMs?: number;
  /** Segments, retention and the archive (see audit-writer.ts); absent: one file, never rotated. */
  segments?: {
    maxBytes: number;
    maxAgeMs: number;
    archiveDir?: string | undefined;
    liveSegments: number;
    liveMaxAgeMs: number;
  };
  redis: RedisClient;
  prefix: string;
  ttlSeconds: number;
  /** Batches are written on the event loop while writes take at most this many ms on average (see batch-write.ts). */
  onLoopWriteMaxMs?: number;
  /** Writes left the event loop (for a minute) after one that took `ms`. */
  onSlowWrite?(ms: number): void;
  /** Failures that must not stop the service (index copy, witness), for the log. */
  onError(source: 'audit-index' | 'audit-witness' | 'audit-archive', error: Error): void;
}

export interface AuditTrail {
  audit: Auditor;
  index: AuditIndex;
  /** The directories its chains are in: the live one, then the archive (if any). */
  dirs: readonly string[];
  /** Verifies those directories together against the pinned public key. */
  verify(): Promise<AuditVerifyResult>;
  close(): Promise<void>;
}

export async function openAuditTrail(opts: AuditTrailOptions): Promise<AuditTrail> {
  const dir = join(opts.dataDir, 'audit');
  const { segments } = opts;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const signer = await loadAuditSigner(opts.keyFile ? { keyFile: opts.keyFile } : { dataDir: opts.dataDir });
  const index = createAuditIndex(opts.redis, opts.prefix, opts.ttlSeconds);
  const copier = createIndexCopier(index, (e) => opts.onError('audit-index', e));
  const writer = await createAuditWriter({
    dir,
    signer,
    ...(opts.witnessUrl && { witnessUrl: opts.witnessUrl }),
    ...(opts.witnessTimeoutMs && { witnessTimeoutMs: opts.witnessTimeoutMs }),
    onDurable: (records) => copier.add(records),
    onWitnessError: (e) => opts.onError('audit-witness', e as Error),
    ...(opts.onLoopWriteMaxMs !== undefined && { onLoopWriteMaxMs: opts.onLoopWriteMaxMs }),
    ...(opts.onSlowWrite && { onSlowWrite: opts.onSlowWrite }),
    ...(segments && {
      segmentMaxBytes: segments.maxBytes,
      segmentMaxAgeMs: segments.maxAgeMs,
      liveSegments: segments.liveSegments,
      liveMaxAgeMs: segments.liveMaxAgeMs,
      ...(segments.archiveDir && { archiveDir: segments.archiveDir }),
      onArchiveError: (e: unknown) => opts.onError('audit-archive', e as Error),
    }),
  });
  const dirs = [dir, ...(segments?.archiveDir ? [segments.archiveDir] : [])];
  return {
    audit: createAuditor(writer),
    // Reads first copy what this process has made durable and not yet copied (the copy waits a
    // few ms to batch): a caller reads what its own requests just recorded.
    index: {
      add: (records) => index.add(records),
      query: async (q) => {
        await copier.now();
        return index.query(q);
      },
      get: async (id) => {
        await copier.now();
        return index.get(id);
      },
    },
    dirs,
    verify: () => verifyAuditDirs(dirs, { publicKeys: [signer.publicKeyPem] }),
    async close() {
      await writer.close();
      await copier.close(1000);
    },
  };
}
