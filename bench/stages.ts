// The stage table: sandgate_stage_seconds read from the service's /metrics before and after a
// phase, so each row is that phase's runs only. Mean from sum/count; p50 and p90 interpolated
// inside the histogram's buckets (as Prometheus' histogram_quantile does).
import { STAGES } from '../guard/lifecycle/stages.ts';
import { fmt } from './lib.ts';

type Snapshot = Map<string, { buckets: Array<[number, number]>; sum: number; count: number }>;

/** The stage histograms of every process of the service (API and runner side add up). */
export async function stageSnapshot(bases: readonly string[]): Promise<Snapshot> {
  const texts = await Promise.all(
    bases.map(async (base) => (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) })).text()),
  );
  const text = texts.join('\n');
  const out: Snapshot = new Map();
  const entry = (stage: string) => {
    const e = out.get(stage) ?? { buckets: [], sum: 0, count: 0 };
    out.set(stage, e);
    return e;
  };
  for (const line of text.split('\n')) {
    const m = /^sandgate_stage_seconds_(bucket|sum|count)\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const stage = /stage="([^"]+)"/.exec(m[2]!)?.[1];
    if (!stage) continue;
    const value = Number(m[3]);
    // Processes add up: each exports every stage (most at 0 on the side that does not run it).
    if (m[1] === 'sum') entry(stage).sum += value;
    else if (m[1] === 'count') entry(stage).count += value;
    else {
      const raw = /le="([^"]+)"/.exec(m[2]!)?.[1];
      const le = raw === '+Inf' ? Number.POSITIVE_INFINITY : Number(raw);
      const buckets = entry(stage).buckets;
      const same = buckets.find(([l]) => l === le);
      if (same) same[1] += value;
      else buckets.push([le, value]);
    }
  }
  return out;
}

function quantile(buckets: Array<[number, number]>, q: number): number {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** Prints one row per stage seen between the two snapshots: runs, mean, p50, p90 (ms). */
export function printStageTable(before: Snapshot, after: Snapshot, title: string): void {
  console.log(`\n${title}\n\n| stage | count | mean ms | p50 ms | p90 ms |\n|---|---:|---:|---:|---:|`);
  let total = 0;
  for (const stage of STAGES) {
    const a = after.get(stage);
    if (!a) continue;
    const b = before.get(stage);
    const count = a.count - (b?.count ?? 0);
    if (count <= 0) continue;
    const buckets = a.buckets.map(([le, c], i) => [le, c - (b?.buckets[i]?.[1] ?? 0)] as [number, number]);
    const mean = ((a.sum - (b?.sum ?? 0)) / count) * 1000;
    if (stage !== 'wait') total += mean;
    console.log(
      `| ${stage} | ${count} | ${fmt(mean, 3)} | ${fmt(quantile(buckets, 0.5) * 1000, 3)} | ${fmt(quantile(buckets, 0.9) * 1000, 3)} |`,
    );
  }
  console.log(`\nsum of the means, without 'wait' (which holds the runner's stages): ${fmt(total, 3)} ms`);
  console.log(
    "(some stages overlap: checks with budget; audit with record; a run taken here is in 'sandbox' and 'code' while its 'record' goes on, and its request's audit record is written with its end, in 'result', so it has no 'audit')",
  );
}
