// Agents made before the cluster key layout keep working after the upgrade: the first read of one
// carries its record (and a revocation) over to its hash-tagged keys.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentLimits } from '../../contract/agent.ts';
import { redisKeys } from '../../state/keys.ts';
import { REDIS_URL, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
const redis = new Redis(REDIS_URL);
beforeAll(async () => {
  sg = await startSandgate();
});
afterAll(async () => {
  redis.disconnect();
  await sg?.stop();
});

/** Writes an agent where the layout before the hash tags kept it. */
async function legacyAgent(id: string, revokedAt: string | null) {
  const keys = redisKeys(sg.config.SANDGATE_PREFIX);
  const agent = {
    id,
    name: 'from before',
    grants: { profiles: ['js'], tools: [], destinations: [] },
    limits: AgentLimits.parse({}),
    createdAt: new Date().toISOString(),
    revokedAt,
    tokenGeneration: 0,
  };
  await redis.set(keys.legacyAgent.record(id), JSON.stringify(agent));
  if (revokedAt) await redis.set(keys.legacyAgent.revoked(id), revokedAt);
  await redis.zadd(keys.agent.all, Date.now(), id);
  return keys;
}

describe('an agent from before the cluster layout', () => {
  it('is carried over on first use: minted for, runs, is listed', async () => {
    const id = 'ag_fromBefore000001';
    const keys = await legacyAgent(id, null);
    expect(await redis.exists(keys.agent.record(id))).toBe(0);
    const token = await sg.mint(id);
    expect(await redis.exists(keys.agent.record(id))).toBe(1);
    const run = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: { authorization: `Bearer ${token}` },
      payload: { profile: 'js', code: '1 + 1' },
    });
    expect(run.json()).toMatchObject({ status: 'succeeded', result: 2 });
    const listed = (await sg.app!.inject({ url: '/v1/agents?limit=100', headers: sg.admin })).json().agents;
    expect(listed.map((a: { id: string }) => a.id)).toContain(id);
  });

  it('stays revoked: the marker admission checks comes over too', async () => {
    const id = 'ag_fromBefore000002';
    const keys = await legacyAgent(id, new Date().toISOString());
    const mint = await sg.app!.inject({
      method: 'POST',
      url: `/v1/agents/${id}/tokens`,
      headers: sg.admin,
      payload: {},
    });
    expect(mint.statusCode).toBe(409);
    expect(await redis.get(keys.agent.revoked(id))).toBeTruthy();
  });
});
