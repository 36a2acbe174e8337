import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ClusterUnavailableError, connectCluster, redactedUrl } from '../../src/cluster/redis.js';
import { ConfigError } from '../../src/errors.js';
import { reach } from '../helpers/cluster-state.js';
import { startRedis } from '../helpers/engines/redis.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { tempDir } from '../helpers/temp-dir.js';

const fast = { reconnectStepMs: 10, reconnectMaxMs: 50 };

test('connects, prefixes its keys and closes', async (t) => {
  const redis = await startRedis(t);
  const logger = recordingLogger();
  const cluster = connectCluster({ cluster: `${redis.url}/3`, nodeName: 'n1' }, logger);
  t.after(() => cluster.close());
  await cluster.settled();
  assert.equal(cluster.state, 'reachable');
  await cluster.ping();
  assert.equal(cluster.key('throttle', 'addr', '192.0.2.1'), 'poplar:throttle:addr:192.0.2.1');
  await cluster.run((r) => r.set(cluster.key('probe'), 'x'));
  // The /3 in the URL selects database 3.
  const info = (await cluster.run((r) => r.call('CLIENT', 'INFO'))) as string;
  assert.match(info, / db=3 /);
  assert.ok(logger.lines.some((l) => l.includes('"cluster connected"')));
  await cluster.close();
  assert.equal(cluster.state, 'closed');
  await assert.rejects(cluster.ping(), ClusterUnavailableError);
});

test('a command while Redis is down fails at once with a typed error, and the connection comes back after a restart', async (t) => {
  const redis = await startRedis(t);
  const logger = recordingLogger();
  const cluster = connectCluster({ cluster: redis.url, nodeName: 'n1' }, logger, {
    reconnectStepMs: 100,
    reconnectMaxMs: 100,
  });
  t.after(() => cluster.close());
  await cluster.settled();
  const down = reach(cluster, 'unreachable');
  await redis.stop();
  await down;
  // Several commands while down: each fails (no queue, no hang), typed.
  for (let i = 0; i < 3; i++) await assert.rejects(cluster.ping(), ClusterUnavailableError);
  // Not queued for later either: a command queued now would be answered after the restart.
  const late = cluster.ping().then(
    () => 'answered',
    (err: unknown) => err,
  );
  const back = reach(cluster, 'reachable');
  await redis.start();
  assert.ok((await late) instanceof ClusterUnavailableError);
  await back;
  await cluster.ping();
  const states = logger.lines.filter(
    (l) => l.includes('"cluster unreachable"') || l.includes('"cluster reachable again"'),
  );
  // One line per change of state, however many reconnection attempts failed between.
  assert.equal(states.length, 2, states.join('\n'));
});

test('a command that Redis does not answer fails after the command timeout', async (t) => {
  const redis = await startRedis(t);
  const cluster = connectCluster({ cluster: redis.url, nodeName: 'n1' }, recordingLogger(), {
    commandTimeoutMs: 200,
  });
  t.after(() => cluster.close());
  await cluster.settled();
  // A hung server: the connection stays up, no answer comes.
  redis.pause();
  await assert.rejects(cluster.ping(), (err: unknown) => {
    assert.ok(err instanceof ClusterUnavailableError);
    assert.match(err.message, /timed out/i);
    return true;
  });
  redis.resume();
});

test('the password comes from the password file and is never logged', async (t) => {
  const password = 'S3cret-redis-pw';
  const redis = await startRedis(t, { password });
  const dir = await tempDir(t);
  const file = join(dir, 'redis-password');
  await writeFile(file, `${password}\n`);
  const logger = recordingLogger();
  const cluster = connectCluster(
    { cluster: redis.url, clusterPasswordFile: file, nodeName: 'n1' },
    logger,
    fast,
  );
  t.after(() => cluster.close());
  await cluster.settled();
  await cluster.ping();

  // A wrong password: unreachable, said once, the password not in the line.
  const wrongFile = join(dir, 'wrong');
  await writeFile(wrongFile, 'not-the-password\n');
  const wrongLogger = recordingLogger();
  const wrong = connectCluster(
    { cluster: redis.url, clusterPasswordFile: wrongFile, nodeName: 'n2' },
    wrongLogger,
    fast,
  );
  t.after(() => wrong.close());
  await wrong.settled();
  await assert.rejects(wrong.ping(), ClusterUnavailableError);
  // A password in the URL is not logged either.
  const inUrl = connectCluster(
    { cluster: `redis://:${password}@127.0.0.1:${redis.port}`, nodeName: 'n3' },
    logger,
    fast,
  );
  t.after(() => inUrl.close());
  await inUrl.settled();
  await inUrl.ping();
  await wrong.close();
  const all = [...logger.lines, ...wrongLogger.lines].join('\n');
  assert.ok(!all.includes(password), all);
  assert.ok(!all.includes('not-the-password'), all);
  assert.ok(wrongLogger.lines.some((l) => l.includes('"cluster unreachable"')));
});

test('a missing password file is a configuration error', () => {
  assert.throws(
    () =>
      connectCluster(
        { cluster: 'redis://127.0.0.1:1', clusterPasswordFile: '/nonexistent/pw', nodeName: 'n1' },
        recordingLogger(),
      ),
    ConfigError,
  );
});

test('redactedUrl hides the password part', () => {
  assert.equal(redactedUrl('redis://:pw@h:1/2'), 'redis://***@h:1/2');
  assert.equal(redactedUrl('rediss://user:pw@h:1'), 'rediss://user:***@h:1');
  assert.equal(redactedUrl('redis://h:1'), 'redis://h:1');
});

test('a subscription receives what another node publishes, again after Redis restarts', async (t) => {
  const redis = await startRedis(t);
  const a = connectCluster({ cluster: redis.url, nodeName: 'a' }, recordingLogger(), fast);
  const b = connectCluster({ cluster: redis.url, nodeName: 'b' }, recordingLogger(), fast);
  t.after(() => Promise.all([a.close(), b.close()]));
  await Promise.all([a.settled(), b.settled()]);
  const channel = a.key('test');
  const received: string[] = [];
  let wake: () => void = () => {};
  a.subscribe(channel, (m) => {
    received.push(m);
    wake();
  });
  // Published until the subscription is in place (SUBSCRIBE goes out asynchronously).
  const deliver = async (message: string): Promise<void> => {
    while (!received.includes(message)) {
      const got = new Promise<void>((resolve) => (wake = resolve));
      await b.publish(channel, message).catch(() => 0);
      await Promise.race([got, new Promise((resolve) => setTimeout(resolve, 50))]);
    }
  };
  await deliver('one');
  const downA = reach(a, 'unreachable');
  await redis.kill();
  await downA;
  await assert.rejects(b.publish(channel, 'lost'), ClusterUnavailableError);
  const upA = reach(a, 'reachable');
  const upB = reach(b, 'reachable');
  await redis.start();
  await Promise.all([upA, upB]);
  await deliver('two');
  assert.ok(!received.includes('lost'));
});
