// Docker unreachable: readiness says so (503), docker profiles answer 503, the isolate works on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let auth: Record<string, string>;

beforeAll(async () => {
  sg = await startSandgate({ SANDGATE_DOCKER_SOCKET: '/nonexistent/docker.sock' }, 'all', ['js', 'python']);
  ({ auth } = await sg.agent({ profiles: ['js', 'python'] }));
});
afterAll(() => sg?.stop());

describe('Docker unreachable', () => {
  it('reports 503 on /readyz naming docker, refuses docker profiles, keeps running js', async () => {
    const ready = await sg.app!.inject('/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.redis).toBe('ok');
    expect(ready.json().checks['engine:isolate']).toBe('ok');
    expect(ready.json().checks['engine:docker']).not.toBe('ok');

    const py = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: auth,
      payload: { profile: 'python', code: 'print(1)' },
    });
    expect(py.statusCode).toBe(503);
    expect(py.json().error.code).toBe('engine_unavailable');

    const js = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: auth,
      payload: { profile: 'js', code: '1+1' },
    });
    expect(js.statusCode).toBe(200);
    expect(js.json()).toMatchObject({ status: 'succeeded', result: 2 });

    const profiles = (await sg.app!.inject({ url: '/v1/profiles', headers: auth })).json().profiles;
    expect(profiles.find((p: { name: string }) => p.name === 'python').available).toBe(false);
    expect(profiles.find((p: { name: string }) => p.name === 'js').available).toBe(true);
  });
});
