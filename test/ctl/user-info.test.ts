// poplarctl user info (GET 0x23 userInfo): a user's effective policy, whether the users file
// knows them, and their ledger (last logins with time, address, method, TLS, bytes, deletions),
// read by the primary from the maildir while workers serve the sessions; and on two --cluster nodes
// sharing one mail root, a session served by one node is shown by the other's monitor.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import type { UserInfo } from '../../src/monitor/user-info.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { startRedis } from '../helpers/engines/redis.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { monitorPort, runCtl } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };
const TOKEN = 'UserInfo-Token-1';
const MESSAGE = 'Subject: hi\r\n\r\nhello\r\n';

async function daemon(t: TestContext, root: string, extra: readonly string[]): Promise<RunningDaemon> {
  const cwd = await tempDir(t);
  await writeFile(
    join(cwd, 'users'),
    'alice:{PLAIN}pw:::::: poplar_delete=move:Trash poplar_download_per_day=1M\nbob:{PLAIN}pw\n',
  );
  await writeFile(join(cwd, 'admins'), `ops:${await hashPassword(TOKEN, 'SSHA256')}\n`, { mode: 0o600 });
  await writeFile(join(cwd, 'poplar.toml'), '[policy]\nloginDelay = 0\nexpire = 14\n');
  return startDaemon(t, {
    cwd,
    args: [
      '--users',
      'users',
      '--admins',
      'admins',
      '--config',
      'poplar.toml',
      '--listen',
      '127.0.0.1',
      '-p',
      '0',
      '-m',
      root,
      ...extra,
    ],
  });
}

async function session(port: number): Promise<void> {
  const client = await Pop3TestClient.connect(port);
  await client.command('USER alice');
  assert.match(await client.command('PASS pw'), /^\+OK/);
  await client.multi('RETR 1');
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  assert.match(await client.command('QUIT'), /^\+OK/);
  client.close();
}

const ctl = (t: TestContext, d: RunningDaemon, args: readonly string[]) =>
  runCtl(t, ['--port', String(monitorPort(d.started)), ...args], { env: { POPLAR_TOKEN: TOKEN } });

test('poplarctl user info with --workers 2: policy, existence and the last logins', LIMIT, async (t) => {
  const root = join(await tempDir(t), 'mail');
  await buildMaildir(root, 'alice', [{ content: MESSAGE }, { content: MESSAGE }]);
  const d = await daemon(t, root, ['--workers', '2']);
  await session(d.port);

  const json = await ctl(t, d, ['--json', 'user', 'info', 'alice']);
  assert.equal(json.code, 0, json.stderr);
  const info = JSON.parse(json.stdout) as UserInfo;
  assert.equal(info.exists, true);
  assert.deepEqual(info.own, { delete: { mode: 'move', folder: 'Trash' }, downloadPerDay: 1024 * 1024 });
  assert.deepEqual(info.policy, {
    delete: { mode: 'move', folder: 'Trash' },
    expire: 14,
    loginDelaySeconds: 0,
    downloadPerDay: 1024 * 1024,
    appPasswordsOnly: false,
  });
  assert.equal(info.ledger.sessions.length, 1);
  const [s] = info.ledger.sessions;
  assert.ok(s !== undefined && typeof s.end === 'number');
  assert.deepEqual(
    [s.address, s.method, s.tls, s.retrieved, s.deleted, s.downloaded],
    ['127.0.0.1', 'USER', false, 1, 1, Buffer.byteLength(MESSAGE)],
  );
  assert.equal(info.ledger.dayBytes, Buffer.byteLength(MESSAGE));

  const text = await ctl(t, d, ['user', 'info', 'alice']);
  assert.equal(text.code, 0, text.stderr);
  t.diagnostic(text.stdout);
  assert.match(text.stdout, /^user alice\nexists: yes\npolicy:\n/);
  assert.match(text.stdout, / {2}delete +move:Trash {2}\(own\)\n/);
  assert.match(text.stdout, / {2}expire +14\n/);
  assert.match(text.stdout, /downloaded today \(UTC [0-9-]+\): \d+ octets of 1048576\n/);
  assert.match(
    text.stdout,
    /last 1 sessions \(newest first\):\n {2}\S+ \S+ {2}127\.0\.0\.1 {2}USER {2}\d+ s {2}sent \d+ octets, 1 retrieved \(\d+ octets\), 1 deleted/,
  );

  // A user in the file who never logged in; a name nobody has; a name that is not valid.
  const bob = JSON.parse((await ctl(t, d, ['--json', 'user', 'info', 'bob'])).stdout) as UserInfo;
  assert.deepEqual([bob.exists, bob.ledger.sessions.length, bob.own], [true, 0, {}]);
  const ghost = JSON.parse((await ctl(t, d, ['--json', 'user', 'info', 'ghost'])).stdout) as UserInfo;
  assert.equal(ghost.exists, false);
  const bad = await ctl(t, d, ['user', 'info', '../alice']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid user name: \.\.\/alice \(status 0x04\)/);
  const usage = await ctl(t, d, ['user', 'show', 'alice']);
  assert.equal(usage.code, 2);
  assert.equal(await d.stop(), 0);
});

test('poplarctl user info with --cluster: one node shows a session another node served', LIMIT, async (t) => {
  const redis = await startRedis(t);
  const root = join(await tempDir(t), 'mail');
  await buildMaildir(root, 'alice', [{ content: MESSAGE }, { content: MESSAGE }]);
  const a = await daemon(t, root, ['--workers', '1', '--cluster', redis.url, '--node-name', 'node-a']);
  const b = await daemon(t, root, ['--workers', '1', '--cluster', redis.url, '--node-name', 'node-b']);
  await session(a.port);
  const info = JSON.parse((await ctl(t, b, ['--json', 'user', 'info', 'alice'])).stdout) as UserInfo;
  assert.equal(info.ledger.sessions.length, 1);
  assert.equal(info.ledger.sessions[0]?.deleted, 1);
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
});
