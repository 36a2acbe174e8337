// The `poplar` daemon with --users: passwd-file logins, `poplar hash-password`, reloads, login logs.
import assert from 'node:assert/strict';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runPoplar, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { scramClientFinal } from '../helpers/scram-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const BAD_LOGIN = '-ERR [AUTH] invalid user name or password';

interface UsersDaemon {
  readonly d: RunningDaemon;
  readonly cwd: string;
  readonly usersFile: string;
}

/**
 * A daemon with `--users <cwd>/users` (holding `usersText`) on 127.0.0.1, failed logins answered
 * at once (authFailureDelayMs = 0 from a config file), every command logged (debug).
 */
async function startWithUsers(
  t: TestContext,
  usersText: string,
  options: { readonly usersPath?: string } = {},
): Promise<UsersDaemon> {
  const cwd = await tempDir(t);
  const usersFile = options.usersPath ?? join(cwd, 'users');
  if (options.usersPath === undefined) await writeFile(usersFile, usersText);
  await writeFile(join(cwd, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\nmaxAuthFailures = 10\n');
  const d = await startDaemon(t, {
    args: [
      '--config',
      'poplar.toml',
      '--users',
      usersFile,
      '--listen',
      '127.0.0.1',
      '-p',
      '0',
      '-m',
      'mail',
      '--log-level',
      'debug',
    ],
    cwd,
  });
  return { d, cwd, usersFile };
}

/** USER + PASS on a new connection; returns the PASS reply. */
async function tryLogin(port: number, user: string, password: string): Promise<string> {
  const client = await Pop3TestClient.connect(port);
  try {
    assert.equal(await client.command(`USER ${user}`), '+OK send PASS');
    const reply = await client.command(`PASS ${password}`);
    if (reply.startsWith('+OK')) assert.match(await client.command('QUIT'), /^\+OK Poplar signing off/);
    return reply;
  } finally {
    client.close();
  }
}

/** Runs `poplar hash-password` with the password on stdin; returns its stdout. */
async function hashPassword(t: TestContext, password: string, args: readonly string[] = []): Promise<string> {
  const run = await runPoplar(t, ['hash-password', ...args], { input: `${password}\n` });
  assert.equal(run.stderr, '');
  assert.equal(run.code, 0);
  assert.ok(!run.stdout.includes(password), 'the password itself is not printed');
  return run.stdout;
}

test('a {PLAIN} user logs in; a wrong password gets -ERR [AUTH]', async (t) => {
  const { d } = await startWithUsers(t, 'alice:{PLAIN}plain pass 1\n');
  assert.equal(d.started['demo'], false);
  assert.deepEqual(
    d.addresses.map((a) => a.address),
    ['127.0.0.1'],
  );
  // The whole rest of the PASS line is the password, spaces included.
  assert.equal(await tryLogin(d.port, 'alice', 'plain pass 1'), '+OK alice has 0 messages (0 octets)');
  assert.equal(await tryLogin(d.port, 'alice', 'plain pass'), BAD_LOGIN);
  assert.equal(await tryLogin(d.port, 'alice', 'plain pass 1 '), BAD_LOGIN);
  assert.equal(await d.stop(), 0);
});

test('poplar hash-password prints a {PBKDF2} field, a whole line with --user, and {SSHA512} with --scheme', async (t) => {
  const field = await hashPassword(t, 'hashed secret 2');
  assert.match(field, /^\{PBKDF2\}\$1\$[A-Za-z0-9_-]+\$100000\$[0-9a-f]{40}\n$/);

  const bobLine = await hashPassword(t, 'hashed secret 2', ['--user', 'bob']);
  assert.match(bobLine, /^bob:\{PBKDF2\}\$1\$[A-Za-z0-9_-]+\$100000\$[0-9a-f]{40}\n$/);
  assert.notEqual(bobLine, `bob:${field}`, 'a new salt every time');

  const carolLine = await hashPassword(t, 'ssha secret 3', ['--scheme', 'SSHA512', '--user', 'carol']);
  const m = /^carol:\{SSHA512\}([A-Za-z0-9+/]+={0,2})\n$/.exec(carolLine);
  assert.ok(m, carolLine);
  assert.equal(Buffer.from(m[1] ?? '', 'base64').length, 64 + 8, 'SHA-512 digest and an 8-byte salt');

  const { d } = await startWithUsers(t, `dave:${field}${bobLine}${carolLine}`);
  await d.waitForLog((e) => e.msg === 'users loaded' && e['users'] === 3);
  assert.equal(await tryLogin(d.port, 'dave', 'hashed secret 2'), '+OK dave has 0 messages (0 octets)');
  assert.equal(await tryLogin(d.port, 'bob', 'hashed secret 2'), '+OK bob has 0 messages (0 octets)');
  assert.equal(await tryLogin(d.port, 'carol', 'ssha secret 3'), '+OK carol has 0 messages (0 octets)');
  assert.equal(await tryLogin(d.port, 'bob', 'hashed secret 3'), BAD_LOGIN);
  assert.equal(await tryLogin(d.port, 'carol', 'ssha secret 2'), BAD_LOGIN);
  assert.equal(await d.stop(), 0);
});

test('poplar hash-password refuses an unknown scheme, a bad user name and an empty password', async (t) => {
  const scheme = await runPoplar(t, ['hash-password', '--scheme', 'MD5'], { input: 'pw\n' });
  assert.equal(scheme.code, 2);
  assert.match(
    scheme.stderr,
    /^poplar hash-password: unknown scheme MD5; known: PLAIN, PBKDF2, SSHA, SSHA256, SSHA512, SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, CRYPT, ARGON2I, ARGON2ID, SCRAM-SHA-256\n$/,
  );
  const user = await runPoplar(t, ['hash-password', '--user', 'a:b'], { input: 'pw\n' });
  assert.equal(user.code, 2);
  assert.equal(user.stderr, 'poplar hash-password: invalid user name\n');
  const empty = await runPoplar(t, ['hash-password'], { input: '\n' });
  assert.equal(empty.code, 2);
  assert.equal(empty.stderr, 'poplar hash-password: give one non-empty password on stdin\n');
  for (const run of [scheme, user, empty]) assert.equal(run.stdout, '');
});

test('a malformed users-file line is logged with its line number and skipped; the daemon keeps running', async (t) => {
  const { d, usersFile } = await startWithUsers(
    t,
    [
      '# users of the test',
      'alice:{PLAIN}alice-pw',
      'this line has no colon',
      'bob:{NOSUCH}x',
      '',
      'carol:{PLAIN}carol-pw:1000:1000::/home/carol',
      'alice:{PLAIN}second-alice',
      '',
    ].join('\n'),
  );
  const skipped = d.logs
    .filter((e) => e.msg === 'users file line skipped')
    .map((e) => [e['line'], e['problem'], e['file'], e.level]);
  assert.deepEqual(skipped, [
    [3, 'expected user:{SCHEME}password', usersFile, 40],
    [4, 'unsupported password scheme {NOSUCH}', usersFile, 40],
    [7, 'user alice already defined, line ignored', usersFile, 40],
  ]);
  assert.ok(d.logs.some((e) => e.msg === 'users loaded' && e['users'] === 2));
  assert.equal(await tryLogin(d.port, 'alice', 'alice-pw'), '+OK alice has 0 messages (0 octets)');
  assert.equal(await tryLogin(d.port, 'alice', 'second-alice'), BAD_LOGIN);
  assert.equal(await tryLogin(d.port, 'carol', 'carol-pw'), '+OK carol has 0 messages (0 octets)');
  assert.equal(await tryLogin(d.port, 'bob', 'x'), BAD_LOGIN);
  assert.equal(d.child.exitCode, null, 'still running');
  assert.ok(!d.stdout().includes('second-alice'), 'the skipped line is not logged');
  assert.equal(await d.stop(), 0);
});

test('the users file is re-read when it changes: added, removed and replaced users', async (t) => {
  const { d, usersFile, cwd } = await startWithUsers(t, 'alice:{PLAIN}alice-pw\n');
  assert.equal(await tryLogin(d.port, 'bob', 'bob-pw'), BAD_LOGIN);

  let since = d.logs.length;
  await writeFile(usersFile, 'alice:{PLAIN}alice-pw\nbob:{PLAIN}bob-pw\n');
  await d.waitForLog((e) => e.msg === 'users loaded' && e['users'] === 2, { since });
  assert.equal(await tryLogin(d.port, 'bob', 'bob-pw'), '+OK bob has 0 messages (0 octets)');
  assert.equal(await tryLogin(d.port, 'alice', 'alice-pw'), '+OK alice has 0 messages (0 octets)');

  // Written elsewhere and renamed over the file, as editors and config tools do.
  since = d.logs.length;
  await writeFile(join(cwd, 'users.new'), 'bob:{PLAIN}new-bob-pw\n');
  await rename(join(cwd, 'users.new'), usersFile);
  await d.waitForLog((e) => e.msg === 'users loaded' && e['users'] === 1, { since });
  assert.equal(await tryLogin(d.port, 'bob', 'new-bob-pw'), '+OK bob has 0 messages (0 octets)');
  assert.equal(await tryLogin(d.port, 'alice', 'alice-pw'), BAD_LOGIN);
  assert.equal(await tryLogin(d.port, 'bob', 'bob-pw'), BAD_LOGIN);
  assert.equal(await d.stop(), 0);
});

test('SIGHUP re-reads the users file (a change the watcher cannot see, behind a symbolic link)', async (t) => {
  const realDir = await tempDir(t);
  const linkDir = await tempDir(t);
  await mkdir(join(realDir, 'etc'));
  const realFile = join(realDir, 'etc', 'users');
  await writeFile(realFile, 'alice:{PLAIN}alice-pw\n');
  const usersPath = join(linkDir, 'users');
  await symlink(realFile, usersPath);
  const { d } = await startWithUsers(t, '', { usersPath });
  assert.equal(await tryLogin(d.port, 'alice', 'alice-pw'), '+OK alice has 0 messages (0 octets)');

  await writeFile(realFile, 'alice:{PLAIN}alice-pw\nbob:{PLAIN}bob-pw\n');
  assert.equal(await tryLogin(d.port, 'bob', 'bob-pw'), BAD_LOGIN, 'not seen before SIGHUP');
  const since = d.logs.length;
  d.child.kill('SIGHUP');
  await d.waitForLog((e) => e.msg === 'users loaded' && e['users'] === 2, { since });
  assert.equal(await tryLogin(d.port, 'bob', 'bob-pw'), '+OK bob has 0 messages (0 octets)');
  assert.equal(d.child.exitCode, null, 'SIGHUP does not stop the daemon');
  assert.equal(d.child.signalCode, null);
  assert.equal(await d.stop(), 0);
});

test('an unknown user gets +OK to USER and -ERR [AUTH] to PASS, like a wrong password', async (t) => {
  const { d } = await startWithUsers(t, 'alice:{PLAIN}alice-pw\n');
  const client = await Pop3TestClient.connect(d.port);
  assert.equal(await client.command('USER nobody'), '+OK send PASS');
  assert.equal(await client.command('PASS alice-pw'), BAD_LOGIN);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS not-alice-pw'), BAD_LOGIN);
  // The connection stays usable: the right password still works.
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS alice-pw'), '+OK alice has 0 messages (0 octets)');
  assert.match(await client.command('QUIT'), /^\+OK Poplar signing off/);
  client.close();
  assert.equal(await d.stop(), 0);
});

test('logins and failed logins are logged with user and method, and passwords never are', async (t) => {
  const goodPassword = 'Good-Pw-7f3a9c';
  const wrongPassword = 'Wrong-Guess-b41e07';
  const unknownUserPassword = 'Nobody-Pw-5d28e1';
  const { d } = await startWithUsers(t, `alice:{PLAIN}${goodPassword}\n`);
  assert.equal(await tryLogin(d.port, 'alice', goodPassword), '+OK alice has 0 messages (0 octets)');
  assert.equal(await tryLogin(d.port, 'alice', wrongPassword), BAD_LOGIN);
  assert.equal(await tryLogin(d.port, 'nobody', unknownUserPassword), BAD_LOGIN);
  assert.equal(await d.stop(), 0);

  const logins = d.logs
    .filter((e) => e.msg === 'login' || e.msg === 'login failed')
    .map((e) => ({ msg: e.msg, user: e['user'], method: e['method'], result: e['result'] }));
  assert.deepEqual(logins, [
    { msg: 'login', user: 'alice', method: 'USER', result: 'ok' },
    { msg: 'login failed', user: 'alice', method: 'USER', result: 'invalid' },
    { msg: 'login failed', user: 'nobody', method: 'USER', result: 'invalid' },
  ]);
  for (const e of d.logs.filter((x) => x.msg === 'login' || x.msg === 'login failed'))
    assert.equal(typeof e['cid'], 'string');
  // At debug level every command is logged: PASS among them, without its argument.
  assert.ok(d.logs.some((e) => e.msg === 'command' && e['cmd'] === 'PASS'));
  const output = d.stdout() + d.stderr();
  for (const password of [goodPassword, wrongPassword, unknownUserPassword])
    assert.ok(!output.includes(password), `the log does not contain ${password}`);
  // The same check, case-insensitively and on the parsed values, in case of escaping.
  const lowered = JSON.stringify(d.logs, (key, value: unknown) =>
    key === 'raw' ? undefined : value,
  ).toLowerCase();
  for (const password of [goodPassword, wrongPassword, unknownUserPassword])
    assert.ok(!lowered.includes(password.toLowerCase()));
});

test('--password-scheme SCRAM-SHA-256: the demo user is stored SCRAM-ready and logs in with SASL SCRAM-SHA-256', async (t) => {
  const cwd = await tempDir(t);
  const d = await startDaemon(t, { args: ['-p', '0', '--password-scheme', 'SCRAM-SHA-256'], cwd });
  const users = await readFile(join(cwd, 'directories', '.poplar-users'), 'utf8');
  assert.match(users, /^foo:\{SCRAM-SHA-256\}4096,[A-Za-z0-9+/=]+,[A-Za-z0-9+/=]+,[A-Za-z0-9+/=]+\n$/);
  const client = await Pop3TestClient.connect(d.port);
  t.after(() => {
    client.close();
  });
  const capa = await client.multi('CAPA');
  assert.ok(capa.lines.includes('SASL SCRAM-SHA-256 PLAIN LOGIN'), capa.lines.join('|'));
  const clientFirstBare = 'n=foo,r=fyko+d2lbbFgONRv9qkxdawL';
  const first = await client.command(
    `AUTH SCRAM-SHA-256 ${Buffer.from(`n,,${clientFirstBare}`).toString('base64')}`,
  );
  assert.match(first, /^\+ /);
  const serverFirst = Buffer.from(first.slice(2), 'base64').toString();
  const final = scramClientFinal({ password: 'bar', gs2Header: 'n,,', clientFirstBare, serverFirst });
  const second = await client.command(Buffer.from(final.message).toString('base64'));
  assert.equal(Buffer.from(second.slice(2), 'base64').toString(), final.expectedServerFinal);
  assert.match(await client.command(''), /^\+OK foo has 1 message/);
});
