// The daemon with --users ldap://...: bind mode (slapd checks the password) and password-attribute
// mode (Poplar checks slappasswd's {SSHA}), the outage cache while slapd is stopped, the monitor's
// refusals (a directory is read-only), and the filter escaping.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { DatabaseAuthenticator } from '../../src/auth/userdb/authenticator.js';
import { escapeFilterValue, filterFor, LdapUsers } from '../../src/auth/userdb/ldap.js';
import { runPoplar, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { perFile } from '../helpers/engines/engine-process.js';
import { SERVICE_DN, SERVICE_PASSWORD, startSlapd, type SlapdEngine } from '../helpers/engines/slapd.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { opsAdminsFile, opsCtl } from './ops-admin.js';

const LIMIT = { timeout: 120_000 };
const BAD_LOGIN = '-ERR [AUTH] invalid user name or password';
const TEMP_LOGIN = '-ERR [SYS/TEMP] authentication is temporarily unavailable, try again later';
const MESSAGE = 'Subject: from the directory\r\n\r\nHello.\r\n';
const slapd = perFile((cleanup) => startSlapd(cleanup));
let units = 0;

interface LdapDaemon {
  readonly d: RunningDaemon;
  readonly directory: SlapdEngine;
  readonly cwd: string;
  readonly args: readonly string[];
}

/** A daemon on an organizational unit of its own holding `users` (uid → password), each with one message. */
async function startWithDirectory(
  t: TestContext,
  users: Readonly<Record<string, string>>,
  options: { readonly mode: 'bind' | 'attribute'; readonly args?: readonly string[] },
): Promise<LdapDaemon> {
  const directory = await slapd();
  const cwd = await tempDir(t);
  const baseDn = await directory.addOu(`daemon${++units}`);
  for (const [uid, password] of Object.entries(users)) {
    await directory.addUser({ uid, userPassword: await directory.sshaOf(password) }, baseDn);
    await buildMaildir(join(cwd, 'mail'), uid, [{ content: MESSAGE }]);
  }
  await writeFile(join(cwd, 'bind-password'), `${SERVICE_PASSWORD}\n`, { mode: 0o600 });
  await writeFile(
    join(cwd, 'poplar.toml'),
    `users = "${directory.url}"\n` +
      '[limits]\nauthFailureDelayMs = 0\nmaxAuthFailures = 10\n' +
      `[userdb]\nbaseDn = "${baseDn}"\n` +
      (options.mode === 'attribute'
        ? `bindDn = "${SERVICE_DN}"\nbindPasswordFile = "bind-password"\npasswordAttribute = "userPassword"\n`
        : ''),
  );
  const args = ['--config', 'poplar.toml', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'];
  const d = await startDaemon(t, { args: [...args, ...(options.args ?? [])], cwd });
  t.after(() => {
    assert.ok(!(d.stdout() + d.stderr()).includes(SERVICE_PASSWORD), 'the bind password is never logged');
  });
  return { d, directory, cwd, args };
}

async function loginAndRetr(port: number, user: string, password: string): Promise<string> {
  const client = await Pop3TestClient.connect(port);
  try {
    await client.command(`USER ${user}`);
    const reply = await client.command(`PASS ${password}`);
    if (reply.startsWith('+OK')) {
      const retr = await client.multi('RETR 1');
      assert.deepEqual(retr.lines, ['Subject: from the directory', '', 'Hello.']);
      assert.match(await client.command('QUIT'), /^\+OK/);
    }
    return reply;
  } finally {
    client.close();
  }
}

for (const mode of ['bind', 'attribute'] as const) {
  test(
    `LDAP, ${mode === 'bind' ? 'bind as the user' : 'userPassword {SSHA} read by a service account'}: logins, RETR, the outage cache, slapd back`,
    LIMIT,
    async (t) => {
      const { d, directory } = await startWithDirectory(
        t,
        { alice: 'alice pw', bob: 'bob pw', 'carol@example.org': 'carol pw' },
        { mode },
      );
      assert.match(await loginAndRetr(d.port, 'alice', 'alice pw'), /^\+OK/);
      assert.match(await loginAndRetr(d.port, 'carol@example.org', 'carol pw'), /^\+OK/);
      assert.equal(await loginAndRetr(d.port, 'alice', 'bob pw'), BAD_LOGIN);
      assert.equal(
        await loginAndRetr(d.port, 'Alice', 'alice pw'),
        BAD_LOGIN,
        'LDAP ignores case; Poplar does not',
      );
      assert.equal(await loginAndRetr(d.port, 'nobody', 'alice pw'), BAD_LOGIN);

      await directory.stop();
      t.after(() => directory.start());
      assert.match(await loginAndRetr(d.port, 'alice', 'alice pw'), /^\+OK/, 'cached');
      assert.equal(await loginAndRetr(d.port, 'bob', 'bob pw'), TEMP_LOGIN, 'unseen');
      assert.equal(await loginAndRetr(d.port, 'alice', 'wrong'), BAD_LOGIN, 'wrong password, cached user');
      await d.waitForLog((e) => e.msg.startsWith('user database not answering'));
      assert.equal(d.logs.filter((e) => e.msg.startsWith('user database not answering')).length, 1);

      await directory.start();
      assert.match(await loginAndRetr(d.port, 'bob', 'bob pw'), /^\+OK/, 'slapd back');
      await d.waitForLog((e) => e.msg === 'user database answering again');
      assert.equal(d.logs.filter((e) => e.msg === 'user database answering again').length, 1);
      assert.equal(await d.stop(), 0);
    },
  );
}

test(
  'auth-test names the ldap backend; check-config asks the directory; the monitor refuses user changes',
  LIMIT,
  async (t) => {
    const admins = await opsAdminsFile(t);
    const { d, cwd, args } = await startWithDirectory(
      t,
      { alice: 'alice pw' },
      {
        mode: 'attribute',
        args: ['--admins', admins],
      },
    );
    const ctl = opsCtl(t, d);
    for (const run of [
      await ctl(['users', 'list']),
      await ctl(['users', 'add', 'zoe'], 'pw\n'),
      await ctl(['users', 'del', 'alice']),
    ]) {
      assert.notEqual(run.code, 0);
      assert.match(run.stderr, /status 0x04/);
    }
    await d.stop();
    const ok = await runPoplar(t, ['auth-test', 'alice', 'alice pw', ...args], { cwd });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /^backend: ldap ldap:\/\/127\.0\.0\.1:\d+\nscheme: \{SSHA\}\npassdb: alice auth succeeded\n$/,
    );
    const check = await runPoplar(t, ['check-config', ...args], { cwd });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stderr, /users: ldap ldap:\/\/127\.0\.0\.1:\d+ answers/);
    for (const run of [ok, check]) assert.ok(!(run.stdout + run.stderr).includes(SERVICE_PASSWORD));
  },
);

test('the filter escapes every name (RFC 4515): a hostile name can never change it', () => {
  assert.equal(escapeFilterValue('*'), '\\2a');
  assert.equal(escapeFilterValue(')('), '\\29\\28');
  assert.equal(escapeFilterValue('a\\b'), 'a\\5cb');
  assert.equal(escapeFilterValue('a\0b'), 'a\\00b');
  assert.equal(filterFor('(uid=%u)', 'a)(uid=*'), '(uid=a\\29\\28uid=\\2a)');
  assert.equal(
    filterFor('(&(objectClass=person)(|(uid=%u)(mail=%u)))', '*'),
    '(&(objectClass=person)(|(uid=\\2a)(mail=\\2a)))',
  );
  const long = 'a'.repeat(1000);
  assert.equal(filterFor('(uid=%u)', long), `(uid=${long})`);
  for (const name of ['%', '*', ')(', 'a\0b', '\\', '(uid=*)']) {
    const filter = filterFor('(uid=%u)', name);
    assert.ok(!/[()*\0]/.test(filter.slice(5, -1)), `${JSON.stringify(name)} -> ${filter}`);
  }
});

test(
  'bind mode: an empty password never logs in (an unauthenticated bind would succeed as anonymous)',
  LIMIT,
  async (t) => {
    const directory = await slapd();
    const baseDn = await directory.addOu(`empty${++units}`);
    await directory.addUser({ uid: 'alice', userPassword: await directory.sshaOf('alice pw') }, baseDn);
    const users = new DatabaseAuthenticator(new LdapUsers({ url: directory.url, baseDn }), {
      cacheTtlMs: 60_000,
    });
    t.after(() => users.close());
    const login = (password: string) =>
      users.authenticate({
        mechanism: 'USER',
        username: 'alice',
        password,
        remoteAddress: '127.0.0.1',
        isTls: true,
        signal: new AbortController().signal,
      });
    assert.deepEqual(await login(''), { ok: false, reason: 'invalid' });
    assert.deepEqual(await login('alice pw'), { ok: true, user: { name: 'alice' } });
  },
);
