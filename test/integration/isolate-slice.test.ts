// A js run's synchronous part runs on its isolate thread (runSync) for at most a slice; past it,
// that attempt is thrown away unseen and the run starts again from the start, asynchronously.
// Both ways (slice 5 ms, and 0: always async) must give the same results, and nothing of a
// thrown-away attempt may be seen: no output (returned or streamed), no tool call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Profile } from '../../contract/profile.ts';
import type { Engine } from '../../runner/engines/engine.ts';
import type { OutputListener } from '../../runner/engines/output-collector.ts';
import { engineJob, isolateWithToolLog } from '../helpers/engine-job.ts';

/** Spins the CPU for `ms` (Date.now: no timers in an isolate). */
const spin = (ms: number) => `{ const t = Date.now(); while (Date.now() - t < ${ms}) {} }`;

describe.each([5, 0])('an isolate engine with a synchronous slice of %i ms', (syncSliceMs) => {
  let engine: Engine;
  let profile: Profile;
  let calls: unknown[];
  let restarts = 0;
  beforeAll(async () => {
    ({ engine, profile, calls } = await isolateWithToolLog({ syncSliceMs, onRestarted: () => restarts++ }));
  });
  afterAll(() => engine.close());

  const run = (code: string, timeoutMs = 5000, output?: OutputListener, signal = new AbortController().signal) =>
    engine.run(engineJob(profile, code, { timeoutMs }), profile, signal, output);

  it('a run that outlasts the slice gives its output, streamed output and tool call once each', async () => {
    calls.length = 0;
    const restartsBefore = restarts;
    const streamed: string[] = [];
    const listener: OutputListener = {
      write: (fd, data) => streamed.push(`${fd}:${data.toString()}`),
      truncated: () => streamed.push('truncated'),
    };
    const r = await run(
      `(async () => {
        console.log('start');
        const answer = tools.call('probe', { n: 1 });
        ${spin(40)}
        console.error('spun');
        return await answer;
      })()`,
      5000,
      listener,
    );
    expect(r).toMatchObject({ status: 'succeeded', result: 'answered', stdout: 'start\n', stderr: 'spun\n' });
    expect(calls).toEqual([['probe', { n: 1 }]]);
    expect(streamed).toEqual(['1:start\n', '2:spun\n']);
    expect(r.usage.cpuMs).toBeGreaterThanOrEqual(35);
    expect(restarts - restartsBefore).toBe(syncSliceMs > 0 ? 1 : 0); // started again once, or never sliced
  });

  it('a run that fails on the thread streams its output and its error, as one that succeeds does', async () => {
    const streamed: string[] = [];
    const listener: OutputListener = {
      write: (fd, data) => streamed.push(`${fd}:${data.toString()}`),
      truncated: () => {},
    };
    const r = await run(`console.log('before'); throw new Error('boom')`, 5000, listener);
    expect(r).toMatchObject({ status: 'failed', stdout: 'before\n' });
    expect(streamed[0]).toBe('1:before\n');
    expect(streamed.join('')).toContain('boom');
  });

  it('a flood cut at the cap in a thrown-away attempt is cut once, in the attempt that counts', async () => {
    const streamed: string[] = [];
    const listener: OutputListener = { write: () => streamed.push('w'), truncated: () => streamed.push('cut') };
    const r = await run(`for (let i = 0; i < 5000; i++) console.log('flood flood'); ${spin(30)} 1`, 5000, listener);
    expect(r).toMatchObject({ status: 'succeeded', truncated: true, result: 1 });
    expect(streamed.filter((s) => s === 'cut')).toHaveLength(1);
    expect(Buffer.byteLength(r.stdout)).toBeLessThanOrEqual(4096);
  });

  it.each([
    ['a plain value', '6 * 7', 42],
    ['an object', '({ a: [1, 2] })', { a: [1, 2] }],
    ['a promise', '(async () => { await null; return 42 })()', 42],
    ['a promise after Promise is replaced', 'globalThis.Promise = function Fake() {}; (async () => 7)()', 7],
    [
      'a promise after Promise claims nothing is one',
      'Object.defineProperty(Promise, Symbol.hasInstance, { value: () => false }); (async () => 8)()',
      8,
    ],
    ['a Proxy whose prototype trap throws', 'new Proxy({}, { getPrototypeOf() { throw 1 } })', {}],
    ['a Proxy whose prototype trap never ends', 'new Proxy({}, { getPrototypeOf() { for (;;) {} } })', {}],
    ['after JSON.stringify is replaced', 'JSON.stringify = () => "forged"; ({ a: 1 })', { a: 1 }],
    ['with a toJSON', '({ toJSON() { return [1, 2] } })', [1, 2]],
    ['a string', '"a\\"b\\u00e9\\n" + "\\u2028"', 'a"b\u00e9\n\u2028'],
    ['a boolean', '1 > 2', false],
    ['NaN', '0 / 0', null],
    ['-Infinity', '-1 / 0', null],
    ['-0', '-0', 0],
    ['null', 'null', null],
    ['a String object', 'new String("boxed")', 'boxed'],
  ])('completion value: %s', async (_, code, expected) => {
    const r = await run(code, 2000);
    expect(r).toMatchObject({ status: 'succeeded' });
    expect(r.result).toEqual(expected);
  });

  it.each([
    ['undefined', 'undefined', undefined],
    ['a BigInt', '10n', 'not JSON-serializable'],
    ['a symbol', 'Symbol("s")', 'not JSON-serializable'],
    ['a function', '() => 1', 'not JSON-serializable'],
  ])('completion value with no JSON: %s', async (_, code, stderr) => {
    const r = await run(code, 2000);
    expect(r).toMatchObject({ status: 'succeeded' });
    expect(r.result).toBeUndefined();
    if (stderr) expect(r.stderr).toContain(stderr);
    else expect(r.stderr).toBe('');
  });

  it('a string completion value over the output cap is dropped, not copied out whole', async () => {
    const r = await run('"x".repeat(64 * 1024)', 2000);
    expect(r).toMatchObject({ status: 'succeeded', truncated: true });
    expect(r.result).toBeUndefined();
    expect(r.stderr).toContain('completion value is larger than');
  });

  it('a promise that rejects fails the run with its error', async () => {
    const r = await run(`(async () => { ${spin(20)} throw new Error('late boom') })()`);
    expect(r).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(r.stderr).toContain('late boom');
  });

  it.each([3, 8, 200])('an endless loop with a %i ms timeout ends timed_out', async (timeoutMs) => {
    const r = await run('for (;;) {}', timeoutMs);
    expect(r.status).toBe('timed_out');
    expect(r.usage.wallMs).toBeLessThan(timeoutMs + 2000);
  });

  it('a run that fills its memory in its first milliseconds: memory_exceeded', async () => {
    const r = await run('const a = []; for (;;) a.push(new Array(1e6).fill(1.5));');
    expect(r.status).toBe('memory_exceeded');
  });

  it.each([
    ['spins', 'for (;;) {}'],
    ['has a completion value whose toJSON spins', '({ toJSON() { for (;;) {} } })'],
    ['has a promise whose value has a getter that spins', '(async () => ({ get x() { for (;;) {} } }))()'],
  ])(
    'a busy run (it %s) holds its thread no longer than a slice: a short run beside it ends, and a cancel reaches it',
    async (_, code) => {
      const controller = new AbortController();
      const busy = run(code, 10_000, undefined, controller.signal);
      await new Promise((r) => setTimeout(r, 50));
      const started = performance.now();
      const short = await run('6 * 7');
      const shortMs = performance.now() - started;
      expect(short).toMatchObject({ status: 'succeeded', result: 42 });
      expect(shortMs).toBeLessThan(2000); // the busy run has 10 s left: it did not wait for it
      controller.abort();
      const ended = await busy;
      expect(ended.status).toBe('cancelled');
      expect(ended.usage.wallMs).toBeLessThan(9000);
    },
  );
});
