// An agent loop on Sandgate with the TypeScript client (client/): a task with a budget, code runs
// (one followed live), a tool call that waits for a human, the agent's own model usage reported,
// and the task's trace printed at the end. The "model" is a script of steps, so the example runs
// without an LLM; a real loop asks its model for the next step where `plan` is.
//
//   SANDGATE_MAIL_GATEWAY_URL=http://127.0.0.1:8025/send SANDGATE_MAIL_GATEWAY_TOKEN=demo npm start &
//   SANDGATE_ADMIN_TOKEN=$(cat data/admin-token) node examples/agent-loop.ts
//
// Two roles appear, clearly apart: THE OPERATOR (admin token: creates the agent, mints its token,
// stands in a mail gateway) and THE HUMAN APPROVER (an approver principal who approves the email).
// The agent itself only ever holds its own short-lived token.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type Action, type Execution, SandgateClient } from '../client/index.ts';

export interface AgentLoopOptions {
  baseUrl: string;
  adminToken: string;
  /** Port of the stand-in mail gateway the service was started with (0 = the service has its own). */
  gatewayPort?: number;
  log?: (line: string) => void;
}

export interface AgentLoopOutcome {
  taskId: string;
  runs: Execution[];
  email: Action;
  story: string[];
  remaining: { runs: number; toolCalls: number; tokens: number; spend: number };
  /** Requests the stand-in gateway received (the email, once). */
  gatewayHits: number;
}

// ─── THE OPERATOR ───────────────────────────────────────────────────────────────────────────────
async function admin<T>(baseUrl: string, adminToken: string, path: string, body: unknown): Promise<T> {
  const res = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function standInGateway(port: number): Promise<{ server: Server; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits++;
      res.setHeader('content-type', 'application/json');
      res.end('{"queued":true}');
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { server, hits: () => hits };
}

// ─── THE HUMAN APPROVER ─────────────────────────────────────────────────────────────────────────
/** Looks at the pending approvals like the approvals console does, and approves the email. */
async function humanApproves(baseUrl: string, approverToken: string, actionId: string, log: (s: string) => void) {
  const headers = { authorization: `Bearer ${approverToken}`, 'content-type': 'application/json' };
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${baseUrl}/v1/approvals?status=pending`, { headers, signal: AbortSignal.timeout(10_000) });
    const { approvals } = (await res.json()) as { approvals: Array<{ id: string; actionId: string; args: unknown }> };
    const mine = approvals.find((a) => a.actionId === actionId);
    if (mine) {
      log(`[human] reviewing ${mine.id}: ${JSON.stringify(mine.args)} — approve`);
      const decided = await fetch(`${baseUrl}/v1/approvals/${mine.id}`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ decision: 'approve', reason: 'numbers checked' }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!decided.ok) throw new Error(`approval: ${decided.status} ${await decided.text()}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no pending approval for ${actionId}`);
}

// ─── THE AGENT ──────────────────────────────────────────────────────────────────────────────────
export async function agentLoop(opts: AgentLoopOptions): Promise<AgentLoopOutcome> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const gateway = opts.gatewayPort ? await standInGateway(opts.gatewayPort) : undefined;
  try {
    // The operator gives the agent what it needs, and nothing else.
    const agent = await admin<{ id: string }>(opts.baseUrl, opts.adminToken, '/v1/agents', {
      name: 'example-analyst',
      grants: { profiles: ['js', 'python'], tools: ['send_email'] },
    });
    const { token } = await admin<{ token: string }>(opts.baseUrl, opts.adminToken, `/v1/agents/${agent.id}/tokens`, {
      ttlSeconds: 900,
    });
    const approver = await admin<{ token: string }>(opts.baseUrl, opts.adminToken, '/v1/principals', {
      name: 'example-approver',
      role: 'approver',
    });

    const sg = new SandgateClient({ baseUrl: opts.baseUrl, token });
    const task = await sg.createTask({
      goal: 'Compute the mean of the quarterly figures and mail it to the CFO',
      budget: { maxRuns: 5, maxToolCalls: 2, maxTokens: 20_000, maxSpend: 0.5 },
    });
    log(`[agent] task ${task.id}: ${task.goal}`);

    // The loop: ask the model for the next step, do it, report what the model used.
    const plan = [
      { think: 'parse the figures in a sandbox', tokens: 900 },
      { think: 'check the arithmetic independently', tokens: 400 },
      { think: 'mail the result to the CFO', tokens: 600 },
    ];
    const runs: Execution[] = [];
    let mean = '';
    let email: Action | undefined;
    for (const [i, step] of plan.entries()) {
      // (a real agent calls its model here)
      await sg.reportUsage(task.id, { tokens: step.tokens, cost: step.tokens * 2e-6, reasoning: step.think });
      log(`[agent] step ${i + 1}: ${step.think}`);
      if (i === 0) {
        // Started, then followed live: each line as the program prints it.
        const code =
          'figures = [12.5, 14.0, 13.25, 15.75]\nfor f in figures:\n    print("read", f)\nprint(sum(figures) / len(figures))';
        const started = await sg.startCode({ profile: 'python', code, taskId: task.id, reasoning: step.think });
        // Chunks are bytes as they came, not lines (`python3 -u` writes a print's pieces one by
        // one): a line is printed once its end has arrived, and what is left when the run ends.
        const partial = { stdout: '', stderr: '' };
        const logLines = (stream: 'stdout' | 'stderr', text: string, final: boolean) => {
          const lines = (partial[stream] + text).split('\n');
          partial[stream] = final ? '' : lines.pop()!;
          for (const line of lines) if (line) log(`[run ${started.id}] ${stream}: ${line}`);
        };
        for await (const e of sg.stream(started.id)) {
          if (e.type === 'chunk') logLines(e.stream, e.data, false);
          if (e.type === 'final') {
            logLines('stdout', '', true);
            logLines('stderr', '', true);
            runs.push(e.execution);
            mean = e.execution.stdout.trim().split('\n').at(-1) ?? '';
          }
        }
      } else if (i === 1) {
        const run = await sg.runCode({
          profile: 'js',
          code: '[12.5, 14.0, 13.25, 15.75].reduce((a, b) => a + b) / 4',
          taskId: task.id,
          reasoning: step.think,
        });
        runs.push(run);
        log(`[agent] js says ${JSON.stringify(run.result)}, python said ${mean}`);
      } else {
        const asked = await sg.callTool(
          'send_email',
          { to: 'cfo@example.com', subject: 'Quarterly mean', body: `The mean of the quarterly figures is ${mean}.` },
          { taskId: task.id, reasoning: step.think },
        );
        log(`[agent] send_email is ${asked.status} (approval ${asked.approval?.id}); waiting for a human`);
        // The human decides in their own time; the agent only waits (here both run in this process).
        const [done] = await Promise.all([
          sg.waitForApproval(asked.id, { timeoutMs: 60_000 }),
          humanApproves(opts.baseUrl, approver.token, asked.id, log),
        ]);
        email = done;
        log(`[agent] send_email ${done.status}`);
      }
    }

    const after = await sg.getTask(task.id);
    log(`[agent] budget left: ${JSON.stringify(after.remaining)}`);
    const trace = await sg.trace(task.id);
    log('[agent] the task as the audit trail tells it:');
    for (const line of trace.story) log(`  ${line}`);
    return {
      taskId: task.id,
      runs,
      email: email!,
      story: trace.story,
      remaining: after.remaining,
      gatewayHits: gateway?.hits() ?? 0,
    };
  } finally {
    gateway?.server.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const adminToken = process.env.SANDGATE_ADMIN_TOKEN;
  if (!adminToken) {
    console.error('set SANDGATE_ADMIN_TOKEN (e.g. $(cat data/admin-token)); see the header of this file');
    process.exit(2);
  }
  const gatewayUrl = new URL(process.env.SANDGATE_GATEWAY_URL ?? 'http://127.0.0.1:8025/send');
  agentLoop({
    baseUrl: process.env.SANDGATE_URL ?? 'http://127.0.0.1:8080',
    adminToken,
    gatewayPort: Number(gatewayUrl.port),
  }).catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}
