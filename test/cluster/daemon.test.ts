// The daemon with --cluster: one Redis connection per POP3 process, closed at shutdown; a Redis
// that is down at start is logged, not fatal.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { connectCluster } from '../../src/cluster/redis.js';
import { startRedis } from '../helpers/engines/redis.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };

async function node(
  t: TestContext,
  url: string,
  name: string,
  extra: readonly string[] = [],
): Promise<RunningDaemon> {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  await writeFile(join(cwd, 'admins'), '');
  await buildMaildir(join(cwd, 'mail'), 'alice', [{ content: 'Hi\r\n' }]);
  const args = ['--users', 'users', '--admins', 'admins', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'];
  return startDaemon(t, { cwd, args: [...args, '--cluster', url, '--node-name', name, ...extra] });
}

test(
  'each POP3 process holds one connection, named after the node, and the daemon stops cleanly',
  LIMIT,
  async (t) => {
    const redis = await startRedis(t);
    const d = await node(t, redis.url, 'n1', ['--workers', '2']);
    const connected = d.logs.filter((e) => e.msg === 'cluster connected');
    assert.equal(connected.length, 2, d.stdout());
    assert.ok(connected.every((e) => e['node'] === 'n1'));
    const probe = connectCluster({ cluster: redis.url, nodeName: 'probe' }, recordingLogger());
    t.after(() => probe.close());
    await probe.settled();
    const clients = (await probe.run((r) => r.call('CLIENT', 'LIST'))) as string;
    assert.equal(clients.split('\n').filter((l) => l.includes(' name=poplar-n1 ')).length, 2, clients);
    assert.equal(await d.stop(), 0);
  },
);

test(
  'a Redis that is down at start is logged; the daemon starts, and serves once Redis is up',
  LIMIT,
  async (t) => {
    const redis = await startRedis(t);
    await redis.stop();
    const d = await node(t, redis.url, 'n1');
    assert.ok(
      d.logs.some((e) => e.msg === 'cluster unreachable'),
      d.stdout(),
    );
    const client = await Pop3TestClient.connect(d.port);
    t.after(() => {
      client.close();
    });
    assert.match(await client.command('USER alice'), /^\+OK/);
    // The maildrop lease cannot be taken without Redis.
    assert.match(await client.command('PASS pw'), /^-ERR \[SYS\/TEMP\]/);
    const since = d.logs.length;
    await redis.start();
    await d.waitForLog((e) => e.msg === 'cluster reachable again', { since });
    assert.match(await client.command('USER alice'), /^\+OK/);
    assert.match(await client.command('PASS pw'), /^\+OK/);
    assert.match(await client.command('QUIT'), /^\+OK/);
    assert.equal(await d.stop(), 0);
  },
);
