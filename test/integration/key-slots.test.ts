// Every Lua script and every MULTI or pipeline the stores send names keys of one slot only, the
// condition for running on a Redis Cluster. The stores run on a real Redis through a client that
// only watches what they send (each script's KEYS, each transaction's keys); every script in
// state/lua is seen at least once, so a new one cannot slip past.
import { readdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentLimits } from '../../contract/agent.ts';
import { loadConfig } from '../../contract/config.ts';
import { Budget } from '../../contract/task.ts';
import { createActionStore } from '../../state/actions.ts';
import { createActivityStore } from '../../state/activity.ts';
import { createAgentStore } from '../../state/agents.ts';
import { createAlertStore } from '../../state/alerts.ts';
import { createAuditIndex } from '../../state/audit-index.ts';
import { createBudgetStore } from '../../state/budgets.ts';
import { createExecutionStore } from '../../state/executions.ts';
import { agentTag, hashedPart, newWorkId } from '../../state/keys.ts';
import { scriptNameOf } from '../../state/scripts.ts';
import { createWatchStore } from '../../state/watch.ts';
import { dropPrefix, REDIS_URL, testEnv } from '../helpers/sandgate.ts';

const prefix = testEnv().SANDGATE_PREFIX!;
const real = new Redis(REDIS_URL);
afterAll(async () => {
  real.disconnect();
  await dropPrefix(prefix);
});

/** What went to Redis as one unit: a script (its KEYS) or a transaction / pipeline (each command's key). */
const sent: Array<{ what: string; keys: string[] }> = [];

/** Wraps a MULTI or pipeline so each queued command's key (its first argument) is noted. */
function watchChain(what: string, chain: object): object {
  const keys: string[] = [];
  const proxy: object = new Proxy(chain, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (prop === 'exec')
        return (...args: unknown[]) => {
          sent.push({ what, keys });
          return value.apply(target, args);
        };
      return (...args: unknown[]) => {
        if (typeof args[0] === 'string') keys.push(args[0]);
        value.apply(target, args);
        return proxy;
      };
    },
  });
  return proxy;
}

const redis = new Proxy(real, {
  get(target, prop, receiver) {
    const value = Reflect.get(target, prop, receiver);
    if (typeof prop !== 'string' || typeof value !== 'function') return value;
    if (prop === 'evalsha' || prop === 'eval') {
      // (sha or source, number of keys, keys…, args…)
      return (...args: string[]) => {
        const name = prop === 'evalsha' ? scriptNameOf(args[0]!) : `eval of ${args[0]!.slice(0, 40)}`;
        const n = Number(args[1]);
        sent.push({ what: `script ${name}`, keys: args.slice(2, 2 + n) });
        return value.apply(target, args);
      };
    }
    if (prop === 'multi' || prop === 'pipeline')
      return (...args: unknown[]) => watchChain(prop, value.apply(target, args) as object);
    return value.bind(target);
  },
}) as Redis;

describe('one slot per script and transaction', () => {
  it('holds for every store operation of an agent, and every script is exercised', async () => {
    const ttl = 3600;
    const settings = loadConfig({}).SANDGATE_WATCH;
    const limits = AgentLimits.parse({});
    const agents = createAgentStore(redis, prefix);
    const budgets = createBudgetStore(redis, prefix, ttl);
    const executions = createExecutionStore(redis, prefix, ttl);
    const actions = createActionStore(redis, prefix, ttl);
    const watch = createWatchStore(redis, prefix);
    const alerts = createAlertStore(redis, prefix, ttl);
    const activity = createActivityStore(redis, prefix);
    const audit = createAuditIndex(redis, prefix, ttl);

    const agent = await agents.create({
      name: 'slots',
      grants: { profiles: ['js'], tools: ['send_email'], destinations: [] },
    });
    const other = await agents.create({ name: 'other', grants: { profiles: ['js'], tools: [], destinations: [] } });
    const task = await budgets.createTask(agent.id, 'slots', Budget.parse({}));
    const foreign = await budgets.createTask(other.id, 'not yours', Budget.parse({}));
    await budgets.taint(task.id, 'a test');

    for (const taskId of [task.id, null, foreign.id]) {
      // Admission and settlement of a run, with a task, without one, and naming another agent's task.
      const id = newWorkId('ex', agent.id);
      const admitted = await budgets.admit({ id, kind: 'run', agentId: agent.id, limits, taskId, worstCase: 0.01 });
      expect(admitted.ok, String(taskId)).toBe(taskId !== foreign.id);
      const at = new Date().toISOString();
      const meta = { id, profile: 'js', language: 'javascript' as const, agentId: agent.id, taskId, createdAt: at };
      expect(await executions.create(meta)).toBe(true);
      await watch.admit(
        {
          id,
          agentId: agent.id,
          taskId,
          inputHash: 'h',
          targets: ['profile:js'],
          perMinute: 60,
          tainted: false,
          irreversible: false,
        },
        settings,
      );
      expect(await executions.markRunning(id, { agentId: agent.id, taskId })).toBeTruthy();
      expect(await executions.cancel(id, { code: 'cancelled', message: 'test' })).toBe('done');
      await executions.amendCancelled(id, { exitCode: 0 });
      await budgets.settle({ id, agentId: agent.id, taskId, cost: 0.001 });
      await watch.result({ id, agentId: agent.id, resultHash: 'r', egressRefusals: 1 }, settings);
      await watch.refusal({ member: id, agentId: agent.id }, settings);
      await watch.cost({ member: id, agentId: agent.id, taskId, cost: 0.5 }, settings);
      await activity.add({ agentId: agent.id, taskId, metric: 'runs', amount: 1 });
      // A record taken back (its request's audit failed): the same keys as its creation.
      const untold = { ...meta, id: newWorkId('ex', agent.id) };
      expect(await executions.create(untold)).toBe(true);
      expect(await executions.discard(untold)).toBe(true);
    }
    await budgets.reportUsage(task.id, agent.id, limits, 10, 0.001);
    const done = newWorkId('ex', agent.id);
    await executions.create({
      id: done,
      profile: 'js',
      language: 'javascript',
      agentId: agent.id,
      taskId: task.id,
      createdAt: new Date().toISOString(),
    });
    expect(await executions.finish(done, 'succeeded', { exitCode: 0 }, ['queued'])).toBe('done');

    // A tool call that waits for a human: approved, used, run, finished; another denied, another expired.
    const call = (approvalTtlMs: number) => {
      const id = newWorkId('act', agent.id);
      const approvalId = newWorkId('apr', agent.id);
      const meta = {
        id,
        tool: 'send_email',
        agentId: agent.id,
        taskId: task.id,
        args: { to: 'a@example.com' },
        reasoning: null,
        createdAt: new Date().toISOString(),
        destinations: [],
      };
      const data = {
        tool: 'send_email',
        args: meta.args,
        argsHash: 'hash',
        reasoning: null,
        taskId: task.id,
        tainted: false,
        taintSources: [],
        requestedAt: meta.createdAt,
      };
      return { id, approvalId, create: () => actions.create(meta, { id: approvalId, data, ttlMs: approvalTtlMs }) };
    };
    const approved = call(60_000);
    expect(await approved.create()).toBe(true);
    expect((await actions.pendingApprovals(100)).map((a) => a.id)).toContain(approved.approvalId);
    expect(await actions.decide(approved.approvalId, 'approve', 'pr_human', 'ok')).toEqual({
      ok: true,
      actionId: approved.id,
    });
    expect(await actions.consumeApproval(approved.approvalId, approved.id, 'hash')).toBe(true);
    expect(await actions.markRunning(approved.id, { agentId: agent.id, taskId: task.id })).toBeTruthy();
    expect(await actions.finish(approved.id, 'succeeded', { result: {} })).toBe(true);
    await actions.addAuditId(approved.id, 'audit-1');
    const denied = call(60_000);
    await denied.create();
    expect((await actions.decide(denied.approvalId, 'deny', 'pr_human', 'no')).ok).toBe(true);
    const expired = call(1);
    await expired.create();
    await new Promise((r) => setTimeout(r, 20));
    expect(await actions.expireIfDue(expired.approvalId)).toBe(true);
    expect((await actions.pendingApprovals(100)).map((a) => a.id)).not.toContain(expired.approvalId);
    const plain = newWorkId('act', agent.id);
    await actions.create({
      id: plain,
      tool: 'http_fetch',
      agentId: agent.id,
      taskId: null,
      args: {},
      reasoning: null,
      createdAt: new Date().toISOString(),
      destinations: [],
    });
    expect(await actions.cancel(plain, { code: 'cancelled', message: 'test' })).toBe(true);

    // An alert with each kind of response marker, deduplicated, handled, resolved.
    const hold = { alertId: '', by: 'detector:loop', at: new Date().toISOString(), reason: 'test' };
    for (const marker of [
      undefined,
      { key: 'paused' as const, hold, ttlS: 0 },
      { key: 'throttle' as const, hold, ttlS: 60 },
    ]) {
      const raised = await alerts.raise(
        {
          id: newWorkId('alr', agent.id),
          detector: 'loop',
          severity: 'high',
          agentId: agent.id,
          taskId: task.id,
          action: 'alert',
          summary: 'test',
          evidence: {},
          auditIds: [],
          resumes: null,
        },
        marker,
      );
      await alerts.update(raised.id, 'acknowledged', 'pr_human', null);
      await alerts.update(raised.id, 'resolved', 'pr_human', null);
    }
    await alerts.addDelivery(newWorkId('alr', agent.id), { sink: 'webhook', at: '', ok: true, detail: '' } as never);
    await watch.remember(agent.id, 'audit-1');
    await watch.resumeAgent(agent.id);
    await watch.resumeTask(task.id, agent.id);
    await agents.revoke(agent.id);
    await agents.enable(agent.id);
    await audit.add([
      {
        id: 'rec-1',
        time: new Date().toISOString(),
        kind: 'execution.requested',
        agentId: agent.id,
        taskId: task.id,
      } as never,
    ]);

    const crossing = sent
      .filter((s) => new Set(s.keys.map(hashedPart)).size > 1)
      .map((s) => `${s.what}: ${s.keys.join(' ')}`);
    expect(crossing).toEqual([]);
    const scripts = new Set(sent.filter((s) => s.what.startsWith('script ')).map((s) => s.what.slice(7)));
    const all = readdirSync('state/lua')
      .filter((f) => f.endsWith('.lua'))
      .map((f) => f.slice(0, -4));
    expect(all.filter((name) => !scripts.has(name))).toEqual([]);
    // Every script here was about this one agent: all of them name its slot, none another's.
    const elsewhere = sent
      .filter((s) => s.what.startsWith('script ') && s.keys.some((k) => hashedPart(k) !== agentTag(agent.id)))
      .map((s) => s.what);
    expect(elsewhere).toEqual([]);
  });
});
