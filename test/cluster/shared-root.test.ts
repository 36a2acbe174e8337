// Two Poplar nodes on one mail root: with lock files (each node in a UTS namespace of its own, so
// under its own host name) and with the Redis lease. A node killed mid-session with a DELE pending
// loses nothing, and its lock expires after --lock-ttl; Redis stopped under a session ends it
// without UPDATE. Also finding 10 of the 2026-12 security probe, reproduced as it was reported.
import assert from 'node:assert/strict';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { startRedis } from '../helpers/engines/redis.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };
const LOCK_TTL_S = 5;

/** A mail root with alice's maildrop holding two messages. */
async function mailRoot(t: TestContext): Promise<string> {
  const root = join(await tempDir(t), 'mail');
  await buildMaildir(root, 'alice', [
    { content: 'Subject: 1\r\n\r\none\r\n' },
    { content: 'Subject: 2\r\n\r\ntwo\r\n' },
  ]);
  return root;
}

async function node(
  t: TestContext,
  root: string,
  name: string,
  extra: readonly string[] = [],
): Promise<RunningDaemon> {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  await writeFile(join(cwd, 'admins'), '');
  const args = ['--users', 'users', '--admins', 'admins', '--listen', '127.0.0.1', '-p', '0', '-m', root];
  return startDaemon(t, {
    cwd,
    hostname: name,
    args: [...args, '--lock-ttl', String(LOCK_TTL_S), '--node-name', name, ...extra],
  });
}

async function connect(t: TestContext, d: RunningDaemon): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(d.port);
  t.after(() => {
    client.close();
  });
  return client;
}

/** USER + PASS; the PASS reply. */
async function tryLogin(t: TestContext, d: RunningDaemon): Promise<string> {
  const client = await connect(t, d);
  assert.match(await client.command('USER alice'), /^\+OK/);
  const reply = await client.command('PASS pw');
  client.close();
  return reply;
}

/** Logs in on `d` until it works (bounded), every refusal being [IN-USE]. */
async function loginOnceFree(t: TestContext, d: RunningDaemon, boundMs: number): Promise<string> {
  const end = Date.now() + boundMs;
  for (;;) {
    const reply = await tryLogin(t, d);
    if (reply.startsWith('+OK')) return reply;
    assert.match(reply, /^-ERR \[IN-USE\]/);
    assert.ok(Date.now() < end, "the dead node's lock never expired");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** alice's messages, by base name, wherever they are (new/ until a login moves them to cur/). */
async function curOf(root: string): Promise<string[]> {
  const names = [
    ...(await readdir(join(root, 'alice', 'new'))),
    ...(await readdir(join(root, 'alice', 'cur'))),
  ];
  return names.map((n) => n.split(':')[0] ?? n).sort();
}

test(
  'finding 10: a lock left under another host name, 2 days old, is broken at login and logged',
  LIMIT,
  async (t) => {
    const root = await mailRoot(t);
    const lock = join(root, 'alice', '.poplar-lock');
    await writeFile(lock, '4242 12345 old-container-hostname 0011223344556677');
    const then = new Date(Date.now() - 2 * 86_400_000);
    await utimes(lock, then, then);
    const d = await node(t, root, 'new-container-hostname');
    assert.match(await tryLogin(t, d), /^\+OK alice has 2 messages/);
    const broken = await d.waitForLog((e) => e.msg === 'stale maildrop lock broken');
    assert.deepEqual(broken['owner'], { pid: '4242', host: 'old-container-hostname' });
    assert.equal(broken['reason'], 'expired');
    assert.ok(Number(broken['ageS']) >= 2 * 86_400 - 60, String(broken['ageS']));
  },
);

for (const mode of ['lock files', 'the Redis lease'] as const) {
  test(
    `two nodes on one mail root with ${mode}: IN-USE across nodes; a node killed with a DELE pending loses nothing and its lock expires`,
    LIMIT,
    async (t) => {
      const root = await mailRoot(t);
      const extra = mode === 'lock files' ? [] : ['--cluster', (await startRedis(t)).url];
      const [a, b] = [await node(t, root, 'node-a', extra), await node(t, root, 'node-b', extra)];
      const before = await curOf(root);
      const session = await connect(t, a);
      await session.login('alice', 'pw');
      assert.equal(await session.command('DELE 1'), '+OK message 1 deleted');
      assert.match(await tryLogin(t, b), /^-ERR \[IN-USE\]/);
      assert.equal(await a.stop('SIGKILL'), null);
      const since = b.logs.length;
      // Polled, bounded: [IN-USE] until the lock's TTL has run out, then the maildrop is b's.
      assert.match(await loginOnceFree(t, b, 3 * LOCK_TTL_S * 1000 + 10_000), /^\+OK alice has 2 messages/);
      assert.deepEqual(await curOf(root), before, 'the DELE of the killed session deleted nothing');
      if (mode === 'lock files') {
        const broken = await b.waitForLog((e) => e.msg === 'stale maildrop lock broken', { since });
        assert.equal((broken['owner'] as { host: string }).host, 'node-a');
      }
    },
  );
}

test(
  'Redis stopped under a session: it ends without UPDATE once its lease cannot be refreshed; logins get [SYS/TEMP]',
  LIMIT,
  async (t) => {
    const root = await mailRoot(t);
    const redis = await startRedis(t);
    const d = await node(t, root, 'node-a', ['--cluster', redis.url]);
    const before = await curOf(root);
    const session = await connect(t, d);
    await session.login('alice', 'pw');
    assert.equal(await session.command('DELE 1'), '+OK message 1 deleted');
    await redis.stop();
    // Bounded by the test's timeout: the lease is given up two thirds of the TTL after its last refresh.
    assert.equal(await session.readLine(), '-ERR [SYS/TEMP] maildrop lock lost');
    await session.closed();
    assert.deepEqual(await curOf(root), before, 'nothing deleted');
    assert.match(await tryLogin(t, d), /^-ERR \[SYS\/TEMP\]/);
    await redis.start();
    await d.waitForLog((e) => e.msg === 'cluster reachable again');
    assert.match(await tryLogin(t, d), /^\+OK alice has 2 messages/);
  },
);
