// state/pipeline-length-fix.ts replaces ioredis's Pipeline constructor with one that puts
// `length` on the prototype. The replacement must build the same pipelines, against a real Redis:
// the same own properties (bar the getter), and multi, explicit and auto-pipelines, and scripts
// defined on the client, answering as before.
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { installPipelineLengthFix } from '../../state/pipeline-length-fix.ts';
import { createRedisClient } from '../../state/redis-client.ts';
import { REDIS_URL } from '../helpers/sandgate.ts';

const require = createRequire(import.meta.url);
const redis = createRedisClient(REDIS_URL, { enableAutoPipelining: true, commandTimeout: 5000 });
const key = `test:pipeline-fix:${process.pid}`;
afterAll(async () => {
  await redis.del(key, `${key}:2`);
  redis.disconnect();
});

describe('the pipeline length fix', () => {
  it('is installed for the ioredis this service ships with', () => {
    expect(installPipelineLengthFix()).toBe(true);
    const Fixed = require('ioredis/built/Pipeline.js').default;
    const pipeline = redis.pipeline();
    expect(pipeline).toBeInstanceOf(Fixed);
    expect(Object.hasOwn(pipeline, 'length')).toBe(false);
  });

  it('builds the same pipeline as the constructor it replaces, bar the per-instance getter', () => {
    const Fixed = require('ioredis/built/Pipeline.js').default;
    const Original = Object.getPrototypeOf(Fixed);
    const original = new Original(redis);
    const fixed = new Fixed(redis);
    const keys = (o: object) => Object.keys(o).filter((k) => k !== 'length');
    expect(keys(fixed)).toEqual(keys(original));
    expect(Object.hasOwn(original, 'length')).toBe(true); // the getter this fix removes
    for (const k of keys(fixed)) expect(typeof fixed[k], k).toBe(typeof original[k]);
  });

  it('keeps length, multi, pipelines, auto-pipelining and defined scripts working', async () => {
    const pipeline = redis.pipeline().set(key, '1').incr(key);
    expect(pipeline.length).toBe(2);
    expect(await pipeline.exec()).toEqual([
      [null, 'OK'],
      [null, 2],
    ]);
    expect(await redis.multi().incr(key).get(key).exec()).toEqual([
      [null, 3],
      [null, '3'],
    ]);
    const same = await Promise.all([redis.incr(key), redis.incr(key), redis.get(key)]); // one auto-pipeline
    expect(same).toEqual([4, 5, '5']);
    redis.defineCommand('pipelineFixDouble', {
      numberOfKeys: 1,
      lua: "return redis.call('INCRBY', KEYS[1], ARGV[1]) * 2",
    });
    const viaScript = (redis as unknown as { pipelineFixDouble(k: string, n: number): Promise<number> })
      .pipelineFixDouble;
    expect(await viaScript.call(redis, `${key}:2`, 5)).toBe(10);
    const scripted = redis.pipeline() as unknown as {
      pipelineFixDouble(k: string, n: number): unknown;
      exec(): Promise<unknown>;
    };
    scripted.pipelineFixDouble(`${key}:2`, 1);
    expect(await scripted.exec()).toEqual([[null, 12]]);
  });
});
