// The key layout's cluster rule: every key of one agent carries its hash tag, ids of its work
// carry it too, and an id from a client is parsed strictly (a bad one names the empty slot).
import { describe, expect, it } from 'vitest';
import { agentTag, isOfAgent, newWorkId, queuePrefix, redisKeys, tagOfId } from '../../state/keys.ts';

/** The part of a key Redis Cluster hashes: the first non-empty `{…}`, else the whole key. */
const hashed = (key: string) => {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
};

describe('hash tags', () => {
  const keys = redisKeys('sg');
  const agent = 'ag_Ab3-xY_0123456789ab';
  const tag = agentTag(agent);

  it('is a stable 8-hex-digit tag, different for different agents', () => {
    expect(tag).toMatch(/^[0-9a-f]{8}$/);
    expect(agentTag(agent)).toBe(tag);
    const tags = new Set(Array.from({ length: 200 }, (_, i) => agentTag(`ag_${i}`)));
    expect(tags.size).toBe(200);
  });

  it('puts every per-agent key and every key of its work in the agent slot', () => {
    const ex = newWorkId('ex', agent);
    const act = newWorkId('act', agent);
    const apr = newWorkId('apr', agent);
    const alr = newWorkId('alr', agent);
    const task = newWorkId('task', agent);
    const all = [
      keys.agent.record(agent),
      keys.agent.revoked(agent),
      keys.agent.executions(agent),
      keys.agent.actions(agent),
      keys.agent.rate('run', agent),
      keys.agent.rate('tool', agent),
      keys.agent.spendDay(agent),
      keys.agent.placeholder(agent),
      keys.agent.task(agent, null, keys.task.record),
      keys.agent.task(agent, task, keys.task.record),
      keys.task.record(task),
      keys.task.taint(task),
      keys.task.executions(task),
      keys.task.ofAgent(agent),
      keys.activity('agent', agent, 1),
      keys.activity('task', task, 1),
      keys.reservation(ex),
      keys.reservation(act),
      keys.execution.record(ex),
      keys.action.record(act),
      keys.action.auditIds(act),
      keys.action.approval(apr),
      keys.audit.ofTask(task),
      keys.audit.ofAgent(agent),
      keys.watch.suspended(agent),
      keys.watch.paused(task),
      keys.watch.throttle(agent),
      keys.watch.throttleRate(agent),
      keys.watch.loop(agent, 'h'),
      keys.watch.result(agent, 'h'),
      keys.watch.rate(agent),
      keys.watch.agentSeen(agent),
      keys.watch.taskSeen(task),
      keys.watch.refusals(agent),
      keys.watch.agentSpend(agent),
      keys.watch.taskSpend(task),
      keys.watch.agentState(agent),
      keys.watch.taskState(task),
      keys.watch.recent(agent),
      keys.alert.record(alr),
      keys.alert.deliveries(alr),
      keys.alert.open(agent, 'loop'),
      keys.alert.ofAgent(agent),
    ];
    expect(all.filter((k) => hashed(k) !== tag)).toEqual([]);
  });

  it('keeps the global indexes out of every agent slot', () => {
    const global = [
      keys.agent.all,
      keys.task.all,
      keys.alert.all,
      keys.alert.openSet,
      keys.action.pendingApprovals,
      keys.audit.all,
      keys.runner('r1'),
    ];
    for (const k of global) expect(k).not.toContain('{');
  });

  it("builds a task's key for an agent's work only from that agent's own tasks", () => {
    const mine = newWorkId('task', agent);
    const theirs = newWorkId('task', 'ag_someoneElse01');
    expect(keys.agent.task(agent, mine, keys.task.record)).toBe(keys.task.record(mine));
    expect(keys.agent.task(agent, theirs, keys.task.record)).toBe(keys.agent.placeholder(agent));
    expect(isOfAgent(mine, agent)).toBe(true);
    expect(isOfAgent(theirs, agent)).toBe(false);
  });

  it('gives each queue its own tag', () => {
    expect(queuePrefix('sg', 'executions-isolate')).toBe('{sg:executions-isolate}');
    expect(hashed(`${queuePrefix('sg', 'actions')}:actions:wait`)).toBe('sg:actions');
  });
});

describe('ids from clients', () => {
  const agent = 'ag_1234567890';
  const good = newWorkId('ex', agent);

  it('reads the tag out of a well-formed id', () => {
    expect(good).toMatch(/^ex_[0-9a-f]{8}_[A-Za-z0-9_-]{20}$/);
    expect(tagOfId(good)).toBe(agentTag(agent));
    for (const kind of ['act', 'apr', 'alr', 'task'] as const)
      expect(tagOfId(newWorkId(kind, agent))).toBe(agentTag(agent));
  });

  it.each([
    ['an old id without a tag', `ex_${'Q'.repeat(20)}`],
    ['an upper-case tag', good.replace(/^ex_([0-9a-f]{8})/, (_, t: string) => `ex_${t.toUpperCase()}`)],
    ['a short tag', good.replace(/^ex_[0-9a-f]{8}/, 'ex_abc')],
    ['braces', `ex_{${agentTag(agent)}}_${'Q'.repeat(20)}`],
    ['a tag with braces inside', `ex_${'{abcdef}'}_${'Q'.repeat(20)}`],
    ['a random part too long', `${good}Q`],
    ['a random part too short', good.slice(0, -1)],
    ['an unknown kind', good.replace(/^ex_/, 'xx_')],
    ['a trailing newline', `${good}\n`],
    ['an empty string', ''],
    ['a very long id', `ex_${agentTag(agent)}_${'Q'.repeat(100_000)}`],
  ])('finds no tag in %s, so its key names the empty slot', (_, id) => {
    expect(tagOfId(id)).toBeUndefined();
    expect(hashed(redisKeys('sg').execution.record(id))).toBe('-');
  });
});
