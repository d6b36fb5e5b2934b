import { describe, expect, it } from 'vitest';
import { CreateAgentRequest, CreateTokenRequest } from '../../contract/agent.ts';
import { ERRORS, SandgateError } from '../../contract/errors.ts';
import { ExecutionRequest, isFinal } from '../../contract/execution.ts';

describe('error registry', () => {
  it('has stable snake_case codes with HTTP error statuses', () => {
    for (const [code, status] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
  });

  it('gives each SandgateError the status of its code', () => {
    const e = new SandgateError('rate_limited', 'slow down', { 'retry-after': '3' });
    expect(e.status).toBe(429);
    expect(e.headers['retry-after']).toBe('3');
  });
});

describe('ExecutionRequest', () => {
  it('accepts the minimal request', () => {
    expect(ExecutionRequest.parse({ profile: 'js', code: '1' })).toEqual({
      profile: 'js',
      code: '1',
      untrusted: false,
    });
  });

  it.each([
    [{ profile: 'js' }, 'code'],
    [{ profile: 'JS!', code: '1' }, 'profile'],
    [{ profile: 'js', code: '1', timeoutMs: 0 }, 'timeoutMs'],
    [{ profile: 'js', code: '1', memoryMb: 1.5 }, 'memoryMb'],
    [{ profile: 'js', code: '1', extra: 1 }, ''],
    [{ profile: 'js', code: '1', files: [{ path: 'a', content: 'b', encoding: 'rot13' }] }, 'files'],
  ])('refuses %j', (input, field) => {
    const r = ExecutionRequest.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path.join('.')).toContain(field);
  });
});

describe('agents and tokens', () => {
  it('defaults grants to nothing (fail closed)', () => {
    const a = CreateAgentRequest.parse({ name: 'x', grants: {} });
    expect(a.grants).toEqual({ profiles: [], tools: [], destinations: [] });
  });

  it('caps a token at 3600 s and defaults it to 900 s', () => {
    expect(CreateTokenRequest.parse({}).ttlSeconds).toBe(900);
    expect(CreateTokenRequest.safeParse({ ttlSeconds: 3601 }).success).toBe(false);
  });
});

describe('statuses', () => {
  it('knows which are final', () => {
    expect(isFinal('queued')).toBe(false);
    expect(isFinal('running')).toBe(false);
    expect(isFinal('timed_out')).toBe(true);
    expect(isFinal('cancelled')).toBe(true);
  });
});
