// MCP against REST for the same work: p50/p99 of a trivial js run through `run_code` with the
// official MCP client (streamable HTTP, a fresh stateless server per request, its messages
// stored in Redis for resumption) beside `POST /v1/executions?wait=true`, and of `tools/list`.
// Sequential, one client, alternating rounds (the machine's other load drifts).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { profilesDir } from '../test/helpers/sandgate.ts';
import { fmt, latencies, percentile, postAndWait, startService } from './lib.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 60);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

export async function main(): Promise<void> {
  const svc = await startService({ SANDGATE_PROFILES_DIR: await profilesDir(['js']) }, 'warn');
  try {
    const post = async (path: string, body: unknown, auth: string) => {
      const res = await fetch(`${svc.base}${path}`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as Record<string, string>;
    };
    const agent = await post(
      '/v1/agents',
      { name: 'bench-mcp', grants: { profiles: ['js'] }, limits: { runsPerMinute: 100000 } },
      svc.admin,
    );
    const rest = await post(`/v1/agents/${agent.id}/tokens`, { ttlSeconds: 3600 }, svc.admin);
    const mcp = await post(
      `/v1/agents/${agent.id}/tokens`,
      { ttlSeconds: 3600, resource: `${svc.base}/mcp` },
      svc.admin,
    );
    const client = new Client({ name: 'bench', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${svc.base}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${mcp.token}` } },
      }),
    );
    let n = 0;
    const viaRest = async () => {
      const ok = await postAndWait(svc, `Bearer ${rest.token}`, JSON.stringify({ profile: 'js', code: `${n++}; 1` }));
      if (!ok) throw new Error('REST run failed');
    };
    const viaMcp = async () => {
      const r = await client.callTool({ name: 'run_code', arguments: { profile: 'js', code: `${n++}; 1` } });
      if (r.isError) throw new Error(`MCP run failed: ${JSON.stringify(r.content)}`);
    };
    const list = async () => void (await client.listTools());
    for (let i = 0; i < 10; i++) await Promise.all([viaRest(), viaMcp()]); // warm up
    const samples = { rest: [] as number[], mcp: [] as number[], list: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      samples.rest.push(...(await latencies(RUNS, viaRest)));
      samples.mcp.push(...(await latencies(RUNS, viaMcp)));
      samples.list.push(...(await latencies(RUNS, list)));
    }
    await client.close();
    const row = (name: string, xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return `${name.padEnd(28)} p50 ${fmt(percentile(s, 50))} ms  p99 ${fmt(percentile(s, 99))} ms  (n=${s.length})`;
    };
    console.log(row('REST POST ?wait=true (js)', samples.rest));
    console.log(row('MCP run_code (js)', samples.mcp));
    console.log(row('MCP tools/list', samples.list));
    const p50 = (xs: number[]) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        50,
      );
    console.log(`MCP run_code adds ${fmt(p50(samples.mcp) - p50(samples.rest))} ms at p50 over REST`);
  } finally {
    await svc.stop();
  }
}
