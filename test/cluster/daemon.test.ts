// The daemon with --cluster: one Redis connection per POP3 process, closed at shutdown; a Redis
// that is down at start is logged, not fatal.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { get } from 'node:http';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { runPoplar, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { monitorPort, runCtl } from '../helpers/poplarctl.js';
import { connectCluster } from '../../src/cluster/redis.js';
import { startRedis } from '../helpers/engines/redis.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };

const TOKEN = 'Cluster-Token-01';

async function files(t: TestContext): Promise<string> {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\nbob:{PLAIN}pw\n');
  await writeFile(join(cwd, 'admins'), `ops:${await hashPassword(TOKEN, 'SSHA256')}\n`, { mode: 0o600 });
  await buildMaildir(join(cwd, 'mail'), 'alice', [{ content: 'Hi\r\n' }]);
  await buildMaildir(join(cwd, 'mail'), 'bob', [{ content: 'Hi\r\n' }]);
  return cwd;
}

const ARGS = ['--users', 'users', '--admins', 'admins', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'];

async function node(
  t: TestContext,
  url: string,
  name: string,
  extra: readonly string[] = [],
): Promise<RunningDaemon> {
  const cwd = await files(t);
  return startDaemon(t, { cwd, args: [...ARGS, '--cluster', url, '--node-name', name, ...extra] });
}

function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve(body);
      });
    }).on('error', reject);
  });
}

test(
  'each process holds one connection (and one subscribed) named after the node (each worker, and the primary for the monitor), and the daemon stops cleanly',
  LIMIT,
  async (t) => {
    const redis = await startRedis(t);
    const d = await node(t, redis.url, 'n1', ['--workers', '2']);
    const connected = d.logs.filter((e) => e.msg === 'cluster connected');
    assert.equal(connected.length, 3, d.stdout());
    assert.ok(connected.every((e) => e['node'] === 'n1'));
    const probe = connectCluster({ cluster: redis.url, nodeName: 'probe' }, recordingLogger());
    t.after(() => probe.close());
    await probe.settled();
    const clients = (await probe.run((r) => r.call('CLIENT', 'LIST'))) as string;
    // One connection for commands and one subscribed (flags=P) per process.
    const ours = clients.split('\n').filter((l) => l.includes(' name=poplar-n1 '));
    assert.equal(ours.filter((l) => l.includes(' flags=N ')).length, 3, clients);
    assert.equal(ours.filter((l) => l.includes(' flags=P ')).length, 3, clients);
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

test(
  "any node's poplarctl lists and kicks the sessions of every node, and /metrics carries the node",
  LIMIT,
  async (t) => {
    const redis = await startRedis(t);
    const a = await node(t, redis.url, 'node-a', ['--metrics-listen', '127.0.0.1:0']);
    // B runs workers: its primary answers for the node, its workers count in Redis.
    const b = await node(t, redis.url, 'node-b', ['--workers', '2']);
    const client = await Pop3TestClient.connect(b.port);
    t.after(() => {
      client.close();
    });
    await client.command('USER bob');
    assert.match(await client.command('PASS pw'), /^\+OK/);
    const ctl = (args: readonly string[]) =>
      runCtl(t, ['--host', '127.0.0.1', '--port', String(monitorPort(a.started)), ...args], {
        env: { POPLAR_TOKEN: TOKEN },
      });
    // B's monitor joins once its subscription is in place, shortly after its start.
    let listed = await ctl(['sessions']);
    for (let i = 0; i < 20 && !listed.stdout.startsWith('1 open session\n'); i++)
      listed = await ctl(['sessions']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^1 open session\n/);
    assert.match(listed.stdout, /\bbob {2}127\.0\.0\.1 {2}TRANSACTION {2}\S+ {2}node-b\n/);
    const kicked = await ctl(['kick', 'bob']);
    assert.equal(kicked.stdout, 'ended 1 session of bob\n', kicked.stderr);
    assert.match(await client.readLine(), /^-ERR/);
    await b.waitForLog((e) => e.msg === 'sessions ended' && e['from'] === 'node-a');

    const listening = await a.waitForLog((e) => e.msg === 'metrics listening');
    const metrics = await httpGet(listening['port'] as number, '/metrics');
    const samples = metrics.split('\n').filter((l) => /^pop3_\w+(\{| )/.test(l));
    assert.ok(samples.length > 0);
    assert.deepEqual(
      samples.filter((l) => !l.includes('node="node-a"')),
      [],
    );
  },
);

test('check-config says whether the cluster answers', LIMIT, async (t) => {
  const redis = await startRedis(t);
  const cwd = await files(t);
  const args = ['check-config', ...ARGS, '--cluster', redis.url, '--node-name', 'n1'];
  const up = await runPoplar(t, args, { cwd });
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stderr, /the cluster at redis:\/\/127\.0\.0\.1:\d+ answers \(this node: n1\)/);
  await redis.stop();
  const down = await runPoplar(t, args, { cwd });
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stderr, /warning: the cluster at \S+ does not answer/);
});
