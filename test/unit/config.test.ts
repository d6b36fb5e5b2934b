import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../contract/config.ts';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      PORT: 8080,
      HOST: '127.0.0.1',
      REDIS_URL: 'redis://127.0.0.1:6379',
      SANDGATE_DATA_DIR: './data',
      SANDGATE_PREFIX: 'sandgate',
    });
    expect(c.SANDGATE_ADMIN_TOKEN).toBeUndefined();
  });

  it('is frozen', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => {
      (c as { PORT: number }).PORT = 1;
    }).toThrow(TypeError);
  });

  it('names every bad variable in one message', () => {
    expect(() => loadConfig({ PORT: 'eighty', REDIS_URL: 'http://x', SANDGATE_PREFIX: 'Bad Prefix!' })).toThrow(
      /PORT[\s\S]*REDIS_URL[\s\S]*SANDGATE_PREFIX/,
    );
  });

  it('refuses a short admin token', () => {
    expect(() => loadConfig({ SANDGATE_ADMIN_TOKEN: 'short' })).toThrow(/SANDGATE_ADMIN_TOKEN/);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '' }).PORT).toBe(8080);
  });

  it('gives every connection deadlines well under a minute, headers first', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      SANDGATE_REQUEST_TIMEOUT_MS: 20_000,
      SANDGATE_HEADERS_TIMEOUT_MS: 10_000,
      SANDGATE_KEEP_ALIVE_TIMEOUT_MS: 5000,
      SANDGATE_MAX_CONNECTIONS: 1000,
      SANDGATE_MAX_REQUESTS_PER_SOCKET: 1000,
    });
    expect(() => loadConfig({ SANDGATE_HEADERS_TIMEOUT_MS: '30000', SANDGATE_REQUEST_TIMEOUT_MS: '20000' })).toThrow(
      /SANDGATE_HEADERS_TIMEOUT_MS: must not exceed SANDGATE_REQUEST_TIMEOUT_MS/,
    );
  });
});

describe('the configuration table in the README', () => {
  it('documents every variable the service reads', async () => {
    const { readFileSync } = await import('node:fs');
    const { ConfigSchema } = await import('../../contract/config.ts');
    const readme = readFileSync('README.md', 'utf8');
    const table = readme.slice(
      readme.indexOf('## Configuration'),
      readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1),
    );
    const missing = Object.keys(ConfigSchema.shape).filter((k) => !table.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });
});
