// Every run is billed for what it used, whatever its ending. A program that spins until it is
// stopped (timed_out, cancelled, runner shutdown) or runs out of memory reports its measured CPU
// time and peak memory, and the task is charged that; a run whose usage cannot be measured (its
// container vanished) is charged its worst case, never zero. Both engines.
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containersOf } from '../helpers/docker.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

const docker = new Dockerode();
// Prices of the shipped profiles (sandbox-profiles/*.yaml).
const PER_RUN = { js: 0.00001, python: 0.0001 } as const;
type Engine = keyof typeof PER_RUN;
// The python spinner prints the CPU time it has had so far, so the test can hold the engine's
// measurement against the program's own view whatever else the machine is doing.
const SPIN: Record<Engine, string> = {
  js: 'while (true) {}',
  python:
    'import time\nnext = 0\nwhile True:\n    t = time.process_time()\n    if t >= next:\n        print(f"cpu {t:.3f}", flush=True)\n        next = t + 0.05',
};
/**
 * The last CPU time the python spinner printed in full (ms), 0 for js. The kill may cut the last
 * line short ("cpu 1.4" or "cp"): only a figure with its three decimals counts.
 */
const selfReportedMs = (stdout: string) => 1000 * Number([...stdout.matchAll(/cpu (\d+\.\d{3})/g)].at(-1)?.[1] ?? 0);
const HOG: Record<Engine, string> = {
  js: 'const a = []; while (true) a.push(new Array(1e6).fill(1.5));',
  python: 'a = []\nwhile True:\n    a.append(bytearray(16 * 1024 * 1024))',
};

let sg: TestSandgate;
let auth: Record<string, string>;

beforeAll(async () => {
  sg = await startSandgate({ SANDGATE_SHUTDOWN_GRACE_MS: '200' }, 'all', ['js', 'python']);
  ({ auth } = await sg.agent({ profiles: ['js', 'python'] }));
});
afterAll(async () => {
  const prefix = sg.config.SANDGATE_PREFIX;
  await sg?.stop();
  expect(await containersOf(prefix)).toEqual([]);
});

const inject = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: Record<string, unknown>) =>
  sg.app!.inject({ method, url, headers: auth, ...(payload !== undefined && { payload }) });

async function task(): Promise<string> {
  const res = await inject('POST', '/v1/tasks', { goal: 'metering', budget: { maxSpend: 100 } });
  expect(res.statusCode).toBe(201);
  return res.json().id;
}

async function submit(profile: Engine, code: string, extra: Record<string, unknown> = {}) {
  const taskId = await task();
  const res = await inject('POST', '/v1/executions', { profile, code, taskId, ...extra });
  expect(res.statusCode).toBe(202);
  return { id: res.json().id as string, taskId };
}

const get = async (id: string) => (await inject('GET', `/v1/executions/${id}`)).json();
const final = (id: string, ms = 20_000) =>
  eventually(
    async () => {
      const r = await get(id);
      return ['queued', 'running'].includes(r.status) ? undefined : r;
    },
    ms,
    `execution ${id} to end`,
  );
const running = (id: string) =>
  eventually(async () => ((await get(id)).status === 'running' ? true : undefined), 20_000, 'running');

/** The run's settled cost is what its task was charged, and nothing stays reserved. */
async function expectBilled(taskId: string, r: { usage: { cost: number } }) {
  const t = await eventually(
    async () => {
      const body = (await inject('GET', `/v1/tasks/${taskId}`)).json();
      return body.reserved.spend === 0 ? body : undefined;
    },
    5000,
    'settled',
  );
  expect(t.used.spend).toBeCloseTo(r.usage.cost, 9);
}

function expectSpun(
  profile: Engine,
  r: { stdout: string; usage: { cpuMs: number; wallMs: number; cost: number; measured: boolean } },
  spunMs: number,
) {
  expect(r.usage.measured).toBe(true);
  if (profile === 'python') {
    // About the CPU time the program itself saw before it was stopped: the engine reads the
    // cgroup, then kills, so the program may print a little more in between.
    expect(r.usage.cpuMs).toBeGreaterThanOrEqual(selfReportedMs(r.stdout) - 150);
    expect(selfReportedMs(r.stdout)).toBeGreaterThan(0);
  } else {
    // A spinning isolate's CPU time is close to the time it spun (its own thread).
    expect(r.usage.cpuMs).toBeGreaterThan(spunMs * 0.5);
  }
  expect(r.usage.cpuMs).toBeLessThanOrEqual(r.usage.wallMs * 1.1 + 50);
  expect(r.usage.cost).toBeGreaterThan(PER_RUN[profile]);
}

describe.each(['js', 'python'] as const)('a %s run is billed for what it used', (profile) => {
  it('timed_out: CPU time close to the timeout, cost above the per-run price', async () => {
    const { id, taskId } = await submit(profile, SPIN[profile], { timeoutMs: 1500 });
    const r = await final(id);
    expect(r.status).toBe('timed_out');
    expectSpun(profile, r, 1500);
    await expectBilled(taskId, r);
  });

  it('cancelled mid-run: the CPU time it spun until the cancel', async () => {
    const { id, taskId } = await submit(profile, SPIN[profile], { timeoutMs: 4500 });
    await running(id);
    await new Promise((r) => setTimeout(r, 1200));
    expect((await inject('DELETE', `/v1/executions/${id}`)).statusCode).toBeLessThan(300);
    // Final at once; the runner then adds what the run used.
    const r = await eventually(
      async () => {
        const body = await get(id);
        return body.status === 'cancelled' && body.usage.measured !== undefined ? body : undefined;
      },
      10_000,
      'the usage of the cancelled run',
    );
    expectSpun(profile, r, 800);
    await expectBilled(taskId, r);
  });

  it('memory_exceeded: measured CPU and peak memory near the limit', async () => {
    const { id, taskId } = await submit(profile, HOG[profile], { memoryMb: 64 });
    const r = await final(id);
    expect(r.status).toBe('memory_exceeded');
    expect(r.usage.measured).toBe(true);
    expect(r.usage.cpuMs).toBeGreaterThan(0);
    expect(r.usage.memoryBytes).toBeGreaterThan(32 * 1024 * 1024);
    expect(r.usage.cost).toBeGreaterThan(PER_RUN[profile]);
    await expectBilled(taskId, r);
  });
});

describe('a run stopped by a runner shutdown', () => {
  it.each(['js', 'python'] as const)('is billed for what it used (%s)', async (profile) => {
    // An instance of its own: its runner shuts down under the run while its API stays up.
    const other = await startSandgate({ SANDGATE_SHUTDOWN_GRACE_MS: '200' }, 'all', [profile]);
    try {
      const agent = await other.agent({ profiles: [profile] });
      const call = (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
        other.app!.inject({ method, url, headers: agent.auth, ...(payload !== undefined && { payload }) });
      const taskId = (await call('POST', '/v1/tasks', { goal: 'shutdown', budget: { maxSpend: 100 } })).json().id;
      const id = (
        await call('POST', '/v1/executions', { profile, code: SPIN[profile], taskId, timeoutMs: 4500 })
      ).json().id;
      await eventually(
        async () => ((await call('GET', `/v1/executions/${id}`)).json().status === 'running' ? true : undefined),
        20_000,
        'running',
      );
      await new Promise((r) => setTimeout(r, 1000));
      await other.runner!.close(200);
      const r = (await call('GET', `/v1/executions/${id}`)).json();
      expect(r.status).toBe('cancelled');
      expect(r.error.code).toBe('runner_shutdown');
      expectSpun(profile, r, 700);
      const t = await eventually(
        async () => {
          const body = (await call('GET', `/v1/tasks/${taskId}`)).json();
          return body.reserved.spend === 0 ? body : undefined;
        },
        5000,
        'settled',
      );
      expect(t.used.spend).toBeCloseTo(r.usage.cost, 9);
    } finally {
      await other.stop();
    }
  });
});

describe('usage that cannot be measured', () => {
  it('a container removed under the run: sandbox_died, charged the worst case, not zero', async () => {
    const { id, taskId } = await submit('python', SPIN.python, { timeoutMs: 5000 });
    await running(id);
    // The container running the program: the only one of this instance with python3 running.
    const victim = await eventually(
      async () => {
        for (const c of await containersOf(sg.config.SANDGATE_PREFIX)) {
          const top = await docker
            .getContainer(c.Id)
            .top()
            .catch(() => undefined);
          if (top?.Processes?.some((p: string[]) => p.join(' ').includes('main.py'))) return c.Id;
        }
        return undefined;
      },
      10_000,
      'the run container',
    );
    await docker.getContainer(victim).remove({ force: true });
    const r = await final(id);
    expect(r.status).toBe('failed');
    expect(r.error.code).toBe('sandbox_died');
    expect(r.usage.measured).toBe(false);
    // python: perRun 0.0001 + perCpuSecond 0.001 × 5 s × 1 CPU = 0.0051
    expect(r.usage.cost).toBeCloseTo(0.0051, 9);
    await expectBilled(taskId, r);
  });
});
