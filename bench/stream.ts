// Event streams: how long a line takes from the program's write to a client following the run's
// stream (the program prints the wall clock, ms; the client subtracts it from its own at
// arrival, one host, one clock), for the isolate and for docker's python; then the throughput of
// js runs beside four long python runs that print a line every 100 ms, first with nobody
// following those, then with READERS clients following them (READERS / 4 each). Readers run in
// this process: on a 2-core machine they compete with the service for the same cores, so the
// cost printed is an upper bound.
import { Pool } from 'undici';
import { profilesDir } from '../test/helpers/sandgate.ts';
import { cpuSeconds, fmt, percentile, postAndWait, startService, sustained } from './lib.ts';

const ISOLATE_RUNS = Number(process.env.BENCH_ISOLATE_RUNS ?? 40);
const DOCKER_RUNS = Number(process.env.BENCH_DOCKER_RUNS ?? 15);
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 8000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const READERS = Number(process.env.BENCH_READERS ?? 200);
/** Phases alternate (none, readers, none, readers…): the machine's other load drifts. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

/** Five lines, 20 ms apart (the isolate has no timers: a busy wait). */
const ISOLATE_CODE =
  'for (let i = 0; i < 5; i++) { const t = Date.now(); while (Date.now() - t < 20) {} console.log(String(Date.now())); }';
/** Ten lines, 50 ms apart. */
const PYTHON_CODE = 'import time\nfor i in range(10):\n    time.sleep(0.05)\n    print(int(time.time() * 1000))\n';
/** What a throughput run does: ten short lines, then its end. */
const THROUGHPUT_CODE = 'for (let i = 0; i < 10; i++) console.log("line " + i); 1';
/** The runs the readers follow: a line every 100 ms for the whole phase. */
const BACKGROUND = 4;
const tickerCode = (ms: number) =>
  `import time\nfor i in range(${Math.ceil(ms / 100)}):\n    print(f"tick {i}")\n    time.sleep(0.1)\n`;

interface Sse {
  /** Resolves when `final` arrived; calls `onData` with each piece of text as it arrives. */
  follow(path: string, auth: string, onData?: (text: string, at: number) => void): Promise<void>;
}

function sseClient(pool: Pool): Sse {
  return {
    async follow(path, auth, onData) {
      const res = await pool.request({
        method: 'GET',
        path,
        headers: { authorization: auth, accept: 'text/event-stream' },
      });
      if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${await res.body.text()}`);
      let tail = '';
      for await (const piece of res.body) {
        const text = piece.toString();
        onData?.(text, Date.now());
        tail = (tail + text).slice(-4096);
        if (tail.includes('event: final')) {
          res.body.destroy();
          return;
        }
      }
    },
  };
}

/** Write-to-client latencies of every line of `runs` runs of `code` (ms). */
async function lineLatencies(
  svc: Awaited<ReturnType<typeof startService>>,
  sse: Sse,
  auth: string,
  profile: string,
  code: string,
  runs: number,
): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const res = await svc.pool.request({
      method: 'POST',
      path: '/v1/executions',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({ profile, code }),
    });
    const { id } = (await res.body.json()) as { id: string };
    let buffer = '';
    await sse.follow(`/v1/executions/${id}/stream`, auth, (text, at) => {
      buffer += text;
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end === -1) break;
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!block.includes('event: chunk')) continue;
        const data = JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { data: string };
        for (const line of data.data.split('\n')) if (/^\d{13}$/.test(line)) out.push(at - Number(line));
      }
    });
  }
  return out.sort((a, b) => a - b);
}

export async function main(): Promise<void> {
  console.log(
    `stream benchmark: ${ISOLATE_RUNS} isolate runs x 5 lines, ${DOCKER_RUNS} python runs x 10 lines, then ${ROUNDS} x (${THROUGHPUT_MS / 1000} s of runs at concurrency ${CONCURRENCY} with 0, then ${READERS} stream readers)`,
  );
  const profiles = await profilesDir(['js', 'python']);
  const svc = await startService(
    { SANDGATE_PROFILES_DIR: profiles, SANDGATE_ISOLATE_CONCURRENCY: String(CONCURRENCY) },
    'warn',
  );
  const readersPool = new Pool(svc.base, { connections: READERS + 64, pipelining: 1 });
  const sse = sseClient(readersPool);
  try {
    const auth = await svc.agentAuth(['js', 'python']);
    await new Promise((r) => setTimeout(r, Number(process.env.BENCH_SETTLE_MS ?? 8000))); // pools fill
    await lineLatencies(svc, sse, auth, 'js', ISOLATE_CODE, 3); // warm-up
    const isolate = await lineLatencies(svc, sse, auth, 'js', ISOLATE_CODE, ISOLATE_RUNS);
    const docker = await lineLatencies(svc, sse, auth, 'python', PYTHON_CODE, DOCKER_RUNS);

    const body = JSON.stringify({ profile: 'js', code: THROUGHPUT_CODE });
    const submit = async (profile: string, code: string) => {
      const res = await svc.pool.request({
        method: 'POST',
        path: '/v1/executions',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ profile, code }),
      });
      const json = (await res.body.json()) as { id: string };
      if (res.statusCode !== 202) throw new Error(`submit: ${res.statusCode} ${JSON.stringify(json)}`);
      return json.id;
    };
    /** Throughput beside the background runs, with `readers` clients following them. */
    const phase = async (readers: number) => {
      const ids = await Promise.all(
        Array.from({ length: BACKGROUND }, () => submit('python', tickerCode(THROUGHPUT_MS + 1000))),
      );
      let events = 0;
      const following = Array.from({ length: readers }, (_, i) =>
        sse.follow(`/v1/executions/${ids[i % BACKGROUND]}/stream`, auth, (text) => {
          events += text.split('event: chunk').length - 1;
        }),
      );
      await new Promise((r) => setTimeout(r, 500)); // the background runs have started
      const apiBefore = await cpuSeconds(svc.child.proc.pid!);
      const runnerBefore = svc.runner ? await cpuSeconds(svc.runner.proc.pid!) : 0;
      const clientBefore = process.cpuUsage();
      const rate = await sustained(THROUGHPUT_MS, CONCURRENCY, () => postAndWait(svc, auth, body));
      const serviceCpu = (await cpuSeconds(svc.child.proc.pid!)) - apiBefore;
      const runnerCpu = svc.runner ? (await cpuSeconds(svc.runner.proc.pid!)) - runnerBefore : Number.NaN;
      const client = process.cpuUsage(clientBefore);
      const clientCpu = (client.user + client.system) / 1e6;
      await Promise.all(following);
      // Until the background runs have ended, so the next phase starts alike.
      for (const id of ids) await sse.follow(`/v1/executions/${id}/stream`, auth);
      return { ...rate, events, serviceCpu, runnerCpu, clientCpu };
    };
    const plains: Array<Awaited<ReturnType<typeof phase>>> = [];
    const followeds: typeof plains = [];
    for (let r = 0; r < ROUNDS; r++) {
      plains.push(await phase(0));
      followeds.push(await phase(READERS));
    }
    const sum = (list: typeof plains) => ({
      perSecond: list.reduce((a, r) => a + r.perSecond, 0) / list.length,
      failed: list.reduce((a, r) => a + r.failed, 0),
      ok: list.reduce((a, r) => a + r.ok, 0),
      events: list.reduce((a, r) => a + r.events, 0),
      serviceCpu: list.reduce((a, r) => a + r.serviceCpu, 0),
      runnerCpu: list.reduce((a, r) => a + r.runnerCpu, 0),
      clientCpu: list.reduce((a, r) => a + r.clientCpu, 0),
    });
    const plain = sum(plains);
    const followed = sum(followeds);

    const row = (name: string, l: number[], target: number) =>
      console.log(`| ${name} | ${l.length} | ${fmt(percentile(l, 50))} | ${fmt(percentile(l, 99))} | ≤ ${target} |`);
    console.log('\n| first byte: program write → client | lines | p50 ms | p99 ms | p50 target |');
    console.log('|---|---:|---:|---:|---:|');
    row('isolate (js, console.log)', isolate, 20);
    row('docker (python, print)', docker, 50);
    const cost = (1 - followed.perSecond / plain.perSecond) * 100;
    const split = svc.runner ? 'API process' : 'service';
    console.log(
      `\n| js runs (?wait=true, concurrency ${CONCURRENCY}) beside ${BACKGROUND} ticking python runs | runs/s | failed | chunk events delivered | ${split} CPU s | ${split} CPU ms per run | runner CPU ms per run | bench (client) CPU s |`,
    );
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    const line = (name: string, r: typeof plain) =>
      console.log(
        `| ${name} | ${fmt(r.perSecond, 1)} | ${r.failed} | ${r.events} | ${fmt(r.serviceCpu, 1)} | ${fmt((r.serviceCpu * 1000) / r.ok, 2)} | ${fmt((r.runnerCpu * 1000) / r.ok, 2)} | ${fmt(r.clientCpu, 1)} |`,
      );
    for (let r = 0; r < ROUNDS; r++) {
      line(`round ${r + 1}: nobody follows the python runs`, plains[r]!);
      line(`round ${r + 1}: ${READERS} readers follow them (${READERS / BACKGROUND} each)`, followeds[r]!);
    }
    line('all rounds: nobody follows (runs/s averaged)', plain);
    line(`all rounds: ${READERS} readers follow`, followed);
    const cpuCost = (followed.serviceCpu / followed.ok / (plain.serviceCpu / plain.ok) - 1) * 100;
    console.log(`\nthroughput cost of ~${READERS} readers: ${fmt(cost, 1)} % (target ≤ 10 %; readers share the cores)`);
    console.log(
      `${split} CPU per run with the readers: ${fmt(cpuCost, 1)} % more${svc.runner ? '' : ' (one process: API, runner and SSE share it; BENCH_SPLIT=1 runs a separate runner)'}`,
    );
    if (svc.runner) {
      const runnerCost = (followed.runnerCpu / followed.ok / (plain.runnerCpu / plain.ok) - 1) * 100;
      console.log(`runner CPU per run with the readers: ${fmt(runnerCost, 1)} % more (it never serves a reader)`);
    }
  } finally {
    await readersPool.close();
    await svc.stop();
  }
}
