// The js profile through the whole service (HTTP → auth → Redis → BullMQ → isolate → Redis →
// HTTP), side by side with a raw isolated-vm loop measured in the same run. The raw loop is the
// floor: a fresh isolate, a context, one eval, dispose. (bench/ may import isolated-vm for that.)
// The two are measured one after the other, never at once, so they do not share the 2 cores.
import ivm from 'isolated-vm';
import { REDIS_URL } from '../test/helpers/sandgate.ts';
import { cpuSeconds, fmt, latencies, percentile, postAndWait, redisPid, startService, sustained } from './lib.ts';
import { printStageTable, stageSnapshot } from './stages.ts';

const LATENCY_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 500);
// Enough for V8 to have optimised the path (a service runs for hours): after 50 runs much of it
// still ran unoptimised, and the figures were the warm-up's, not the path's.
const WARMUP_RUNS = Number(process.env.BENCH_WARMUP_RUNS ?? 1000);
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const CODE = '1 + 1';

interface Figures {
  lat: number[];
  perSecond: number;
  failed: number;
}

/** CPU ms per run of the service (its processes) and of Redis over `runs` runs done by `phase`. */
async function cpuPerRun(pids: number[], phase: () => Promise<number>): Promise<{ service: number; redis: number }> {
  const redis = await redisPid(process.env.REDIS_URL ?? REDIS_URL);
  const sum = async (ps: number[]) => (await Promise.all(ps.map(cpuSeconds))).reduce((a, b) => a + b, 0);
  const [svcBefore, redisBefore] = [await sum(pids), await cpuSeconds(redis)];
  const runs = await phase();
  const [svcAfter, redisAfter] = [await sum(pids), await cpuSeconds(redis)];
  return { service: ((svcAfter - svcBefore) * 1000) / runs, redis: ((redisAfter - redisBefore) * 1000) / runs };
}

async function rawOnce(): Promise<void> {
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  try {
    const context = await isolate.createContext();
    await context.eval(CODE, { timeout: 5000 });
  } finally {
    isolate.dispose();
  }
}

async function measureRaw(): Promise<Figures & { sequential: number }> {
  for (let i = 0; i < 50; i++) await rawOnce();
  const lat = await latencies(LATENCY_RUNS, rawOnce);
  const rawOk = async () => {
    await rawOnce();
    return true;
  };
  const seq = await sustained(THROUGHPUT_MS, 1, rawOk);
  const par = await sustained(THROUGHPUT_MS, CONCURRENCY, rawOk);
  return { lat, perSecond: par.perSecond, failed: par.failed, sequential: seq.perSecond };
}

async function measureService(): Promise<Figures & { plain: number[] }> {
  // The js profile only: no Docker pools filling up while the js path is measured.
  const svc = await startService({ SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js' }, 'warn');
  try {
    const auth = await svc.agentAuth(['js']);
    // Each run's code and result differ: an agent does not send one call 500 times, nor get the
    // same result back 500 times, and if it did, the loop detector would (rightly) alert on it on
    // every run, and that is not what is measured here.
    let n = 0;
    const post = () => postAndWait(svc, auth, JSON.stringify({ profile: 'js', code: `${++n} + 1` }));
    for (let i = 0; i < WARMUP_RUNS; i++) await post();
    const before = await stageSnapshot(svc.metricsBases);
    const pids = [svc.child.proc.pid!, ...(svc.runner ? [svc.runner.proc.pid!] : [])];
    let lat: number[] = [];
    const seqCpu = await cpuPerRun(pids, async () => {
      lat = await latencies(LATENCY_RUNS, async () => {
        if (!(await post())) throw new Error('a run did not succeed');
      });
      return LATENCY_RUNS;
    });
    printStageTable(
      before,
      await stageSnapshot(svc.metricsBases),
      `where the time goes, ${LATENCY_RUNS} sequential runs:`,
    );
    // The same runs from a plain client (Node's fetch, one connection kept alive): if the two
    // disagree, the benchmark's client is measuring itself. Warmed up like the pool client (its
    // code in this process is as cold as the service's was), and a deadline timer cleared with
    // each answer (AbortSignal.timeout's would outlive it by ten seconds, in this process's heap).
    const plainOnce = async () => {
      const abort = new AbortController();
      const deadline = setTimeout(() => abort.abort(), 10_000);
      try {
        const res = await fetch(`${svc.base}/v1/executions?wait=true`, {
          method: 'POST',
          headers: { authorization: auth, 'content-type': 'application/json' },
          body: JSON.stringify({ profile: 'js', code: `${++n} + 1` }),
          signal: abort.signal,
        });
        const json = (await res.json()) as { status?: string };
        if (res.status !== 200 || json.status !== 'succeeded') throw new Error('a run did not succeed');
      } finally {
        clearTimeout(deadline);
      }
    };
    for (let i = 0; i < WARMUP_RUNS / 2; i++) await plainOnce();
    const plain = await latencies(Math.min(LATENCY_RUNS, 200), plainOnce);
    let par = { perSecond: 0, ok: 0, failed: 0 };
    const parCpu = await cpuPerRun(pids, async () => {
      par = await sustained(THROUGHPUT_MS, CONCURRENCY, post);
      return par.ok;
    });
    console.log(
      `CPU per run: service ${fmt(seqCpu.service)} ms, Redis ${fmt(seqCpu.redis)} ms (sequential); service ${fmt(parCpu.service)} ms, Redis ${fmt(parCpu.redis)} ms (concurrency ${CONCURRENCY})`,
    );
    return { lat, plain, perSecond: par.perSecond, failed: par.failed };
  } finally {
    await svc.stop();
  }
}

export async function main(): Promise<void> {
  console.log(
    `isolate benchmark: ${LATENCY_RUNS} sequential runs for latency, ${THROUGHPUT_MS / 1000} s sustained at concurrency ${CONCURRENCY}`,
  );
  const svc = await measureService();
  const raw = await measureRaw();

  console.log(`\n| path | p50 ms | p99 ms | runs/s (concurrency ${CONCURRENCY}) | runs/s (1 loop) |`);
  console.log('|---|---:|---:|---:|---:|');
  console.log(
    `| raw isolated-vm loop | ${fmt(percentile(raw.lat, 50))} | ${fmt(percentile(raw.lat, 99))} | ${fmt(raw.perSecond, 0)} | ${fmt(raw.sequential, 0)} |`,
  );
  console.log(
    `| POST /v1/executions?wait=true | ${fmt(percentile(svc.lat, 50))} | ${fmt(percentile(svc.lat, 99))} | ${fmt(svc.perSecond, 0)} | |`,
  );
  console.log(
    `| the same, plain fetch client | ${fmt(percentile(svc.plain, 50))} | ${fmt(percentile(svc.plain, 99))} | | |`,
  );
  console.log(
    `\nthroughput, service / raw (both at concurrency ${CONCURRENCY}): ${fmt((svc.perSecond / raw.perSecond) * 100, 1)} % (target >= 60 %)`,
  );
  console.log(`throughput, service / raw single loop: ${fmt((svc.perSecond / raw.sequential) * 100, 1)} %`);
  console.log(
    `service p50 latency: ${fmt(percentile(svc.lat, 50))} ms (target <= 3 ms), p99 ${fmt(percentile(svc.lat, 99))} ms (target <= 10 ms); runs that did not succeed under load: ${svc.failed}`,
  );
}
