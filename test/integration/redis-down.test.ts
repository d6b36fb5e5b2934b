// Redis goes away: readiness says so (503) and requests fail with 503, not 500 or a hang.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis } from '../helpers/processes.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let redis: Awaited<ReturnType<typeof startRedis>>;
let auth: Record<string, string>;

beforeAll(async () => {
  redis = await startRedis();
  sg = await startSandgate({ REDIS_URL: redis.url });
  ({ auth } = await sg.agent());
});
afterAll(async () => {
  await redis.stop();
  await Promise.race([sg.close(), new Promise((r) => setTimeout(r, 5000))]);
});

describe('Redis unreachable', () => {
  it('turns readiness and requests into 503 dependency errors', async () => {
    const before = await sg.app!.inject({ method: 'POST', url: '/v1/executions?wait=true', headers: auth, payload: { profile: 'js', code: '1' } });
    expect(before.statusCode).toBe(200);
    await redis.stop();

    const ready = await sg.app!.inject('/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.redis).not.toBe('ok');

    const res = await sg.app!.inject({ method: 'POST', url: '/v1/executions', headers: auth, payload: { profile: 'js', code: '1' } });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('dependency_unavailable');
    expect((await sg.app!.inject('/healthz')).statusCode).toBe(200);
  });
});
