// REDIS_URL names one node or a cluster; a cluster URL is parsed strictly (a typo is a start-up
// error, not a connection to somewhere else).
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../contract/config.ts';
import { createRedisClient, parseClusterUrl } from '../../state/redis-client.ts';

describe('cluster URLs', () => {
  it('reads seed nodes, credentials and TLS', () => {
    expect(parseClusterUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7001')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
      tls: false,
    });
    expect(parseClusterUrl('rediss+cluster://app:s%40cret@redis.internal:6380/0')).toEqual({
      nodes: [{ host: 'redis.internal', port: 6380 }],
      username: 'app',
      password: 's@cret',
      tls: true,
    });
    expect(parseClusterUrl('redis+cluster://[::1]:7000').nodes).toEqual([{ host: '::1', port: 7000 }]);
  });

  it.each([
    'redis+cluster://',
    'redis+cluster://host',
    'redis+cluster://host:0',
    'redis+cluster://host:70000',
    'redis+cluster://host:7000,',
    'redis+cluster://host:7000/3',
    'redis+cluster://host:7000?x=1',
    'redis+cluster://ho st:7000',
  ])('refuses %s', (url) => {
    expect(() => parseClusterUrl(url)).toThrow();
  });

  it('makes a Cluster client for a cluster URL and a single-node one otherwise', () => {
    const cluster = createRedisClient('redis+cluster://127.0.0.1:1,127.0.0.1:2', { lazyConnect: true });
    const node = createRedisClient('redis://127.0.0.1:1', { lazyConnect: true });
    expect(cluster).toBeInstanceOf(Cluster);
    expect(node).toBeInstanceOf(Redis);
    cluster.disconnect();
    node.disconnect();
  });

  it('is accepted as REDIS_URL; other schemes are not', () => {
    expect(loadConfig({ REDIS_URL: 'redis+cluster://a:1,b:2' }).REDIS_URL).toBe('redis+cluster://a:1,b:2');
    expect(() => loadConfig({ REDIS_URL: 'redis+cluster://a' })).toThrow(/REDIS_URL/);
    expect(() => loadConfig({ REDIS_URL: 'http+cluster://a:1' })).toThrow(/REDIS_URL/);
  });
});
