// Audit log: durable appends per second from many concurrent callers (group commit: one write +
// durable write per batch), append latency, and offline verification speed over the chain written.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditInput } from '../contract/audit.ts';
import { generateAuditSigner } from '../guard/audit/audit-signer.ts';
import { verifyAuditDir } from '../guard/audit/audit-verify.ts';
import { createAuditWriter } from '../guard/audit/audit-writer.ts';
import { fmt, percentile } from './lib.ts';

const RECORDS = Number(process.env.BENCH_AUDIT_RECORDS ?? 100_000);
const CALLERS = Number(process.env.BENCH_AUDIT_CALLERS ?? 512);

/** About the size of a real 'execution.requested' record (~600 bytes on disk). */
const input = (i: number): AuditInput => ({
  kind: 'execution.requested',
  agentId: 'ag_bench000001',
  taskId: 'task_bench',
  subject: `ex_bench${String(i).padStart(10, '0')}`,
  data: {
    profile: 'js',
    language: 'javascript',
    codeBytes: 1234,
    codeSha256: createHash('sha256').update(String(i)).digest('hex'),
    timeoutMs: 5000,
    memoryMb: 128,
    reasoning: 'compute the figure the user asked for',
  },
});

export async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sgbench-audit-'));
  const signer = generateAuditSigner();
  try {
    const writer = await createAuditWriter({ dir, signer });
    for (let i = 0; i < 2000; i++) await writer.append(input(i)); // warm-up, one record per sync
    const before = writer.stats();

    const ms: number[] = [];
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (next < RECORDS) {
          const i = next++;
          const t = performance.now();
          await writer.append(input(i));
          ms.push(performance.now() - t);
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const after = writer.stats();
    await writer.close();
    ms.sort((a, b) => a - b);
    const syncs = after.syncs - before.syncs;
    console.log(
      `audit benchmark: ${RECORDS} durable appends from ${CALLERS} concurrent callers, checkpoint every 1000 records / 1 s`,
    );
    console.log(
      `append: ${fmt(RECORDS / seconds, 0)} records/s (target >= 20000), latency p50 ${fmt(percentile(ms, 50))} ms, p99 ${fmt(percentile(ms, 99))} ms`,
    );
    console.log(
      `group commit: ${syncs} durable writes (O_DSYNC) for ${RECORDS} records (${fmt(RECORDS / syncs, 1)} per write), ${after.checkpoints} checkpoints`,
    );

    let best = Number.POSITIVE_INFINITY;
    let records = 0;
    for (let run = 0; run < 3; run++) {
      const t = performance.now();
      const result = await verifyAuditDir(dir, { publicKeys: [signer.publicKey] });
      best = Math.min(best, performance.now() - t);
      if (!result.ok) throw new Error(`verify failed: ${JSON.stringify(result.error)}`);
      records = result.records;
    }
    console.log(
      `verify: ${records} records in ${fmt(best, 0)} ms = ${fmt(records / (best / 1000), 0)} records/s (target >= 100000; best of 3)`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
