import assert from 'node:assert/strict';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import fc from 'fast-check';
import { tempDir } from '../../helpers/temp-dir.js';
import type { Logger } from '../../../src/log.js';
import { parsePasswdFile, PasswdFileAuthenticator } from '../../../src/auth/passwd-file.js';
import { apopDigest } from '../../../src/auth/digests.js';
import { findScheme } from '../../../src/auth/passwords/registry.js';
import type { PasswordScheme } from '../../../src/auth/passwords/types.js';
import type { ApopAuthRequest, AuthResult, PasswordAuthRequest } from '../../../src/auth/types.js';

// From `doveadm pw -s SSHA256 -p 'secret'` and `doveadm pw -s PBKDF2 -p 'pässwörd'` (Dovecot 2.3).
const BOB_SSHA256 = '{SSHA256}zJsnE4H12XgMj2ZbR4FxvQdugjnRm42LSzzugEEBFO6fLp35';
const CAROL_PBKDF2 = '{PBKDF2}$1$RkbWVlYhiOWgbzdp$5000$8a334b406cedb886aca4011ba3a08df76b00a6c9';

const USERS_FILE = [
  '# Poplar users',
  'alice:{PLAIN}secret',
  `bob:${BOB_SSHA256}:1000:1000::/home/bob::userdb_quota_rule=*:storage=1G`,
  '',
  `carol:${CAROL_PBKDF2}`,
  'dave:{CLEARTEXT}plain too',
  '',
].join('\n');

const signal = new AbortController().signal;

const login = (username: string, password: string): PasswordAuthRequest => ({
  mechanism: 'USER',
  username,
  password,
  remoteAddress: '192.0.2.1',
  isTls: false,
  signal,
});

const apop = (username: string, timestamp: string, digest: string): ApopAuthRequest => ({
  mechanism: 'APOP',
  username,
  timestamp,
  digest,
  remoteAddress: '192.0.2.1',
  isTls: true,
  signal,
});

const accepted = (name: string): AuthResult => ({ ok: true, user: { name } });
const refused: AuthResult = { ok: false, reason: 'invalid' };

describe('parsePasswdFile', () => {
  test('valid lines; extra Dovecot fields after the password are ignored', () => {
    const { users, problems } = parsePasswdFile(USERS_FILE);
    assert.deepEqual(problems, []);
    assert.deepEqual([...users.keys()], ['alice', 'bob', 'carol', 'dave']);
    assert.equal(users.get('alice')?.scheme.name, 'PLAIN');
    assert.equal(users.get('alice')?.data, 'secret');
    assert.equal(users.get('bob')?.scheme.name, 'SSHA256');
    assert.equal(users.get('bob')?.data, BOB_SSHA256.slice('{SSHA256}'.length));
    assert.equal(users.get('carol')?.scheme.name, 'PBKDF2');
    assert.equal(users.get('dave')?.scheme.name, 'PLAIN');
    assert.equal(users.get('dave')?.data, 'plain too');
  });

  test('comments, blank and whitespace-only lines are skipped', () => {
    const { users, problems } = parsePasswdFile('# a comment\n\n   \n\t\n#alice:{PLAIN}x\nbob:{PLAIN}y\n');
    assert.deepEqual(problems, []);
    assert.deepEqual([...users.keys()], ['bob']);
  });

  test('CRLF files: the CR is not part of the password', async () => {
    const { users, problems } = parsePasswdFile('# c\r\nalice:{PLAIN}secret\r\n\r\nbob:{PLAIN}pw\r\n');
    assert.deepEqual(problems, []);
    assert.equal(users.get('alice')?.data, 'secret');
    assert.equal(await users.get('bob')?.scheme.verify('pw', users.get('bob')?.data ?? ''), true);
  });

  test('a last line without newline is read', () => {
    assert.deepEqual([...parsePasswdFile('alice:{PLAIN}a\nbob:{PLAIN}b').users.keys()], ['alice', 'bob']);
  });

  test('an empty file has no users and no problems', () => {
    assert.deepEqual(parsePasswdFile(''), { users: new Map(), policies: new Map(), problems: [] });
  });

  test('malformed lines are reported with their 1-based number and skipped', () => {
    const text = [
      'alice:{PLAIN}secret', // 1
      'no colon here', // 2
      '../x:{PLAIN}pw', // 3
      ':{PLAIN}pw', // 4
      'eve:{MD5-CRYPT}$1$abc$def', // 5
      'alice:{PLAIN}other', // 6
      '# fine', // 7
      'frank:secret', // 8
      'gina:{PBKDF2}$1$salt$5000$nothex', // 9
      'hal:{PLAIN}ok', // 10
      'user name:{PLAIN}pw', // 11
      '.hidden:{PLAIN}pw', // 12
    ].join('\n');
    const { users, problems } = parsePasswdFile(text);
    assert.deepEqual([...users.keys()], ['alice', 'hal']);
    assert.equal(users.get('alice')?.data, 'secret', 'the first definition wins');
    assert.deepEqual(problems, [
      { line: 2, message: 'expected user:{SCHEME}password' },
      { line: 3, message: 'invalid user name' },
      { line: 4, message: 'invalid user name' },
      { line: 5, message: 'unsupported password scheme {MD5-CRYPT}' },
      { line: 6, message: 'user alice already defined, line ignored' },
      { line: 8, message: 'password must start with {SCHEME}' },
      { line: 9, message: 'malformed {PBKDF2} password' },
      { line: 11, message: 'invalid user name' },
      { line: 12, message: 'invalid user name' },
    ]);
  });

  test('UTF-8 names in their prepared form are read; another spelling is reported with the right one', () => {
    const text = [
      'zoë:{PLAIN}pw', // 1: composed
      'zoe\u0308:{PLAIN}pw', // 2: decomposed
      '用户:{PLAIN}pw', // 3
      'ｊｏｈｎ:{PLAIN}pw', // 4: fullwidth
      'a\u202eb:{PLAIN}pw', // 5: a bidirectional control
      'ａ／ｂ:{PLAIN}pw', // 6: fullwidth, "a/b" prepared
      `${'é'.repeat(33)}:{PLAIN}pw`, // 7: 66 bytes
    ].join('\n');
    const { users, problems } = parsePasswdFile(text);
    assert.deepEqual([...users.keys()], ['zoë', '用户']);
    assert.deepEqual(problems, [
      { line: 2, message: 'invalid user name, write it as zoë' },
      { line: 4, message: 'invalid user name, write it as john' },
      { line: 5, message: 'invalid user name' },
      { line: 6, message: 'invalid user name' },
      { line: 7, message: 'invalid user name' },
    ]);
  });

  test('line numbers count CRLF lines and blank lines', () => {
    const { problems } = parsePasswdFile('\r\n# x\r\nbad\r\n');
    assert.deepEqual(problems, [{ line: 3, message: 'expected user:{SCHEME}password' }]);
  });

  test('a duplicate after a malformed first definition is taken', () => {
    const { users, problems } = parsePasswdFile('alice:{NOPE}x\nalice:{PLAIN}y\n');
    assert.equal(users.get('alice')?.data, 'y');
    assert.deepEqual(problems, [{ line: 1, message: 'unsupported password scheme {NOPE}' }]);
  });

  test('property: never throws on junk; problems point at real lines; users have valid names', () => {
    const junk = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc
        .array(
          fc.oneof(
            fc.constantFrom(
              'alice:{PLAIN}x',
              '#',
              '',
              ':',
              '{PLAIN}',
              'a:{SSHA256}',
              'b:{PBKDF2}$1$',
              '\r',
              ':::',
            ),
            fc.string({ maxLength: 20 }),
          ),
          { maxLength: 20 },
        )
        .map((lines) => lines.join('\n')),
    );
    fc.assert(
      fc.property(junk, (text) => {
        const { users, problems } = parsePasswdFile(text);
        const lineCount = text.split('\n').length;
        for (const p of problems) assert.ok(p.line >= 1 && p.line <= lineCount);
        for (const name of users.keys()) assert.match(name, /^[A-Za-z0-9_+@-][A-Za-z0-9._+@-]{0,63}$/);
      }),
      { numRuns: 1000 },
    );
  });
});

async function usersFile(t: TestContext, text: string): Promise<string> {
  const path = join(await tempDir(t), 'users');
  await writeFile(path, text);
  return path;
}

async function loaded(t: TestContext, text = USERS_FILE): Promise<PasswdFileAuthenticator> {
  const auth = new PasswdFileAuthenticator(await usersFile(t, text));
  await auth.reload();
  return auth;
}

/** Waits until `condition` holds, re-checking every 20 ms; fails after a generous deadline. */
async function waitFor(what: string, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(20);
  }
}

const canLogIn = (auth: PasswdFileAuthenticator, user: string, password: string) => async () =>
  (await auth.authenticate(login(user, password))).ok;

/** A logger that counts reloads. */
function countingLogger(): Logger & { loads: number } {
  const logger = {
    loads: 0,
    debug() {},
    info(_fields: object, message?: string) {
      if (message === 'users loaded') logger.loads += 1;
    },
    warn() {},
    error() {},
    child: () => logger,
  };
  return logger;
}

describe('PasswdFileAuthenticator', () => {
  test('authenticate: right password for every scheme', async (t) => {
    const auth = await loaded(t);
    assert.equal(auth.userCount, 4);
    assert.deepEqual(await auth.authenticate(login('alice', 'secret')), accepted('alice'));
    assert.deepEqual(await auth.authenticate(login('bob', 'secret')), accepted('bob'));
    assert.deepEqual(await auth.authenticate(login('carol', 'pässwörd')), accepted('carol'));
    assert.deepEqual(await auth.authenticate(login('dave', 'plain too')), accepted('dave'));
  });

  test('authenticate: wrong password', async (t) => {
    const auth = await loaded(t);
    for (const [user, password] of [
      ['alice', 'Secret'],
      ['alice', ''],
      ['bob', 'secret '],
      ['carol', 'passwörd'],
      ['dave', 'plain'],
    ] as const) {
      assert.deepEqual(await auth.authenticate(login(user, password)), refused, `${user} ${password}`);
    }
  });

  test('authenticate: unknown user gets the same answer as a wrong password', async (t) => {
    const auth = await loaded(t);
    assert.deepEqual(await auth.authenticate(login('mallory', 'secret')), refused);
    assert.deepEqual(await auth.authenticate(login('Alice', 'secret')), refused, 'names are case-sensitive');
    assert.deepEqual(await auth.authenticate(login('decoy', 'decoy password')), refused);
  });

  describe('a failed login costs the same work whether or not the name exists', () => {
    /** Counts the `verify` calls of the registry's scheme `name` (the one every parsed entry of it uses). */
    const spyOn = (t: TestContext, name: string) => {
      const scheme: PasswordScheme | undefined = findScheme(name);
      assert.ok(scheme !== undefined);
      return t.mock.method(scheme, 'verify').mock;
    };

    test("an unknown user's password is verified once, against one user's real hash, the same every time", async (t) => {
      const auth = await loaded(t, `alice:${BOB_SSHA256}\nbob:${BOB_SSHA256}\ncarol:${CAROL_PBKDF2}\n`);
      const ssha = spyOn(t, 'SSHA256');
      const pbkdf2 = spyOn(t, 'PBKDF2');
      // Password and data; the third argument is the request's signal.
      const verified = (): unknown[][] => {
        const calls = [...ssha.calls, ...pbkdf2.calls].map((call) => call.arguments.slice(0, 2));
        ssha.resetCalls();
        pbkdf2.resetCalls();
        return calls;
      };

      assert.deepEqual(await auth.authenticate(login('bob', 'wrong')), refused);
      assert.deepEqual(verified(), [['wrong', BOB_SSHA256.slice('{SSHA256}'.length)]]);

      assert.deepEqual(await auth.authenticate(login('mallory', 'wrong')), refused);
      const decoy = verified();
      assert.equal(decoy.length, 1, 'one verification, as for a user');
      const entries = [BOB_SSHA256.slice('{SSHA256}'.length), CAROL_PBKDF2.slice('{PBKDF2}'.length)];
      assert.ok(entries.includes(String(decoy[0]?.[1])), 'against an entry of the file');
      assert.deepEqual(await auth.authenticate(login('mallory', 'other')), refused);
      assert.deepEqual(verified(), [['other', decoy[0]?.[1]]], 'the same entry again');
    });

    test('with no users, an unknown user is verified against a default-scheme hash', async (t) => {
      const auth = await loaded(t, '# nobody\n');
      const pbkdf2 = spyOn(t, 'PBKDF2');
      assert.deepEqual(await auth.authenticate(login('mallory', 'wrong')), refused);
      assert.equal(pbkdf2.callCount(), 1);
      const [call] = pbkdf2.calls;
      assert.ok(call !== undefined);
      const [password, data] = call.arguments;
      assert.equal(password, 'wrong');
      assert.equal(findScheme('PBKDF2')?.problem(data), undefined, 'a real hash');
    });
  });

  test('authenticate before any reload knows no users', async () => {
    const auth = new PasswdFileAuthenticator('/nonexistent/users');
    assert.deepEqual(await auth.authenticate(login('alice', 'secret')), refused);
  });

  test('apopDigest matches the example in RFC 1939 section 7', () => {
    assert.equal(
      apopDigest('<1896.697170952@dbc.mtview.ca.us>', 'tanstaaf'),
      'c4c9334bac560ecc979e58001b3e22fb',
    );
  });

  test('authenticateApop works for {PLAIN} users only', async (t) => {
    const auth = await loaded(t);
    const ts = '<1896.697170952@dbc.mtview.ca.us>';
    assert.deepEqual(
      await auth.authenticateApop(apop('alice', ts, apopDigest(ts, 'secret'))),
      accepted('alice'),
    );
    assert.deepEqual(
      await auth.authenticateApop(apop('dave', ts, apopDigest(ts, 'plain too'))),
      accepted('dave'),
    );
    // Wrong secret, wrong timestamp.
    assert.deepEqual(await auth.authenticateApop(apop('alice', ts, apopDigest(ts, 'secreT'))), refused);
    assert.deepEqual(
      await auth.authenticateApop(apop('alice', ts, apopDigest('<1.2@x>', 'secret'))),
      refused,
    );
    // Hashed users: neither the password nor the stored hash works as the APOP secret.
    assert.deepEqual(await auth.authenticateApop(apop('bob', ts, apopDigest(ts, 'secret'))), refused);
    const bobData = BOB_SSHA256.slice('{SSHA256}'.length);
    assert.deepEqual(await auth.authenticateApop(apop('bob', ts, apopDigest(ts, bobData))), refused);
    assert.deepEqual(await auth.authenticateApop(apop('bob', ts, apopDigest(ts, BOB_SSHA256))), refused);
    assert.deepEqual(await auth.authenticateApop(apop('carol', ts, apopDigest(ts, 'pässwörd'))), refused);
    // Unknown users, including with the placeholder the implementation may use internally.
    assert.deepEqual(await auth.authenticateApop(apop('mallory', ts, apopDigest(ts, ''))), refused);
    assert.deepEqual(await auth.authenticateApop(apop('mallory', ts, apopDigest(ts, '\0'))), refused);
  });

  test('authenticateApop refuses a user whose {PLAIN} password is empty', async (t) => {
    // Otherwise the digest of the greeting's timestamp alone would log in; PASS refuses it too.
    const auth = await loaded(t, 'alice:{PLAIN}\nbob:{CLEARTEXT}\n');
    const ts = '<1.2@example.org>';
    assert.deepEqual(await auth.authenticateApop(apop('alice', ts, apopDigest(ts, ''))), refused);
    assert.deepEqual(await auth.authenticateApop(apop('bob', ts, apopDigest(ts, ''))), refused);
  });

  test('isApopOffered() only when every user has a {PLAIN} password', async (t) => {
    assert.equal((await loaded(t, 'alice:{PLAIN}a\ndave:{CLEARTEXT}d\n')).isApopOffered(), true);
    assert.equal((await loaded(t)).isApopOffered(), false, 'bob and carol are hashed');
    assert.equal((await loaded(t, '# nobody\n')).isApopOffered(), false);
  });

  test('reload() picks up a changed file and reports its problems', async (t) => {
    const auth = await loaded(t);
    await writeFile(auth.path, 'alice:{PLAIN}new\nbroken\nzed:{PLAIN}z\n');
    assert.deepEqual(await auth.reload(), [{ line: 2, message: 'expected user:{SCHEME}password' }]);
    assert.equal(auth.userCount, 2);
    assert.deepEqual(await auth.authenticate(login('alice', 'new')), accepted('alice'));
    assert.deepEqual(await auth.authenticate(login('alice', 'secret')), refused);
    assert.deepEqual(await auth.authenticate(login('bob', 'secret')), refused, 'bob was removed');
    assert.deepEqual(await auth.authenticate(login('zed', 'z')), accepted('zed'));
  });

  test('deleteUser matches the name field exactly, never a line by its secret field', async (t) => {
    // Dovecot's full form: with a prefix match, "bob:{SSHA256}<hash>" would hit bob's line.
    const auth = await loaded(t);
    const before = await readFile(auth.path, 'utf8');
    for (const name of [`bob:${BOB_SSHA256}`, 'bob:', 'alice:{PLAIN}secret', 'alice:{PLAIN}', 'b']) {
      assert.equal(await auth.deleteUser(name), false, name);
    }
    assert.equal(await readFile(auth.path, 'utf8'), before, 'the file is unchanged');
    assert.deepEqual(await auth.authenticate(login('bob', 'secret')), accepted('bob'));
    assert.equal(await auth.deleteUser('bob'), true);
    assert.deepEqual(await auth.authenticate(login('bob', 'secret')), refused);
    assert.deepEqual(await auth.authenticate(login('alice', 'secret')), accepted('alice'));
  });

  test('reload() of a missing file rejects and keeps the previous users', async (t) => {
    const auth = await loaded(t);
    await rm(auth.path);
    await assert.rejects(auth.reload(), { code: 'ENOENT' });
    assert.deepEqual(await auth.authenticate(login('alice', 'secret')), accepted('alice'));
  });

  test('watch() picks up a file rewritten in place', async (t) => {
    const auth = await loaded(t);
    auth.watch();
    t.after(() => {
      auth.close();
    });
    await writeFile(auth.path, 'alice:{PLAIN}rewritten\n');
    await waitFor('the rewritten file', canLogIn(auth, 'alice', 'rewritten'));
    assert.deepEqual(await auth.authenticate(login('bob', 'secret')), refused);
  });

  test('watch() picks up a file replaced by rename (as editors and deploy tools do)', async (t) => {
    const auth = await loaded(t);
    auth.watch();
    auth.watch(); // a second call changes nothing
    t.after(() => {
      auth.close();
    });
    const tmp = `${auth.path}.new`;
    await writeFile(tmp, 'alice:{PLAIN}renamed\n');
    await rename(tmp, auth.path);
    await waitFor('the replaced file', canLogIn(auth, 'alice', 'renamed'));
  });

  test('a reload that finds the text already loaded logs nothing; a changed file logs once', async (t) => {
    const logger = countingLogger();
    const path = await usersFile(t, USERS_FILE);
    const auth = new PasswdFileAuthenticator(path, { logger });
    await auth.reload();
    await auth.reload();
    assert.equal(logger.loads, 1);
    await writeFile(path, 'alice:{PLAIN}v2\n');
    await auth.reload();
    assert.equal(logger.loads, 2);
    assert.equal(auth.userCount, 1);
  });

  test('isQuiet: loads are logged at debug level only', async (t) => {
    const logger = countingLogger();
    const path = await usersFile(t, USERS_FILE);
    await new PasswdFileAuthenticator(path, { logger, isQuiet: true }).reload();
    assert.equal(logger.loads, 0);
  });

  test('close() stops watching', async (t) => {
    const logger = countingLogger();
    const path = await usersFile(t, USERS_FILE);
    const closed = new PasswdFileAuthenticator(path, { logger });
    await closed.reload();
    assert.equal(logger.loads, 1);
    closed.watch();
    closed.close();
    // A second authenticator watching the same file shows when a change has been seen and
    // handled; the closed one would have reloaded by then had it still been watching.
    const witness = new PasswdFileAuthenticator(path);
    await witness.reload();
    witness.watch();
    t.after(() => {
      witness.close();
    });
    for (const password of ['v2', 'v3']) {
      await writeFile(path, `alice:{PLAIN}${password}\n`);
      await waitFor(`password ${password}`, canLogIn(witness, 'alice', password));
    }
    assert.equal(logger.loads, 1, 'the closed authenticator did not reload');
    assert.deepEqual(await closed.authenticate(login('alice', 'secret')), accepted('alice'));
    closed.close(); // closing twice is harmless
  });
});

describe('warnings at load (an empty {PLAIN} password, no usable user)', () => {
  /** The warnings a reload of `text` logs, as [message, fields]. */
  async function warningsOf(t: TestContext, text: string): Promise<[string, object][]> {
    const warnings: [string, object][] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn(fields, message) {
        warnings.push([message ?? '', fields]);
      },
      error() {},
      child: () => logger,
    };
    const auth = new PasswdFileAuthenticator(await usersFile(t, text), { logger });
    await auth.reload();
    return warnings;
  }

  test('an empty {PLAIN} password is named, and the rest of the file still loads', async (t) => {
    const warnings = await warningsOf(t, 'alice:{PLAIN}pw\nhank:{PLAIN}\n');
    assert.deepEqual(
      warnings.map(([message]) => message),
      ['users file entry with an empty {PLAIN} password: hank can never log in'],
    );
    assert.equal((warnings[0]?.[1] as { user?: string }).user, 'hank');
  });

  test('a file with no usable user warns; one usable user is enough', async (t) => {
    for (const text of ['', '# only a comment\nbad:line\n', 'hank:{PLAIN}\n']) {
      const messages = (await warningsOf(t, text)).map(([message]) => message);
      assert.ok(messages.includes('users file has no usable entry: no one can log in'), JSON.stringify(text));
    }
    const oneUsable = await warningsOf(t, 'alice:{PLAIN}pw\nhank:{PLAIN}\n');
    assert.deepEqual(
      oneUsable.map(([message]) => message),
      ['users file entry with an empty {PLAIN} password: hank can never log in'],
    );
  });
});
