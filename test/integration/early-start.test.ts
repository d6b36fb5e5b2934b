// A js run taken here starts in its isolate while its request's audit record is written and its
// record made (HereClaim.begin): the isolate engine is sealed, so nothing of a run reaches outside
// but its tool calls, and the engine holds those until the run's admission says yes. Nothing of
// such a run is seen before then: its calls wait, its output is held, and a run that is not
// admitted is stopped and dropped whole, its slot given back.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Profile } from '../../contract/profile.ts';
import type { Engine } from '../../runner/engines/engine.ts';
import { redisKeys } from '../../state/keys.ts';
import { admissionDecision } from '../helpers/admission-decision.ts';
import { engineJob, hereJob, isolateWithToolLog } from '../helpers/engine-job.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { REDIS_URL, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const callingCode = `(async () => {
  console.log('before the call');
  try { return await tools.call('probe', { n: 1 }); } catch (e) { return 'refused: ' + e.code; }
})()`;

describe('the isolate engine holds a run’s tool calls until its admission has ended', () => {
  let engine: Engine;
  let profile: Profile;
  let calls: unknown[];
  beforeAll(async () => {
    ({ engine, profile, calls } = await isolateWithToolLog());
  });
  afterAll(() => engine.close());

  /** A run of code that calls a tool, started ahead of an admission the test decides. */
  const runCalling = () => {
    const { admitted, say } = admissionDecision();
    const job = engineJob(profile, callingCode);
    const running = engine.run(job, profile, new AbortController().signal, undefined, admitted);
    return { running, say };
  };

  it('is sealed', () => {
    expect(engine.sealed).toBe(true);
  });

  it('admitted: the call is made once the admission says yes, not before', async () => {
    calls.length = 0;
    const { running, say } = runCalling();
    await sleep(300);
    expect(calls).toEqual([]);
    say(true);
    const result = await running;
    expect(result).toMatchObject({ status: 'succeeded', result: 'answered', stdout: 'before the call\n' });
    expect(calls).toEqual([['probe', { n: 1 }]]);
  });

  it('not admitted: the call is refused and nothing is called', async () => {
    calls.length = 0;
    const { running, say } = runCalling();
    await sleep(100);
    say(false);
    expect((await running).result).toBe('refused: tools_unavailable');
    expect(calls).toEqual([]);
  });
});

describe('a run begun here ahead of its admission, then given back', () => {
  let sg: TestSandgate;
  let web: FakeEndpoint;
  let redis: Redis;
  beforeAll(async () => {
    web = await startFakeEndpoint((_, res) => res.end('reached'));
    sg = await startSandgate({ SANDGATE_ISOLATE_CONCURRENCY: '1', SANDGATE_TOOLS_DIR: 'tools' });
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    redis?.disconnect();
    await sg?.stop();
    await web?.close();
  });

  it('leaves nothing: no tool call made, no output in its event stream, its slot back', async () => {
    // An agent that may fetch the endpoint: a call let through would reach it.
    const { id: agentId, auth } = await sg.agent({
      profiles: ['js'],
      tools: ['http_fetch'],
      destinations: [`127.0.0.1:${web.port}`],
    });
    const job = hereJob(
      agentId,
      `(async () => {
        console.log('seen too early');
        await tools.call('http_fetch', { url: '${web.url}/early' });
        for (;;) {}
      })()`,
    );
    const { id } = job;
    const claim = await sg.runner!.claimHere(job);
    expect(claim).toBeDefined();
    claim!.begin();
    expect(sg.runner!.inFlight()).toBe(1); // started, ahead of any admission
    await sleep(400); // the code has long reached its call and its console
    expect(web.received).toHaveLength(0);
    claim!.release(); // as when its audit record or its record could not be made
    await sleep(300);
    expect(web.received).toHaveLength(0);
    const keys = redisKeys(sg.config.SANDGATE_PREFIX);
    expect(await redis.xlen(keys.execution.stream(id))).toBe(0);

    expect(sg.runner!.inFlight()).toBe(0);

    // Its one slot is free again: the next run is taken here and runs at once.
    const next = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: auth,
      payload: { profile: 'js', code: '6 * 7' },
    });
    expect(next.statusCode).toBe(200);
    expect(next.json()).toMatchObject({ status: 'succeeded', result: 42 });
  });
});

describe('SANDGATE_ISOLATE_EARLY_START=0', () => {
  it('starts nothing before the admission has ended; the run still runs here when admitted', async () => {
    const sg = await startSandgate({ SANDGATE_ISOLATE_EARLY_START: '0' });
    try {
      const { id: agentId, auth } = await sg.agent();
      const job = hereJob(agentId, '1');
      const claim = await sg.runner!.claimHere(job);
      claim!.begin();
      expect(sg.runner!.inFlight()).toBe(0);
      claim!.release();
      const res = await sg.app!.inject({
        method: 'POST',
        url: '/v1/executions?wait=true',
        headers: auth,
        payload: { profile: 'js', code: '6 * 7' },
      });
      expect(res.json()).toMatchObject({ status: 'succeeded', result: 42 });
    } finally {
      await sg.stop();
    }
  });
});
