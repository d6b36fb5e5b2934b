// The audit trail of a real session: every step lands in the hash-chained files before its
// effect, the files verify offline, the task's trace reads as its story, no secret is in it, and
// an audit log that cannot be written stops the request (503) with nothing done.
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../state/keys.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

const run = promisify(execFile);
const GATEWAY_TOKEN = 'gw-audit-secret-91c2d7';
let gateway: FakeEndpoint;
let web: FakeEndpoint;
let witness: FakeEndpoint;
let sg: TestSandgate;

beforeAll(async () => {
  gateway = await startFakeEndpoint();
  web = await startFakeEndpoint((_, res) => res.end('weather: sunny'));
  witness = await startFakeEndpoint((_, res) => res.end());
  sg = await startSandgate({
    SANDGATE_TOOLS_DIR: 'tools',
    SANDGATE_MAIL_GATEWAY_URL: `${gateway.url}/send`,
    SANDGATE_MAIL_GATEWAY_TOKEN: GATEWAY_TOKEN,
    SANDGATE_AUDIT_WITNESS_URL: `${witness.url}/checkpoints`,
  });
});
afterAll(async () => {
  await sg?.stop();
  await Promise.all([gateway?.close(), web?.close(), witness?.close()]);
});

const auditDir = () => join(sg.config.SANDGATE_DATA_DIR, 'audit');
const verifyCli = (dir: string, key: string, extra: string[] = []) =>
  run(process.execPath, ['bin/audit.ts', 'verify', '--dir', dir, '--public-key', key, ...extra]).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );

describe('a session, from the log alone', () => {
  let task: string;
  let agentToken: string;
  let approverToken: string;
  let executionId: string;

  it('runs code, fetches a page, sends an approved email and reports usage', async () => {
    const agent = await sg.agent({
      profiles: ['js'],
      tools: ['http_fetch', 'send_email'],
      destinations: [`127.0.0.1:${web.port}`],
    });
    agentToken = agent.token;
    const auth = agent.auth;
    task = (
      await sg.app!.inject({
        method: 'POST',
        url: '/v1/tasks',
        headers: auth,
        payload: { goal: 'tell the team the weather' },
      })
    ).json().id;

    const ex = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: auth,
      payload: {
        profile: 'js',
        code: 'console.log("planning"); 6 * 7',
        taskId: task,
        reasoning: 'work out the answer first',
      },
    });
    expect(ex.json()).toMatchObject({ status: 'succeeded', result: 42 });
    executionId = ex.json().id;
    expect(ex.json().auditIds).toHaveLength(2);
    expect(ex.json().auditId).toBe(ex.json().auditIds[0]);

    const fetch = (
      await sg.app!.inject({
        method: 'POST',
        url: '/v1/actions',
        headers: auth,
        payload: {
          tool: 'http_fetch',
          args: { url: `${web.url}/today` },
          taskId: task,
          reasoning: 'need the forecast',
        },
      })
    ).json();
    await eventually(async () =>
      (await sg.app!.inject({ url: `/v1/actions/${fetch.id}`, headers: auth })).json().status === 'succeeded'
        ? true
        : undefined,
    );

    const mail = (
      await sg.app!.inject({
        method: 'POST',
        url: '/v1/actions',
        headers: auth,
        payload: {
          tool: 'send_email',
          args: { to: 'team@example.com', subject: 'Weather', body: 'sunny' },
          taskId: task,
          reasoning: 'the user asked to tell the team',
        },
      })
    ).json();
    const approver = await sg.app!.inject({
      method: 'POST',
      url: '/v1/principals',
      headers: sg.admin,
      payload: { name: 'carol', role: 'approver' },
    });
    approverToken = approver.json().token;
    const approvalId = (await sg.app!.inject({ url: `/v1/actions/${mail.id}`, headers: auth })).json().approval.id;
    await sg.app!.inject({
      method: 'POST',
      url: `/v1/approvals/${approvalId}`,
      headers: { authorization: `Bearer ${approverToken}` },
      payload: { decision: 'approve', reason: 'fine to send' },
    });
    const sent = await eventually(async () => {
      const a = (await sg.app!.inject({ url: `/v1/actions/${mail.id}`, headers: auth })).json();
      return a.status === 'succeeded' ? a : undefined;
    });
    expect(sent.auditIds.length).toBe(4); // requested, decided, started, finished

    const usage = await sg.app!.inject({
      method: 'POST',
      url: `/v1/tasks/${task}/usage`,
      headers: auth,
      payload: { tokens: 1200, cost: 0.01, reasoning: 'planning step', prompt: 'What is the weather?' },
    });
    expect(usage.statusCode).toBe(200);
  });

  it('the trace tells the story in order: asked, why, decided, ran, what came back', async () => {
    const auditor = (
      await sg.app!.inject({
        method: 'POST',
        url: '/v1/principals',
        headers: sg.admin,
        payload: { name: 'dave', role: 'auditor' },
      })
    ).json().token;
    const trace = await eventually(async () => {
      const t = (
        await sg.app!.inject({ url: `/v1/tasks/${task}/trace`, headers: { authorization: `Bearer ${auditor}` } })
      ).json();
      return t.records?.some((r: { kind: string }) => r.kind === 'usage.reported') ? t : undefined;
    });
    const kinds = trace.records.map((r: { kind: string }) => r.kind);
    expect(kinds).toEqual([
      'task.created',
      'execution.requested',
      'run.started',
      'run.finished',
      'action.requested',
      'action.started',
      'action.finished',
      'action.requested',
      'approval.decided',
      'action.started',
      'action.finished',
      'usage.reported',
    ]);
    const story = trace.story.join('\n');
    expect(story).toContain('asked to run js code because "work out the answer first"; allowed by grant:run_profile');
    expect(story).toContain('run succeeded (exit 0)');
    expect(story).toContain('"planning\\n"');
    expect(story).toContain(
      'asked to call send_email {"to":"team@example.com","subject":"Weather","body":"sunny"} because "the user asked to tell the team"; waits for a human approver (task tainted)',
    );
    expect(story).toMatch(/pr_\S+ approved send_email: "fine to send"/);
    expect(story).toContain('reported 1200 model tokens, cost 0.01 because "planning step"');
    const requested = trace.records.find((r: { kind: string }) => r.kind === 'execution.requested');
    expect(requested).toMatchObject({
      subject: executionId,
      taskId: task,
      data: { code: { text: 'console.log("planning"); 6 * 7' }, reasoning: 'work out the answer first' },
    });
    const fetched = trace.records.find(
      (r: { kind: string; data: { tool?: string } }) => r.kind === 'action.finished' && r.data.tool === 'http_fetch',
    );
    expect(fetched.data.egress[0]).toMatchObject({ allowed: true, ip: '127.0.0.1', port: web.port });
  });

  it('GET /v1/audit filters by task and kind and pages without gaps or repeats; agents may not read it', async () => {
    const all = (await sg.app!.inject({ url: `/v1/audit?taskId=${task}&limit=1000`, headers: sg.admin })).json()
      .records;
    const seen: string[] = [];
    let after = '';
    for (let i = 0; i < 50; i++) {
      const page = (
        await sg.app!.inject({
          url: `/v1/audit?taskId=${task}&limit=5${after && `&after=${encodeURIComponent(after)}`}`,
          headers: sg.admin,
        })
      ).json();
      seen.push(...page.records.map((r: { id: string }) => r.id));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toEqual(all.map((r: { id: string }) => r.id));
    expect(seen.length).toBe(12);
    const finished = (
      await sg.app!.inject({ url: `/v1/audit?taskId=${task}&kind=action.finished`, headers: sg.admin })
    ).json().records;
    expect(finished.map((r: { data: { tool: string } }) => r.data.tool)).toEqual(['http_fetch', 'send_email']);
    const asAgent = await sg.app!.inject({ url: '/v1/audit', headers: { authorization: `Bearer ${agentToken}` } });
    expect(asAgent.statusCode).toBe(403);
    const badKind = await sg.app!.inject({ url: '/v1/audit?kind=Not%20A%20Kind', headers: sg.admin });
    expect(badKind.statusCode).toBe(400);
  });

  it('the files verify offline, and no secret is in them', async () => {
    const api = await sg.app!.inject({ url: '/v1/audit/verify', headers: sg.admin });
    expect(api.json()).toMatchObject({ ok: true, chains: 1 });
    expect(api.json().records).toBeGreaterThan(15);

    const key = join(sg.config.SANDGATE_DATA_DIR, 'keys', 'audit-signing.pub');
    const cli = await verifyCli(auditDir(), key);
    expect(cli.code).toBe(0);
    // The witness got the signed checkpoints, out of the service's reach; verify holds against them.
    await eventually(async () => (witness.received.length > 0 ? true : undefined), 5000);
    const witnessFile = join(sg.config.SANDGATE_DATA_DIR, 'witness.jsonl');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(witnessFile, witness.received.map((r) => r.body).join('\n'));
    expect(JSON.parse(witness.received[0]!.body)).toMatchObject({
      upToSeq: expect.any(Number),
      signature: expect.any(String),
    });
    expect((await verifyCli(auditDir(), key, ['--witness', witnessFile])).code).toBe(0);

    const files = (await readdir(auditDir())).filter((f) => f.endsWith('.jsonl'));
    const text = (await Promise.all(files.map((f) => readFile(join(auditDir(), f), 'utf8')))).join('');
    for (const secret of [sg.config.SANDGATE_ADMIN_TOKEN!, agentToken, approverToken, GATEWAY_TOKEN])
      expect(text).not.toContain(secret);
  });

  it('a byte flipped in a copy of the log is caught by the CLI, naming the record', async () => {
    const copy = join(sg.config.SANDGATE_DATA_DIR, 'audit-copy');
    await rm(copy, { recursive: true, force: true });
    await mkdir(copy);
    await run('cp', ['-r', `${auditDir()}/.`, copy]);
    const file = (await readdir(copy)).find((f) => f.endsWith('.jsonl'))!;
    const lines = (await readFile(join(copy, file), 'utf8')).split('\n');
    lines[2] = lines[2]!.replace('"kind":"', '"kind":"x');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(copy, file), lines.join('\n'));
    const cli = await verifyCli(copy, join(sg.config.SANDGATE_DATA_DIR, 'keys', 'audit-signing.pub'));
    expect(cli.code).toBe(1);
    expect(cli.out).toContain(`${file}:3`);
  });
});

describe('audit before effect', () => {
  it('when the audit log cannot be written, a run is refused with 503 and nothing is queued or charged', async () => {
    const broken = await startSandgate();
    try {
      const { id: agentId, auth } = await broken.agent();
      const dir = join(broken.config.SANDGATE_DATA_DIR, 'audit');
      // The writer's next checkpoint replaces its head file: make that path a directory.
      const head = (await readdir(dir)).find((f) => f.endsWith('.head.json'))!;
      await rm(join(dir, head));
      await mkdir(join(dir, head, 'blocker'), { recursive: true });
      let accepted = 0;
      const code = await eventually(async () => {
        const r = await broken.app!.inject({
          method: 'POST',
          url: '/v1/executions',
          headers: auth,
          payload: { profile: 'js', code: '1' },
        });
        if (r.statusCode === 202) accepted++;
        return r.statusCode === 503 ? r.json().error.code : undefined;
      }, 5000);
      expect(code).toBe('audit_unavailable');
      const afterFailure = await broken.app!.inject({
        method: 'POST',
        url: '/v1/executions',
        headers: auth,
        payload: { profile: 'js', code: '2' },
      });
      expect(afterFailure.statusCode).toBe(503);
      // Only the runs admitted before the failure exist; the refused ones left no record.
      const { Redis } = await import('ioredis');
      const redis = new Redis(broken.config.REDIS_URL);
      const keys = redisKeys(broken.config.SANDGATE_PREFIX);
      const ids = await redis.smembers(keys.agent.executions(agentId));
      // The refused runs' reservations were given back (the accepted ones settle as they end).
      const reserved = await eventually(async () => {
        const v = Number(await redis.hget(keys.agent.spendDay(agentId), 'reserved'));
        return v === 0 ? v : undefined;
      });
      redis.disconnect();
      expect(ids).toHaveLength(accepted);
      expect(reserved).toBe(0);
    } finally {
      await broken.stop();
    }
  });
});
