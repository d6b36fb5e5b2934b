// `print(n)` on the python profile through the whole service (warm pool, one container per run),
// side by side with the plain dockerode path on the same image: create → start → wait → remove.
// Measured one after the other. Ends by counting the containers the service left behind.
import Dockerode from 'dockerode';
import { LABEL } from '../runner/engines/docker/container-spec.ts';
import { profilesDir } from '../test/helpers/sandgate.ts';
import { fmt, latencies, percentile, postAndWait, startService, sustained } from './lib.ts';

const SERVICE_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 200);
const PLAIN_RUNS = Number(process.env.BENCH_PLAIN_RUNS ?? 30);
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const IMAGE = 'sandgate/python:latest';

async function plainRun(docker: Dockerode): Promise<void> {
  const container = await docker.createContainer({
    Image: IMAGE,
    Entrypoint: ['python3', '-c', 'print(1)'],
    HostConfig: { NetworkMode: 'none' },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    if (StatusCode !== 0) throw new Error(`plain run exited ${StatusCode}`);
  } finally {
    await container.remove({ force: true });
  }
}

export async function main(): Promise<void> {
  console.log(
    `docker benchmark: ${SERVICE_RUNS} sequential service runs, ${PLAIN_RUNS} plain runs, ${THROUGHPUT_MS / 1000} s sustained at concurrency ${CONCURRENCY}`,
  );
  const docker = new Dockerode();
  // The python profile only: the other profiles' pools would fill and churn beside it.
  const profiles = await profilesDir(['python']);
  const svc = await startService({ SANDGATE_PROFILES_DIR: profiles }, 'warn');
  const prefix = svc.prefix;
  let svcLat: number[];
  let svcRate: Awaited<ReturnType<typeof sustained>>;
  try {
    const auth = await svc.agentAuth(['python']);
    // print(n): each run's code and output differ, as an agent's do; the same call and result
    // 200 times is the loop detector's case (an alert raised on every run), not the path measured.
    let n = 0;
    const post = () => {
      const i = ++n;
      return postAndWait(
        svc,
        auth,
        JSON.stringify({ profile: 'python', code: `print(${i})` }),
        (j) => j.stdout === `${i}\n`,
      );
    };
    await new Promise((r) => setTimeout(r, Number(process.env.BENCH_SETTLE_MS ?? 15_000))); // pools fill at start-up
    for (let i = 0; i < 10; i++) await post();
    svcLat = [];
    for (let i = 0; i < SERVICE_RUNS; i++) {
      const t = performance.now();
      if (!(await post())) throw new Error('a run did not succeed');
      svcLat.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 100)); // an agent's think time, not measured; lets the pool refill
    }
    svcLat.sort((a, b) => a - b);
    svcRate = await sustained(THROUGHPUT_MS, CONCURRENCY, post);
  } finally {
    await svc.stop();
  }
  const leaked = await docker.listContainers({ all: true, filters: { label: [`${LABEL.prefix}=${prefix}`] } });

  await plainRun(docker);
  const plainLat = await latencies(PLAIN_RUNS, () => plainRun(docker));

  const p50 = percentile(svcLat, 50);
  console.log('\n| path | p50 ms | p99 ms |');
  console.log('|---|---:|---:|');
  console.log(
    `| plain dockerode create → start → wait → remove | ${fmt(percentile(plainLat, 50))} | ${fmt(percentile(plainLat, 99))} |`,
  );
  console.log(`| POST /v1/executions?wait=true (python, print(n)) | ${fmt(p50)} | ${fmt(percentile(svcLat, 99))} |`);
  console.log(
    `\nservice p50 is ${fmt(percentile(plainLat, 50) / p50, 1)}x faster than the plain path (target >= 4x); p50 target <= 50 ms`,
  );
  console.log(
    `sustained: ${fmt(svcRate.perSecond, 1)} runs/s at concurrency ${CONCURRENCY}, one container per run (target >= 10); runs that did not succeed: ${svcRate.failed}`,
  );
  console.log(`containers left behind by the service: ${leaked.length}`);
}
