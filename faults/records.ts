// What the runs left behind, read straight from the scenario's Redis and audit files: final
// statuses, how often each started, how many records of a kind each has.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { FINAL_STATUSES } from '../contract/execution.ts';
import { redisKeys } from '../state/keys.ts';

/** Execution records as the runners left them: status, starts and the error code. */
export async function readRecords(
  redisUrl: string,
  prefix: string,
  ids: readonly string[],
): Promise<Map<string, { status: string; starts: number; error?: string; outcome?: Record<string, unknown> }>> {
  const redis = new Redis(redisUrl);
  const keys = redisKeys(prefix);
  try {
    const out = new Map<
      string,
      { status: string; starts: number; error?: string; outcome?: Record<string, unknown> }
    >();
    for (let i = 0; i < ids.length; i += 500) {
      const batch = ids.slice(i, i + 500);
      const pipe = redis.pipeline();
      for (const id of batch) pipe.hmget(keys.execution.record(id), 'status', 'starts', 'outcome');
      const rows = (await pipe.exec()) ?? [];
      batch.forEach((id, j) => {
        const [status, starts, outcome] = (rows[j]?.[1] ?? []) as (string | null)[];
        if (!status) return;
        const parsed = outcome ? (JSON.parse(outcome) as Record<string, unknown>) : undefined;
        out.set(id, {
          status,
          starts: Number(starts ?? 0),
          error: (parsed?.error as { code?: string } | undefined)?.code,
          outcome: parsed,
        });
      });
    }
    return out;
  } finally {
    redis.disconnect();
  }
}

const FINAL = new Set<string>(FINAL_STATUSES);

/** Waits until every id's record is final (or `ms` passed); returns the records. */
export async function waitFinal(
  redisUrl: string,
  prefix: string,
  ids: readonly string[],
  ms: number,
): Promise<Awaited<ReturnType<typeof readRecords>>> {
  const until = Date.now() + ms;
  for (;;) {
    const records = await readRecords(redisUrl, prefix, ids);
    const open = ids.filter((id) => !FINAL.has(records.get(id)?.status ?? ''));
    if (open.length === 0 || Date.now() > until) return records;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Lost: acknowledged but not final; duplicated: started more than once. */
export function tally(
  ids: readonly string[],
  records: Awaited<ReturnType<typeof readRecords>>,
): { finished: number; lost: number; duplicated: number } {
  let finished = 0;
  let lost = 0;
  let duplicated = 0;
  for (const id of ids) {
    const r = records.get(id);
    if (r && FINAL.has(r.status)) finished++;
    else lost++;
    if ((r?.starts ?? 0) > 1) duplicated++;
  }
  return { finished, lost, duplicated };
}

/**
 * How many audit records of `kind` each subject has, over every chain in the data dir, or only
 * the chains of the process `pid` (chains are named `<host>-<pid>-<random>.jsonl`).
 */
export async function auditCounts(dataDir: string, kind: string, pid?: number): Promise<Map<string, number>> {
  const dir = join(dataDir, 'audit');
  const counts = new Map<string, number>();
  const mine = (n: string) => n.endsWith('.jsonl') && (pid === undefined || n.includes(`-${pid}-`));
  for (const f of (await readdir(dir)).filter(mine)) {
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n')) {
      if (!line.includes(`"kind":"${kind}"`)) continue;
      try {
        const r = JSON.parse(line) as { kind: string; subject: string };
        if (r.kind === kind) counts.set(r.subject, (counts.get(r.subject) ?? 0) + 1);
      } catch {
        // a torn last line of a killed process: verify reports those
      }
    }
  }
  return counts;
}
