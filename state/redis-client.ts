// The one way a Redis connection is made: a single node (`redis://`, `rediss://`, the default) or
// a Redis Cluster (`redis+cluster://host:port,host:port`, `rediss+cluster://…` for TLS), with the
// same options either way (timeouts, retries, the offline queue), so every caller, BullMQ's
// included, gets what the URL names. On a cluster, the key layout (state/keys.ts) keeps each
// agent's scripts and transactions in one slot; pub/sub is the cluster's (published everywhere).
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { installCommandTimerFix } from './command-timer-fix.ts';
import { installPipelineLengthFix } from './pipeline-length-fix.ts';

export type RedisClient = Redis | Cluster;

export interface ClusterAddress {
  nodes: Array<{ host: string; port: number }>;
  username?: string;
  password?: string;
  tls: boolean;
}

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#@]+)\/?(\d*)$/;
const NODE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** A flat `field, value, field, value…` reply (HGETALL in a script, a stream entry) as an object. */
export function pairsOf(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

export const isClusterUrl = (url: string): boolean => /^rediss?\+cluster:/.test(url);

/** The seed nodes and credentials of a cluster URL; throws on a malformed one (a config error). */
export function parseClusterUrl(url: string): ClusterAddress {
  const m = CLUSTER_URL.exec(url);
  if (!m) throw new Error('a cluster URL is redis+cluster://[user:password@]host:port[,host:port…]');
  const [, scheme, auth, hosts, db] = m;
  if (db && db !== '0') throw new Error('Redis Cluster has only database 0');
  const nodes = hosts!.split(',').map((h) => {
    const n = NODE.exec(h);
    const port = Number(n?.[2]);
    if (!n || port < 1 || port > 65_535) throw new Error(`"${h}" is not host:port`);
    return { host: n[1]!.replace(/^\[|\]$/g, ''), port };
  });
  const [user, password] = auth ? auth.split(':', 2).map(decodeURIComponent) : [];
  return {
    nodes,
    ...(user && { username: user }),
    ...(password !== undefined && { password }),
    tls: scheme === 'rediss',
  };
}

/**
 * A client for the URL. Options are a single node's; on a cluster the cluster-wide ones
 * (lazyConnect, the offline queue, auto-pipelining) go to the cluster and the rest to each node.
 */
export function createRedisClient(url: string, options: RedisOptions = {}): RedisClient {
  installPipelineLengthFix();
  installCommandTimerFix();
  if (!isClusterUrl(url)) return new Redis(url, options);
  const { nodes, username, password, tls } = parseClusterUrl(url);
  const { lazyConnect, enableOfflineQueue, enableAutoPipelining, ...node } = options;
  return new Cluster(nodes, {
    ...(lazyConnect !== undefined && { lazyConnect }),
    ...(enableOfflineQueue !== undefined && { enableOfflineQueue }),
    ...(enableAutoPipelining !== undefined && { enableAutoPipelining }),
    // Writes and reads go to masters: a replica's copy may lag behind a budget or a revocation.
    scaleReads: 'master',
    // Reconnect to the cluster as a node would (backing off, never giving up): requests meanwhile
    // fail fast (503) where the offline queue is off.
    clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    redisOptions: {
      ...node,
      ...(username && { username }),
      ...(password !== undefined && { password }),
      ...(tls && { tls: {} }),
    },
  });
}
