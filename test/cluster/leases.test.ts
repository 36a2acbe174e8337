// The lease in Redis beyond the contract: fencing in confirm(), Redis down at acquire and while a
// lease is held, a dead node's lease expiring, and the log lines.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Pop3Error, RespCode } from '../../src/errors.js';
import { RedisMaildropLocks } from '../../src/cluster/leases.js';
import { connectCluster, type ClusterConnection } from '../../src/cluster/redis.js';
import { startRedis } from '../helpers/engines/redis.js';
import { recordingLogger } from '../helpers/recording-logger.js';

const KEY = { user: 'alice', path: '/mail/alice' };

async function connection(t: TestContext, url: string, nodeName = 'node-1'): Promise<ClusterConnection> {
  const cluster = connectCluster({ cluster: url, nodeName }, recordingLogger(), {
    commandTimeoutMs: 300,
    connectTimeoutMs: 500,
  });
  t.after(() => cluster.close());
  await cluster.settled();
  return cluster;
}

/** Polls `check` every 20 ms until it holds, for at most `ms`. */
async function until(check: () => Promise<boolean> | boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < end, `timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const isCoded = (code: string) => (error: unknown) => {
  assert.ok(error instanceof Pop3Error, String(error));
  assert.equal(error.code, code);
  return true;
};

test('confirm() checks the fencing number: the same owner under a newer fencing number is not ours', async (t) => {
  const redis = await startRedis(t);
  const cluster = await connection(t, redis.url);
  const lease = await new RedisMaildropLocks(cluster, { ttlMs: 3000 }).acquire(KEY);
  t.after(() => lease.release());
  await lease.confirm();
  const leaseKey = cluster.key('lease', KEY.user, KEY.path);
  const value = (await cluster.redis.get(leaseKey)) ?? '';
  const [fencing, owner] = value.split(' ');
  assert.equal(Number(fencing), lease.fencing);
  // The lease expired and was taken again, by a session whose owner token is the same string.
  await cluster.redis.set(leaseKey, `${lease.fencing + 1} ${owner ?? ''}`, 'PX', 60_000);
  await assert.rejects(lease.confirm(), /maildrop lock lost/);
  assert.equal(lease.lost.aborted, true);
  await lease.release();
  assert.equal(await cluster.redis.get(leaseKey), `${lease.fencing + 1} ${owner ?? ''}`, 'release spares it');
});

test('the holder refreshes its lease; a lease whose refresh stopped expires after the TTL', async (t) => {
  const redis = await startRedis(t);
  const cluster = await connection(t, redis.url);
  const leaseKey = cluster.key('lease', KEY.user, KEY.path);
  const lease = await new RedisMaildropLocks(cluster, { ttlMs: 1200 }).acquire(KEY);
  // Refreshed: over three TTLs, its time to live never runs out and goes back up again and again.
  let [previous, rises] = [await cluster.redis.pttl(leaseKey), 0];
  for (const end = Date.now() + 3 * 1200; Date.now() < end;) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const pttl = await cluster.redis.pttl(leaseKey);
    assert.ok(pttl > 0, `the lease ran out (${pttl})`);
    if (pttl > previous) rises += 1;
    previous = pttl;
  }
  assert.ok(rises >= 3, `refreshed ${rises} times`);
  // A dead node: its connection gone, nothing refreshes or releases the lease, which expires.
  const dead = await connection(t, redis.url, 'node-dead');
  const other = await connection(t, redis.url, 'node-2');
  await lease.release();
  await new RedisMaildropLocks(dead, { ttlMs: 2000 }).acquire(KEY);
  await dead.close();
  assert.ok((await cluster.redis.pttl(leaseKey)) > 0);
  await assert.rejects(new RedisMaildropLocks(other, { ttlMs: 2000 }).acquire(KEY), isCoded(RespCode.inUse));
  await until(async () => (await cluster.redis.exists(leaseKey)) === 0, "the dead node's lease expires");
  const next = await new RedisMaildropLocks(other, { ttlMs: 2000 }).acquire(KEY);
  await next.release();
});

test('Redis down: a login gets [SYS/TEMP] at once; a held lease is lost once it cannot be refreshed, and confirms no more', async (t) => {
  const redis = await startRedis(t);
  const cluster = await connection(t, redis.url);
  const logger = recordingLogger();
  const locks = new RedisMaildropLocks(cluster, { ttlMs: 1500, logger });
  const lease = await locks.acquire(KEY);
  t.after(() => lease.release());
  await redis.stop();
  await assert.rejects(locks.acquire({ user: 'bob', path: '/mail/bob' }), isCoded(RespCode.sysTemp));
  await until(() => lease.lost.aborted, 'the lease is lost');
  await assert.rejects(lease.confirm(), /maildrop lock lost/);
  assert.ok(
    logger.lines.some((l) => l.includes('maildrop lease could not be refreshed in time')),
    logger.lines.join('\n'),
  );
  assert.ok(!logger.lines.some((l) => /pass(word)?=/i.test(l)));
});

test('Redis frozen (no answer): acquire fails within the command timeout with [SYS/TEMP]', async (t) => {
  const redis = await startRedis(t);
  const cluster = await connection(t, redis.url);
  redis.pause();
  t.after(() => {
    redis.resume();
  });
  await assert.rejects(new RedisMaildropLocks(cluster).acquire(KEY), isCoded(RespCode.sysTemp));
});
