// The MaildropLocks contract for the cluster's lease in Redis, on a private redis-server.
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { RedisMaildropLocks } from '../../src/cluster/leases.js';
import { connectCluster, type ClusterConnection } from '../../src/cluster/redis.js';
import { startRedis } from '../helpers/engines/redis.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { describeMaildropLocks } from './locks.contract.js';

const TTL_MS = 1500;

async function connection(t: TestContext, url: string, nodeName: string): Promise<ClusterConnection> {
  const cluster = connectCluster({ cluster: url, nodeName }, recordingLogger());
  t.after(() => cluster.close());
  await cluster.settled();
  return cluster;
}

describeMaildropLocks(
  'a lease in Redis',
  async (t) => {
    const redis = await startRedis(t);
    const [one, two] = [await connection(t, redis.url, 'node-1'), await connection(t, redis.url, 'node-2')];
    const root = `/mail/${randomBytes(4).toString('hex')}`;
    return {
      locks: new RedisMaildropLocks(one, { ttlMs: TTL_MS }),
      other: new RedisMaildropLocks(two, { ttlMs: TTL_MS }),
      keyOf: (user) => Promise.resolve({ user, path: `${root}/${user}` }),
      ttlMs: TTL_MS,
      // Another node took the maildrop over (this lease expired meanwhile): a new owner and fencing number.
      steal: async (key) => {
        const leaseKey = one.key('lease', key.user, key.path);
        await one.redis.set(leaseKey, `999999 node-3/1/0123456789abcdef`, 'PX', 60_000);
      },
      // A node that died holding it: its connection is gone, so nothing refreshes or releases it.
      abandon: async (key) => {
        const dead = connectCluster({ cluster: redis.url, nodeName: 'node-dead' }, recordingLogger());
        await dead.settled();
        await new RedisMaildropLocks(dead, { ttlMs: TTL_MS }).acquire(key);
        await dead.close();
      },
    };
  },
  true,
);
