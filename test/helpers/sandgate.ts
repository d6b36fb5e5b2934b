// Test harness: a real Sandgate (real Redis, real isolates, real queue) under a prefix of its
// own, so test files run side by side on one Redis and leave nothing behind.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { composeSandgate, type Mode, type Sandgate } from '../../bin/compose.ts';
import { type Config, loadConfig } from '../../contract/config.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every detector off. */
export const QUIET_WATCH = JSON.stringify(
  Object.fromEntries(
    ['loop', 'spike', 'cost', 'novelty', 'probing', 'tainted_flow'].map((d) => [d, { enabled: false }]),
  ),
);

export interface TestSandgate extends Sandgate {
  config: Config;
  admin: Record<string, string>;
  /** Creates an agent and returns its id and a token (optionally narrowed). */
  agent(
    grants?: { profiles?: string[]; tools?: string[]; destinations?: string[] },
    token?: Record<string, unknown>,
  ): Promise<{ id: string; token: string; auth: Record<string, string> }>;
  mint(agentId: string, body?: Record<string, unknown>): Promise<string>;
  /** Creates a human principal (operator, approver, auditor) and returns its bearer header. */
  principal(role: 'operator' | 'approver' | 'auditor', name: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL,
    SANDGATE_PREFIX: `sgtest-${randomBytes(5).toString('hex')}`,
    SANDGATE_ADMIN_TOKEN: `admin-${randomBytes(16).toString('hex')}`,
    SANDGATE_LOG_LEVEL: 'silent',
    PORT: '0',
    // Tests repeat the same call on purpose: the detectors stay out of their way unless a test
    // is about them (test/integration/watch*.test.ts turn them on).
    SANDGATE_WATCH: QUIET_WATCH,
    ...extra,
  };
}

/** A profiles directory with only the named shipped profiles: Docker pools start only where asked. */
export async function profilesDir(names: readonly string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sandgate-profiles-'));
  for (const n of names) await copyFile(join('sandbox-profiles', `${n}.yaml`), join(dir, `${n}.yaml`));
  return dir;
}

export const DOCKER_PROFILES = ['python', 'node', 'shell', 'python-gvisor'] as const;

export async function startSandgate(
  env: Record<string, string> = {},
  mode: Mode = 'all',
  profiles: readonly string[] = ['js'],
): Promise<TestSandgate> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sandgate-test-'));
  const ownProfiles = env.SANDGATE_PROFILES_DIR ? undefined : await profilesDir(profiles);
  const config = loadConfig({
    ...testEnv({ SANDGATE_DATA_DIR: dataDir, ...(ownProfiles && { SANDGATE_PROFILES_DIR: ownProfiles }) }),
    ...env,
  });
  const sg = await composeSandgate({
    config,
    mode,
    logger: pino({ level: process.env.TEST_LOG ?? 'silent' }),
    env: { ...process.env, ...env },
  });
  const admin = { authorization: `Bearer ${config.SANDGATE_ADMIN_TOKEN}` };

  const mint = async (agentId: string, body: Record<string, unknown> = {}) => {
    const res = await sg.app!.inject({
      method: 'POST',
      url: `/v1/agents/${agentId}/tokens`,
      headers: admin,
      payload: body,
    });
    if (res.statusCode !== 201) throw new Error(`mint failed: ${res.statusCode} ${res.body}`);
    return res.json().token as string;
  };

  return {
    ...sg,
    config,
    admin,
    mint,
    async agent(
      grants: { profiles?: string[]; tools?: string[]; destinations?: string[] } = { profiles: ['js'] },
      token = {},
    ) {
      const res = await sg.app!.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: admin,
        payload: { name: 'test-agent', grants },
      });
      if (res.statusCode !== 201) throw new Error(`create agent failed: ${res.statusCode} ${res.body}`);
      const id = res.json().id as string;
      const t = await mint(id, token);
      return { id, token: t, auth: { authorization: `Bearer ${t}` } };
    },
    async principal(role, name) {
      const res = await sg.app!.inject({
        method: 'POST',
        url: '/v1/principals',
        headers: admin,
        payload: { name, role },
      });
      if (res.statusCode !== 201) throw new Error(`create principal failed: ${res.statusCode} ${res.body}`);
      return { authorization: `Bearer ${res.json().token as string}` };
    },
    async stop() {
      await sg.close();
      await dropPrefix(config.SANDGATE_PREFIX);
      await rm(dataDir, { recursive: true, force: true });
      if (ownProfiles) await rm(ownProfiles, { recursive: true, force: true });
    },
  };
}

/** Removes every Redis key under a test prefix (its own keys, and its queues' `{prefix:queue}` ones). */
export async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    for (const match of [`${prefix}:*`, `{${prefix}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}

/** Polls until `check` returns a value, or fails after `ms`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  ms = 10_000,
  what = 'condition',
): Promise<Exclude<T, undefined>> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v as Exclude<T, undefined>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
