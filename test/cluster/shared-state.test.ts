// Two or three Poplar servers (library level) sharing one private Redis: the login throttle, the
// per-address connection limit and the monitor's sessions list and kick hold over every node.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { clusterCounters } from '../../src/cluster/counters.js';
import { ClusterMonitoredPop3 } from '../../src/cluster/monitor.js';
import { connectCluster, type ClusterConnection } from '../../src/cluster/redis.js';
import type { Logger } from '../../src/log.js';
import { resolveLimits, type Pop3Limits } from '../../src/pop3/limits.js';
import { reach } from '../helpers/cluster-state.js';
import { startRedis, type RedisEngine } from '../helpers/engines/redis.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { startServer, type StartedServer } from '../helpers/start-server.js';

interface Node extends StartedServer {
  readonly name: string;
  readonly cluster: ClusterConnection;
  readonly counters: ReturnType<typeof clusterCounters>;
  readonly monitored: ClusterMonitoredPop3;
  readonly logger: Logger & { lines: string[] };
}

const fast = { reconnectStepMs: 10, reconnectMaxMs: 50 };

async function startNode(
  t: TestContext,
  redis: RedisEngine,
  name: string,
  limits: Partial<Pop3Limits> = {},
): Promise<Node> {
  const logger = recordingLogger();
  const cluster = connectCluster({ cluster: redis.url, nodeName: name }, logger, fast);
  await cluster.settled();
  const counters = clusterCounters(cluster, undefined, logger);
  const started = await startServer(t, {
    counters,
    limits,
    logger,
    mailboxes: { alice: ['Subject: 1\r\n\r\nHi\r\n'], bob: [] },
  });
  const monitored = new ClusterMonitoredPop3(cluster, started.server, logger);
  cluster.beforeClose(() => monitored.close());
  // A node joins the monitor's registry once it hears the asks.
  await until(
    async () => (await cluster.run((r) => r.zscore(cluster.key('monitor', 'nodes'), name))) !== null,
    `${name} in the registry`,
  );
  // After the server's close (registered by startServer): sessions end before Redis goes.
  t.after(() => cluster.close());
  return { ...started, name, cluster, counters, monitored, logger };
}

async function connect(t: TestContext, node: Node): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(node.port);
  t.after(() => {
    client.close();
  });
  return client;
}

async function failLogin(t: TestContext, node: Node, user: string): Promise<void> {
  const client = await connect(t, node);
  assert.match(await client.command(`USER ${user}`), /^\+OK/);
  assert.match(await client.command('PASS wrong'), /^-ERR \[AUTH\]/);
  client.close();
}

/** Resolves once `predicate` holds, polling every few ms; gives up (fails) after 10 s, never hangs. */
async function until(predicate: () => boolean | Promise<boolean>, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`${what} did not come true within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const LIMITS = resolveLimits({ authFailureDelayMs: 0 });

test('failed logins on node A count on node B: its verdicts and its copy see them', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis, 'a');
  const b = await startNode(t, redis, 'b');
  await failLogin(t, a, 'alice');
  await failLogin(t, a, 'alice');
  // B's next failure is the third of the address and of the name, counted in Redis.
  const verdict = await b.counters.loginThrottle.fail('127.0.0.1', 'alice', LIMITS);
  assert.equal(verdict.addressFailures, 3);
  assert.equal(verdict.userFailures, 3);
  // A success on B is judged without a round trip, from the copy A's news keeps up to date.
  await until(() => a.counters.loginThrottle.check('127.0.0.1', 'bob', LIMITS).addressFailures === 3);
  assert.equal(b.counters.loginThrottle.check('127.0.0.1', undefined, LIMITS).addressFailures, 3);
  // A success on A forgets alice's count everywhere (the address's stays).
  const client = await connect(t, a);
  assert.match(await client.command('USER alice'), /^\+OK/);
  assert.match(await client.command('PASS pw'), /^\+OK/);
  await until(() => b.counters.loginThrottle.check('127.0.0.1', 'alice', LIMITS).userFailures === 0);
  assert.equal(b.counters.loginThrottle.check('127.0.0.1', 'alice', LIMITS).addressFailures, 3);
  const next = await b.counters.loginThrottle.fail('127.0.0.1', 'alice', LIMITS);
  assert.deepEqual([next.addressFailures, next.userFailures], [4, 1]);
});

test('maxConnectionsPerIp counts the address on every node; a closed connection frees its slot everywhere', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis, 'a', { maxConnectionsPerIp: 2 });
  const b = await startNode(t, redis, 'b', { maxConnectionsPerIp: 2 });
  const c = await startNode(t, redis, 'c', { maxConnectionsPerIp: 2 });
  const first = await connect(t, a);
  const second = await connect(t, b);
  assert.match(first.greeting, /^\+OK/);
  assert.match(second.greeting, /^\+OK/);
  const refused = await connect(t, c);
  assert.equal(refused.greeting, '-ERR [SYS/TEMP] too many connections from your address');
  // maxConnections stays each node's: not reached anywhere here.
  assert.equal(c.server.connectionCount, 0);
  await first.command('QUIT');
  await until(() => a.server.connectionCount === 0);
  // The release is sent without waiting: the slot is free once Redis has it.
  await until(async () => {
    const client = await Pop3TestClient.connect(c.port);
    const ok = client.greeting.startsWith('+OK');
    client.close();
    return ok;
  });
});

test("a dead node's connection counts expire after their TTL", async (t) => {
  const redis = await startRedis(t);
  const limits = { maxConnectionsPerIp: 1 };
  const logger = recordingLogger();
  const dying = connectCluster({ cluster: redis.url, nodeName: 'dying' }, logger, fast);
  t.after(() => dying.close());
  await dying.settled();
  const slots = clusterCounters(dying, undefined, logger, { ttlMs: 300 }).connections;
  assert.equal(await slots.take('127.0.0.1', resolveLimits(limits)), undefined);
  const b = await startNode(t, redis, 'b', limits);
  const refused = await connect(t, b);
  assert.match(refused.greeting, /too many connections from your address/);
  // The node dies: no release, no heartbeat (its connection to Redis drops).
  dying.redis.disconnect(false);
  await until(async () => {
    const client = await Pop3TestClient.connect(b.port);
    const ok = client.greeting.startsWith('+OK');
    client.close();
    return ok;
  });
});

test("node A's monitor lists node B's sessions with B's name, and its kick ends them", async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis, 'a');
  const b = await startNode(t, redis, 'b');
  const client = await connect(t, b);
  await client.command('USER alice');
  assert.match(await client.command('PASS pw'), /^\+OK/);
  await a.monitored.refresh();
  const sessions = a.monitored.sessions();
  assert.deepEqual(
    sessions.map((s) => [s.user, s.node, s.state]),
    [['alice', 'b', 'TRANSACTION']],
  );
  assert.deepEqual(a.monitored.nodesMissing, []);
  assert.equal(await a.monitored.endSessionsOf('alice'), 1);
  assert.match(await client.readLine(), /^-ERR/);
  await until(() => b.server.connectionCount === 0);
  assert.equal(await a.monitored.endSessionsOf('alice'), 0);
  assert.ok(b.logger.lines.some((l) => l.includes('"sessions ended"') && l.includes('"from":"a"')));
});

test('a node that does not answer in time is left out, and named', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis, 'a');
  const b = await startNode(t, redis, 'b');
  const client = await connect(t, a);
  await client.command('USER alice');
  await client.command('PASS pw');
  // B is alive in the registry but no longer answers: its subscription is gone.
  await b.monitored.close();
  const logger = recordingLogger();
  const asker = new ClusterMonitoredPop3(a.cluster, a.server, logger, { answerTimeoutMs: 100 });
  t.after(() => asker.close());
  // b.monitored.close() took b out of the registry: put it back as a silent node.
  await a.cluster.run((r) => r.zadd(a.cluster.key('monitor', 'nodes'), Date.now() + 60_000, 'b'));
  await asker.refresh();
  assert.deepEqual(
    asker.sessions().map((s) => [s.user, s.node]),
    [['alice', 'a']],
  );
  assert.deepEqual(asker.nodesMissing, ['b']);
  assert.ok(logger.lines.some((l) => l.includes('did not answer') && l.includes('"b"')));
});

test('Redis stopped mid-run: logins, limits and the monitor go on with this node alone; started again, sharing resumes', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis, 'a', { maxConnectionsPerIp: 2 });
  const b = await startNode(t, redis, 'b', { maxConnectionsPerIp: 2 });
  const onB = await connect(t, b);
  await onB.command('USER bob');
  assert.match(await onB.command('PASS secret'), /^\+OK/);
  await a.monitored.refresh();
  assert.equal(a.monitored.sessions().length, 1);
  const down = Promise.all([reach(a.cluster, 'unreachable'), reach(b.cluster, 'unreachable')]);
  await redis.stop();
  await down;
  // A failure and a success on A: answered, counted by A alone.
  await failLogin(t, a, 'alice');
  const client = await connect(t, a);
  await client.command('USER alice');
  assert.match(await client.command('PASS pw'), /^\+OK/);
  // The limit counts A's connections only: B's is not seen.
  const second = await connect(t, a);
  assert.match(second.greeting, /^\+OK/);
  // The monitor answers with A's own sessions and names B as missing.
  await a.monitored.refresh();
  assert.deepEqual(
    a.monitored.sessions().map((s) => `${s.user ?? '-'}@${s.node ?? '?'}`),
    ['alice@a', '-@a'],
  );
  assert.deepEqual(a.monitored.nodesMissing, ['b']);
  assert.ok(a.logger.lines.some((l) => l.includes("this node's own counts apply")));
  assert.ok(a.logger.lines.some((l) => l.includes('maxConnectionsPerIp counts this node only')));
  // Back: every node writes its counts again, and the monitor sees B.
  const up = Promise.all([reach(a.cluster, 'reachable'), reach(b.cluster, 'reachable')]);
  await redis.start();
  await up;
  await until(async () => {
    await a.monitored.refresh();
    return a.monitored.sessions().some((s) => s.node === 'b' && s.user === 'bob');
  });
  // A holds 2 and B 1 for 127.0.0.1 again: a fourth connection anywhere is refused.
  await until(async () => {
    const c = await Pop3TestClient.connect(b.port);
    const refused = c.greeting.includes('too many connections from your address');
    c.close();
    return refused;
  });
  const verdict = await a.counters.loginThrottle.fail('127.0.0.1', 'alice', LIMITS);
  assert.equal(verdict.addressFailures, 1, 'Redis lost its counts; they start again from this failure');
  assert.ok(a.logger.lines.some((l) => l.includes("the cluster's counts apply again")));
});

test('a successful login with a clean record costs the throttle no round trip', async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis, 'a');
  await startNode(t, redis, 'b');
  const publishes = async (): Promise<number> => {
    const info = (await a.cluster.run((r) => r.call('INFO', 'commandstats'))) as string;
    return Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0);
  };
  const client = await connect(t, a);
  await client.command('USER alice');
  assert.match(await client.command('PASS pw'), /^\+OK/);
  await client.command('QUIT');
  assert.equal(await publishes(), 0);
  // After a failure, the success is told to every node.
  await failLogin(t, a, 'alice');
  const again = await connect(t, a);
  await again.command('USER alice');
  assert.match(await again.command('PASS pw'), /^\+OK/);
  await until(async () => (await publishes()) === 2, 'the news of the failure and of the success');
});
