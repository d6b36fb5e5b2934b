// A js run taken here starts at once, while its request's audit record is still being written
// (early start); that record is written lazily, with the run's end (one durable write for a short
// run, not two). What must still hold: the answer comes only once the request and the end are on
// disk, in order; the run's output reaches its event stream only once its request is durable;
// and a request that cannot be made durable leaves nothing: a 503, no tool call made, no output,
// no record, nothing reserved.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../state/keys.ts';
import { hereJob } from '../helpers/engine-job.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { freePort } from '../helpers/processes.ts';
import { dropPrefix, REDIS_URL, startSandgate, type TestSandgate, testEnv } from '../helpers/sandgate.ts';
import { startServiceProcess } from '../helpers/service-process.ts';

interface LogRecord {
  kind: string;
  subject?: string;
  seq: number;
}

/** Every audit record on disk under `dir`, in file order. */
async function onDisk(dir: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.jsonl')).sort()) {
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n').filter(Boolean)) {
      try {
        out.push(JSON.parse(line) as LogRecord);
      } catch {
        // a torn last line of a writer that failed
      }
    }
  }
  return out;
}

const kindsOf = (log: LogRecord[], id: string) => log.filter((r) => r.subject === id).map((r) => r.kind);

describe('a run taken here, its request written with its end', { timeout: 60_000 }, () => {
  let sg: TestSandgate;
  let redis: Redis;
  beforeAll(async () => {
    sg = await startSandgate();
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    redis?.disconnect();
    await sg?.stop();
  });
  const auditDir = () => join(sg.config.SANDGATE_DATA_DIR, 'audit');

  it('is answered only once its request, start and end are on disk, in that order', async () => {
    const { auth } = await sg.agent();
    for (let i = 0; i < 5; i++) {
      const res = await sg.app!.inject({
        method: 'POST',
        url: '/v1/executions?wait=true',
        headers: auth,
        payload: { profile: 'js', code: `${i} * 2` },
      });
      expect(res.statusCode).toBe(200);
      const { id, result, auditIds } = res.json() as { id: string; result: number; auditIds: string[] };
      expect(result).toBe(i * 2);
      // Read at once: what the answer names is durable already.
      const log = await onDisk(auditDir());
      expect(kindsOf(log, id)).toEqual(['execution.requested', 'run.started', 'run.finished']);
      const mine = log.filter((r) => r.subject === id);
      expect(mine.map((r) => r.seq)).toEqual([...mine.map((r) => r.seq)].sort((a, b) => a - b));
      expect(auditIds).toHaveLength(2);
    }
  });

  it('its output reaches its event stream only once its request is durable, and none of it if that fails', async () => {
    const { id: agentId } = await sg.agent();
    const keys = redisKeys(sg.config.SANDGATE_PREFIX);
    // As admission hands it over (HereClaim): begun at once, run with the request's write pending.
    const job = hereJob(agentId, `console.log('early'); for (;;) {}`);
    const claim = await sg.runner!.claimHere(job);
    expect(claim?.startsEarly).toBe(true);
    claim!.begin();
    const durable = Promise.withResolvers<boolean>();
    const ran = claim!.run(durable.promise);
    await new Promise((r) => setTimeout(r, 300)); // the code has long written its line
    expect(await redis.xlen(keys.execution.stream(job.id))).toBe(0);
    expect(sg.runner!.inFlight()).toBe(1);
    const said = performance.now();
    durable.resolve(false); // the request could not be written
    expect(await ran).toBeUndefined();
    expect(performance.now() - said).toBeLessThan(2500); // stopped, not left to its 5 s timeout
    expect(await redis.xlen(keys.execution.stream(job.id))).toBe(0);
    expect(sg.runner!.inFlight()).toBe(0); // stopped, its slot back
  });
});

describe('a run taken here whose request cannot be made durable', { timeout: 60_000 }, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  });

  it.each([
    [
      'calls a tool first',
      (url: string) => `(async () => {
        console.log('seen too early');
        return await tools.call('http_fetch', { url: '${url}/early' });
      })()`,
    ],
    ['ends at once', () => `console.log('seen too early'); 1`],
  ])(
    'and %s: is answered 503 and leaves nothing: no tool call, no output, no record, nothing reserved',
    async (_, body) => {
      const web: FakeEndpoint = await startFakeEndpoint((_, res) => res.end('reached'));
      cleanup.push(() => web.close());
      const dataDir = await mkdtemp(join(tmpdir(), 'sg-lazy-request-'));
      cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
      const env = testEnv({ PORT: String(await freePort()), SANDGATE_DATA_DIR: dataDir, SANDGATE_TOOLS_DIR: 'tools' });
      cleanup.push(() => dropPrefix(env.SANDGATE_PREFIX!));
      const svc = await startServiceProcess('all', env);
      cleanup.push(() => svc.stop('SIGKILL'));
      const admin = env.SANDGATE_ADMIN_TOKEN!;
      const created = await svc.client.call('POST', '/v1/agents', admin, {
        name: 'lazy-request',
        grants: { profiles: ['js'], tools: ['http_fetch'], destinations: [`127.0.0.1:${web.port}`] },
      });
      expect(created.status).toBe(201);
      const agentId = created.body.id as string;
      const minted = await svc.client.call('POST', `/v1/agents/${agentId}/tokens`, admin, { ttlSeconds: 600 });
      const token = minted.body.token as string;
      expect((await svc.client.execute(token, { profile: 'js', code: '1' }, true)).status).toBe(200);

      // The chain file may grow by 16 KiB more: a request carrying 40 KB of code cannot be written
      // (EFBIG), while everything before it could.
      const auditDir = join(dataDir, 'audit');
      const chain = (await readdir(auditDir)).find((f) => f.endsWith('.jsonl'))!;
      const limit = (await stat(join(auditDir, chain))).size + 16 * 1024;
      await promisify(execFile)('prlimit', ['--pid', String(svc.child.proc.pid), `--fsize=${limit}`], {
        timeout: 10_000,
      });

      const code = `/* ${'x'.repeat(40_000)} */ ${body(web.url)}`;
      const res = await svc.client.execute(token, { profile: 'js', code }, true);
      expect(res.status).toBe(503);
      expect(res.body.error?.code).toBe('audit_unavailable');
      await new Promise((r) => setTimeout(r, 300)); // anything let through would have landed by now
      expect(web.received).toHaveLength(0);

      const redis = new Redis(REDIS_URL);
      cleanup.push(async () => redis.disconnect());
      const keys = redisKeys(env.SANDGATE_PREFIX!);
      const ids = await redis.smembers(keys.agent.executions(agentId));
      expect(ids).toHaveLength(1); // the first run's; the refused one's record was taken back
      expect(await redis.keys(`${env.SANDGATE_PREFIX}*exec-stream*`)).toHaveLength(1);
      expect(Number(await redis.hget(keys.agent.spendDay(agentId), 'reserved'))).toBe(0);
      // On disk: nothing of the refused run (its request's line, if begun, is torn).
      const runs = (await onDisk(auditDir)).filter((r) => r.kind.startsWith('execution.') || r.kind.startsWith('run.'));
      expect(runs.every((r) => ids.includes(r.subject!))).toBe(true);
      expect(svc.child.proc.exitCode).toBeNull();
    },
  );
});
