// One conformance suite, every engine: the same JavaScript programs through the Engine interface,
// on the isolate engine (profile js) and the Docker engine (profile node). Each engine must turn
// each program into the same status, with output, caps and usage reported the same way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionJob } from '../../contract/execution.ts';
import type { DockerProfile, Profile } from '../../contract/profile.ts';
import { loadProfiles } from '../../guard/profiles.ts';
import { createDockerEngine } from '../../runner/engines/docker/docker-engine.ts';
import type { Engine } from '../../runner/engines/engine.ts';
import { createIsolateEngine } from '../../runner/engines/isolate/isolate-engine.ts';
import { containersOf } from '../helpers/docker.ts';
import { engineJob } from '../helpers/engine-job.ts';

const prefix = `sgconf-${process.pid}`;
const engines: Array<{ name: string; engine: Engine; profile: Profile }> = [];

beforeAll(async () => {
  const profiles = await loadProfiles('sandbox-profiles');
  const node = { ...(profiles.get('node') as DockerProfile), pool: 1 };
  engines.push({ name: 'isolate', engine: createIsolateEngine({ threads: 1 }), profile: profiles.get('js')! });
  engines.push({
    name: 'docker',
    engine: createDockerEngine({ profiles: [node], prefix, owner: 'conformance', isOwnerAlive: async () => true }),
    profile: node,
  });
});
afterAll(async () => {
  for (const { engine } of engines) await engine.close();
  expect(await containersOf(prefix)).toEqual([]);
});

const cases = ['isolate', 'docker'] as const;
const get = (name: string) => engines.find((e) => e.name === name)!;

describe.each(cases)('the %s engine', (name) => {
  const runIt = (code: string, limits?: Partial<ExecutionJob['limits']>, signal = new AbortController().signal) => {
    const { engine, profile } = get(name);
    return engine.run(engineJob(profile, code, limits), profile, signal);
  };

  it('succeeds with stdout and stderr apart, and usage', async () => {
    const r = await runIt('console.log("out"); console.error("err")');
    expect(r).toMatchObject({ status: 'succeeded', exitCode: 0, stdout: 'out\n', stderr: 'err\n', truncated: false });
    expect(r.usage.wallMs).toBeGreaterThan(0);
    expect(r.usage.cpuMs).toBeGreaterThan(0);
    expect(r.usage.memoryBytes).toBeGreaterThan(0);
  });

  it('turns an uncaught exception into failed, exit code 1', async () => {
    const r = await runIt('throw new Error("boom")');
    expect(r.status).toBe('failed');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('boom');
  });

  it('stops an endless loop at the wall clock: timed_out', async () => {
    const r = await runIt('for (;;) {}', { timeoutMs: 500 });
    expect(r.status).toBe('timed_out');
    expect(r.usage.wallMs).toBeGreaterThanOrEqual(450);
    expect(r.usage.wallMs).toBeLessThan(4000);
  });

  it('stops a memory bomb: memory_exceeded', async () => {
    const r = await runIt('const a = []; for (;;) a.push(new Array(1e6).fill(Math.random()));', {
      memoryMb: 64,
      timeoutMs: 10_000,
    });
    expect(r.status).toBe('memory_exceeded');
  });

  it('cuts an output flood at the cap: truncated', async () => {
    const r = await runIt('for (let i = 0; i < 20000; i++) console.log("flood flood flood");', { outputBytes: 4096 });
    expect(r.truncated).toBe(true);
    expect(Buffer.byteLength(r.stdout) + Buffer.byteLength(r.stderr)).toBeLessThanOrEqual(4096);
  });

  it('cancels on abort: cancelled', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const r = await runIt('for (;;) {}', { timeoutMs: 5000 }, controller.signal);
    expect(r.status).toBe('cancelled');
    expect(r.usage.wallMs).toBeLessThan(4000);
  });

  it('has no network', async () => {
    const code =
      name === 'isolate'
        ? 'typeof fetch === "undefined" ? console.log("no network") : console.log("network")'
        : 'require("net").connect(53, "1.1.1.1").on("error", () => console.log("no network")).on("connect", () => console.log("network"))';
    const r = await runIt(code);
    expect(r.stdout).toBe('no network\n');
  });
});
