// The daemon with --users postgresql://...: logins with every scheme from Postfixadmin's mailbox
// table, auth-test and check-config, the outage cache while PostgreSQL is stopped, the monitor's
// user changes through the [userdb] queries, and names that must never reach the query.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { runPoplar, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { startPostgres, writePasswordFile, type PostgresEngine } from '../helpers/engines/postgres.js';
import { perFile } from '../helpers/engines/engine-process.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { opsAdminsFile, opsCtl } from './ops-admin.js';

const LIMIT = { timeout: 120_000 };
const BAD_LOGIN = '-ERR [AUTH] invalid user name or password';
const TEMP_LOGIN = '-ERR [SYS/TEMP] authentication is temporarily unavailable, try again later';
const MESSAGE = 'Subject: from the database\r\n\r\nHello.\r\n';
const postgres = perFile(startPostgres);
let tables = 0;

interface PgDaemon {
  readonly d: RunningDaemon;
  readonly db: PostgresEngine;
  readonly cwd: string;
  readonly table: string;
  readonly args: readonly string[];
}

/**
 * A daemon on a mailbox table of its own (Postfixadmin's columns), the database password in
 * `[userdb] passwordFile`, `users` (name → stored password field) in the table, each with one
 * message.
 */
async function startWithDatabase(
  t: TestContext,
  users: Readonly<Record<string, string>>,
  options: { readonly extraToml?: string; readonly args?: readonly string[] } = {},
): Promise<PgDaemon> {
  const db = await postgres();
  const cwd = await tempDir(t);
  const table = `daemon${++tables}.mailbox`;
  await db.createMailboxTable(table);
  for (const [name, stored] of Object.entries(users)) {
    await db.addMailbox(name, stored, { table });
    await buildMaildir(join(cwd, 'mail'), name, [{ content: MESSAGE }]);
  }
  await writePasswordFile(cwd, db);
  await writeFile(
    join(cwd, 'poplar.toml'),
    `users = "${db.url()}"\n` +
      '[limits]\nauthFailureDelayMs = 0\nmaxAuthFailures = 10\n' +
      '[userdb]\npasswordFile = "db-password"\n' +
      `passwordQuery = "SELECT password FROM ${table} WHERE username = $1 AND active = true"\n` +
      (options.extraToml ?? ''),
  );
  const args = ['--config', 'poplar.toml', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'];
  const d = await startDaemon(t, { args: [...args, ...(options.args ?? [])], cwd });
  t.after(() => {
    assert.ok(!(d.stdout() + d.stderr()).includes(db.password), 'the database password is never logged');
  });
  return { d, db, cwd, table, args };
}

/** USER + PASS, and RETR 1 after a success; resolves to the PASS reply. */
async function loginAndRetr(port: number, user: string, password: string): Promise<string> {
  const client = await Pop3TestClient.connect(port);
  try {
    const reply = await client.command(`USER ${user}`).then(() => client.command(`PASS ${password}`));
    if (reply.startsWith('+OK')) {
      const retr = await client.multi('RETR 1');
      assert.match(retr.status, /^\+OK/);
      assert.deepEqual(retr.lines, ['Subject: from the database', '', 'Hello.']);
      assert.match(await client.command('QUIT'), /^\+OK/);
    }
    return reply;
  } finally {
    client.close();
  }
}

/** `{SCHEME}hash` without its braces, as Postfixadmin stores crypt hashes. */
const bare = async (password: string, scheme: string): Promise<string> =>
  (await hashPassword(password, scheme)).replace(/^\{[^}]+\}/, '');

test(
  'users in PostgreSQL log in with every scheme, bare crypt hashes included, and retrieve their mail',
  LIMIT,
  async (t) => {
    const users: Record<string, string> = {
      'plain@example.org': '{PLAIN}pw plain',
      'pbkdf2@example.org': await hashPassword('pw pbkdf2', 'PBKDF2'),
      'ssha512@example.org': await hashPassword('pw ssha512', 'SSHA512'),
      'sha512crypt@example.org': await hashPassword('pw sha512crypt', 'SHA512-CRYPT'),
      'argon2@example.org': await hashPassword('pw argon2', 'ARGON2ID'),
      'scram@example.org': await hashPassword('pw scram', 'SCRAM-SHA-256'),
      'bare6@example.org': await bare('pw bare6', 'SHA512-CRYPT'),
      'bare2y@example.org': await bare('pw bare2y', 'BLF-CRYPT'),
    };
    const { d, db, table } = await startWithDatabase(t, users);
    for (const name of Object.keys(users)) {
      const password = `pw ${name.split('@')[0] ?? ''}`;
      assert.match(await loginAndRetr(d.port, name, password), /^\+OK/, name);
      assert.equal(await loginAndRetr(d.port, name, `${password}!`), BAD_LOGIN, `${name}: wrong password`);
    }
    assert.equal(await loginAndRetr(d.port, 'nobody@example.org', 'pw'), BAD_LOGIN);
    // A disabled account, a changed password: the next login asks the database and sees it.
    await db.query(`UPDATE ${table} SET active = false WHERE username = 'plain@example.org'`);
    assert.equal(await loginAndRetr(d.port, 'plain@example.org', 'pw plain'), BAD_LOGIN);
    await db.query(`UPDATE ${table} SET password = '{PLAIN}new' WHERE username = 'pbkdf2@example.org'`);
    assert.equal(await loginAndRetr(d.port, 'pbkdf2@example.org', 'pw pbkdf2'), BAD_LOGIN);
    assert.match(await loginAndRetr(d.port, 'pbkdf2@example.org', 'new'), /^\+OK/);
    assert.equal(await d.stop(), 0);
  },
);

test(
  'poplar auth-test names the postgresql backend; check-config says the database answers, without its password',
  LIMIT,
  async (t) => {
    const { d, db, cwd, args } = await startWithDatabase(t, {
      'alice@example.org': await hashPassword('alice pw', 'SSHA256'),
    });
    await d.stop();
    const ok = await runPoplar(t, ['auth-test', 'alice@example.org', 'alice pw', ...args], { cwd });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /^backend: postgresql postgresql:\/\/poplar@127\.0\.0\.1:\d+\/mail\nscheme: \{SSHA256\}\npassdb: alice@example.org auth succeeded\n$/,
    );
    const bad = await runPoplar(t, ['auth-test', 'alice@example.org', 'wrong', ...args], { cwd });
    assert.equal(bad.code, 77);
    const check = await runPoplar(t, ['check-config', ...args], { cwd });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stderr, /users: postgresql postgresql:\/\/poplar@127\.0\.0\.1:\d+\/mail answers/);
    await db.stop();
    t.after(() => db.start());
    const down = await runPoplar(t, ['check-config', ...args], { cwd });
    assert.equal(down.code, 1);
    assert.match(
      down.stderr,
      /^poplar: users: postgresql postgresql:\/\/poplar@127\.0\.0\.1:\d+\/mail does not answer: /,
    );
    const temp = await runPoplar(t, ['auth-test', 'alice@example.org', 'alice pw', ...args], { cwd });
    assert.equal(temp.code, 75);
    assert.match(temp.stdout, /auth failed \(temporary\)/);
    for (const run of [ok, bad, check, down, temp])
      assert.ok(!(run.stdout + run.stderr).includes(db.password), 'the database password is never printed');
  },
);

test(
  'PostgreSQL stopped mid-run: a user verified lately logs in and retrieves from the cache, an unseen user gets [SYS/TEMP], a wrong password fails',
  LIMIT,
  async (t) => {
    const { d, db } = await startWithDatabase(t, {
      'alice@example.org': await hashPassword('alice pw', 'SHA512-CRYPT'),
      'bob@example.org': await hashPassword('bob pw', 'PBKDF2'),
    });
    assert.match(await loginAndRetr(d.port, 'alice@example.org', 'alice pw'), /^\+OK/);
    await db.stop();
    t.after(() => db.start().catch(() => undefined));
    assert.match(await loginAndRetr(d.port, 'alice@example.org', 'alice pw'), /^\+OK/, 'cached user');
    assert.equal(await loginAndRetr(d.port, 'bob@example.org', 'bob pw'), TEMP_LOGIN, 'unseen user');
    assert.equal(await loginAndRetr(d.port, 'nobody@example.org', 'x'), TEMP_LOGIN, 'unknown name');
    assert.equal(await loginAndRetr(d.port, 'alice@example.org', 'alice pw?'), BAD_LOGIN, 'wrong password');
    assert.match(await loginAndRetr(d.port, 'alice@example.org', 'alice pw'), /^\+OK/, 'still cached');
    // A name that is not valid never reaches the database: refused as ever, not [SYS/TEMP].
    assert.equal(await loginAndRetr(d.port, 'x'.repeat(65), 'x'), BAD_LOGIN);
    await d.waitForLog((e) => e.msg.startsWith('user database not answering'));
    const down = d.logs.filter((e) => e.msg.startsWith('user database not answering'));
    assert.equal(down.length, 1, 'logged once, not per login');
    assert.equal(down[0]?.['backend'], 'postgresql');

    await db.start();
    assert.match(
      await loginAndRetr(d.port, 'bob@example.org', 'bob pw'),
      /^\+OK/,
      'unseen user, database back',
    );
    assert.match(await loginAndRetr(d.port, 'alice@example.org', 'alice pw'), /^\+OK/);
    await d.waitForLog((e) => e.msg === 'user database answering again');
    assert.equal(d.logs.filter((e) => e.msg === 'user database answering again').length, 1);
    assert.equal(await d.stop(), 0);
  },
);

test(
  'with cacheTtlMs = 0 nobody logs in while PostgreSQL is stopped, and nobody gets [AUTH] for it',
  LIMIT,
  async (t) => {
    const { d, db } = await startWithDatabase(
      t,
      { 'alice@example.org': '{PLAIN}alice pw' },
      { extraToml: 'cacheTtlMs = 0\n' },
    );
    assert.match(await loginAndRetr(d.port, 'alice@example.org', 'alice pw'), /^\+OK/);
    await db.stop();
    t.after(() => db.start().catch(() => undefined));
    assert.equal(await loginAndRetr(d.port, 'alice@example.org', 'alice pw'), TEMP_LOGIN);
    assert.equal(await loginAndRetr(d.port, 'alice@example.org', 'wrong'), TEMP_LOGIN);
    await db.start();
    assert.match(await loginAndRetr(d.port, 'alice@example.org', 'alice pw'), /^\+OK/);
    assert.equal(await d.stop(), 0);
  },
);

test(
  'the monitor adds, lists and deletes users through the [userdb] queries; without them it refuses',
  LIMIT,
  async (t) => {
    const admins = await opsAdminsFile(t);
    const table = `daemon${tables + 1}.mailbox`;
    const { d, db } = await startWithDatabase(
      t,
      { 'alice@example.org': '{PLAIN}alice pw' },
      {
        extraToml:
          `addQuery = "INSERT INTO ${table} (username, password, active) VALUES ($1, $2, true) ON CONFLICT (username) DO UPDATE SET password = EXCLUDED.password"\n` +
          `deleteQuery = "DELETE FROM ${table} WHERE username = $1"\n` +
          `listQuery = "SELECT username FROM ${table} ORDER BY username"\n`,
        args: ['--admins', admins, '--password-scheme', 'SHA512-CRYPT'],
      },
    );
    const ctl = opsCtl(t, d);
    assert.equal((await ctl(['users', 'list'])).stdout, 'alice@example.org\n');
    const added = await ctl(['users', 'add', 'zoe@example.org'], 'zoe pw\n');
    assert.equal(added.code, 0, added.stderr);
    const { rows } = await db.query(`SELECT password FROM ${table} WHERE username = 'zoe@example.org'`);
    assert.match(
      String(rows[0]?.['password']),
      /^\{SHA512-CRYPT\}\$6\$/,
      'stored hashed with passwordScheme',
    );
    await buildMaildir(join(d.started['maildir'] as string), 'zoe@example.org', [{ content: MESSAGE }]);
    assert.match(await loginAndRetr(d.port, 'zoe@example.org', 'zoe pw'), /^\+OK/);
    assert.equal((await ctl(['users', 'add', 'zoe@example.org'], 'zoe new\n')).code, 0, 'a new password');
    assert.equal(await loginAndRetr(d.port, 'zoe@example.org', 'zoe pw'), BAD_LOGIN);
    assert.equal((await ctl(['users', 'list'])).stdout, 'alice@example.org\nzoe@example.org\n');
    assert.equal((await ctl(['users', 'del', 'zoe@example.org'])).code, 0);
    assert.equal(await loginAndRetr(d.port, 'zoe@example.org', 'zoe new'), BAD_LOGIN);
    assert.equal((await ctl(['users', 'list'])).stdout, 'alice@example.org\n');
    assert.notEqual((await ctl(['users', 'del', 'zoe@example.org'])).code, 0, 'no such user');
    assert.equal(await d.stop(), 0);

    // Without the queries, each change is refused as on a server without a users directory.
    const plain = await startWithDatabase(
      t,
      { 'alice@example.org': '{PLAIN}alice pw' },
      { args: ['--admins', admins] },
    );
    const refused = opsCtl(t, plain.d);
    for (const run of [
      await refused(['users', 'list']),
      await refused(['users', 'add', 'zoe@example.org'], 'zoe pw\n'),
      await refused(['users', 'del', 'alice@example.org']),
    ]) {
      assert.notEqual(run.code, 0);
      assert.match(run.stderr, /status 0x04|refused|cannot/);
    }
    assert.match(await loginAndRetr(plain.d.port, 'alice@example.org', 'alice pw'), /^\+OK/);
  },
);

test('with --workers 2 every worker asks PostgreSQL', LIMIT, async (t) => {
  const { d } = await startWithDatabase(
    t,
    { 'alice@example.org': await hashPassword('alice pw', 'SSHA512') },
    { args: ['--workers', '2'] },
  );
  for (let i = 0; i < 4; i++) {
    assert.match(await loginAndRetr(d.port, 'alice@example.org', 'alice pw'), /^\+OK/);
    assert.equal(await loginAndRetr(d.port, 'alice@example.org', 'wrong'), BAD_LOGIN);
  }
  assert.equal(await d.stop(), 0);
});
