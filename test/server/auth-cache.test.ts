// The authentication cache (src/pop3/auth-cache.ts): a repeat login with the password that logged
// a user in skips the slow hash. Counted by calls of the scheme's verify, never by time.
import assert from 'node:assert/strict';
import { pbkdf2Sync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type Mock, type TestContext } from 'node:test';
import { PasswdFileAuthenticator } from '../../src/auth/passwd-file.js';
import { findScheme } from '../../src/auth/passwords/registry.js';
import type { PasswordScheme } from '../../src/auth/passwords/types.js';
import { StaticAuthenticator } from '../../src/auth/static.js';
import { createMetricsRegistry } from '../../src/metrics/registry.js';
import type { Pop3Limits } from '../../src/pop3/limits.js';
import type { Pop3Server } from '../../src/pop3/server.js';
import { PASSWORD_LOGINS } from '../helpers/password-logins.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';

const OK = (user: string): string => `+OK ${user} has 0 messages (0 octets)`;
const REFUSED = '-ERR [AUTH] invalid user name or password';

/** A `{PBKDF2}` field with few rounds: the test counts hashes, it does not wait for them. */
function pbkdf2Field(password: string, salt = 'saltsalt'): string {
  const key = pbkdf2Sync(password, salt, 1000, 20, 'sha1').toString('hex');
  return `{PBKDF2}$1$${salt}$1000$${key}`;
}

interface Served {
  readonly server: Pop3Server;
  readonly port: number;
  readonly users: PasswdFileAuthenticator;
  /** Rewrites the users file and reads it again (the engine's cache is not told). */
  readonly rewrite: (lines: readonly string[]) => Promise<void>;
  /** Calls of PBKDF2's verify since the server started: the slow hashes. */
  readonly verify: Mock<PasswordScheme['verify']>;
}

async function serve(
  t: TestContext,
  lines: readonly string[],
  limits: Partial<Pop3Limits> = {},
): Promise<Served> {
  const path = join(await tempDir(t), 'users');
  const rewrite = async (next: readonly string[]): Promise<void> => {
    await writeFile(path, next.map((line) => `${line}\n`).join(''));
    await users.reload();
  };
  const users = new PasswdFileAuthenticator(path);
  await rewrite(lines);
  t.after(() => {
    users.close();
  });
  const pbkdf2 = findScheme('PBKDF2');
  assert.ok(pbkdf2 !== undefined);
  const verify = t.mock.method(pbkdf2, 'verify');
  const { server, port } = await startServer(t, {
    authenticator: users,
    mailboxes: {},
    limits: { maxAuthFailures: 100, ...limits },
  });
  return { server, port, users, rewrite, verify };
}

/** One login on a new connection by `method`; its last reply. */
async function login(port: number, user: string, password: string, method = 'USER/PASS'): Promise<string> {
  const client = await Pop3TestClient.connect(port);
  try {
    const log = PASSWORD_LOGINS[method];
    assert.ok(log !== undefined);
    return await log(client, user, password);
  } finally {
    client.close();
  }
}

const cacheStats = (server: Pop3Server): { hits: number; misses: number; entries: number } => ({
  hits: server.stats.authCacheHits,
  misses: server.stats.authCacheMisses,
  entries: server.stats.authCacheEntries,
});

describe('authentication cache', () => {
  for (const method of Object.keys(PASSWORD_LOGINS)) {
    test(`${method}: a repeat login with the same password skips the slow hash`, async (t) => {
      const { server, port, verify } = await serve(t, [`alice:${pbkdf2Field('pw')}`]);
      assert.equal(await login(port, 'alice', 'pw', method), OK('alice'));
      assert.equal(verify.mock.callCount(), 1);
      assert.equal(await login(port, 'alice', 'pw', method), OK('alice'));
      assert.equal(await login(port, 'alice', 'pw', method), OK('alice'));
      assert.equal(verify.mock.callCount(), 1, 'hashed once');
      assert.deepEqual(cacheStats(server), { hits: 2, misses: 1, entries: 1 });
    });
  }

  test('a wrong password after a cached right one is hashed, refused and never cached; the entry stays', async (t) => {
    const { server, port, verify } = await serve(t, [`alice:${pbkdf2Field('pw')}`]);
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(await login(port, 'alice', 'wrong'), REFUSED);
    assert.equal(verify.mock.callCount(), 2, 'the wrong password was hashed');
    assert.equal(await login(port, 'alice', 'wrong'), REFUSED);
    assert.equal(verify.mock.callCount(), 3, 'and hashed again: failures are not cached');
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(verify.mock.callCount(), 3, 'the right one is still cached');
    assert.deepEqual(cacheStats(server), { hits: 1, misses: 3, entries: 1 });
  });

  test('an unknown name is never cached: each attempt costs its decoy hash', async (t) => {
    const { server, port, verify } = await serve(t, [`alice:${pbkdf2Field('pw')}`]);
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    for (let i = 1; i <= 3; i += 1) {
      assert.equal(await login(port, 'nobody', 'pw'), REFUSED);
      assert.equal(verify.mock.callCount(), 1 + i);
    }
    assert.deepEqual(cacheStats(server), { hits: 0, misses: 4, entries: 1 });
  });

  test('a new password in the users file counts at once: the old one is refused, without a flush', async (t) => {
    const { port, rewrite, verify } = await serve(t, [
      `alice:${pbkdf2Field('old')}`,
      `bob:${pbkdf2Field('b')}`,
    ]);
    assert.equal(await login(port, 'alice', 'old'), OK('alice'));
    assert.equal(await login(port, 'bob', 'b'), OK('bob'));
    await rewrite([`alice:${pbkdf2Field('new')}`, `bob:${pbkdf2Field('b')}`]);
    assert.equal(await login(port, 'alice', 'old'), REFUSED);
    assert.equal(await login(port, 'alice', 'new'), OK('alice'));
    assert.equal(verify.mock.callCount(), 4);
    assert.equal(await login(port, 'bob', 'b'), OK('bob'));
    assert.equal(verify.mock.callCount(), 4, "bob's entry survives a change to alice's line");
  });

  test('the same password stored again with a new salt is a new credential: hashed again', async (t) => {
    const { port, rewrite, verify } = await serve(t, [`alice:${pbkdf2Field('pw')}`]);
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    await rewrite([`alice:${pbkdf2Field('pw', 'othersalt')}`]);
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(verify.mock.callCount(), 2);
  });

  test('a user removed from the file is refused at once', async (t) => {
    const { server, port, users, rewrite } = await serve(t, [`alice:${pbkdf2Field('pw')}`, 'bob:{PLAIN}b']);
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    await rewrite(['bob:{PLAIN}b']);
    assert.equal(users.hasUser('alice'), false);
    assert.equal(await login(port, 'alice', 'pw'), REFUSED);
    assert.equal(cacheStats(server).entries, 0, 'its entry is gone');
  });

  test('flushAuthCache() (SIGHUP) forgets every entry', async (t) => {
    const { server, port, verify } = await serve(t, [`alice:${pbkdf2Field('a')}`, `bob:${pbkdf2Field('b')}`]);
    assert.equal(await login(port, 'alice', 'a'), OK('alice'));
    assert.equal(await login(port, 'bob', 'b'), OK('bob'));
    server.flushAuthCache('bob');
    assert.equal(cacheStats(server).entries, 1);
    server.flushAuthCache();
    assert.equal(cacheStats(server).entries, 0);
    assert.equal(await login(port, 'alice', 'a'), OK('alice'));
    assert.equal(await login(port, 'bob', 'b'), OK('bob'));
    assert.equal(verify.mock.callCount(), 4);
  });

  test('an entry is used for authCacheTtlMs and not a millisecond longer (mock clock)', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    t.after(() => {
      t.mock.timers.reset();
    });
    const { port, verify } = await serve(t, [`alice:${pbkdf2Field('pw')}`], { authCacheTtlMs: 60_000 });
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    t.mock.timers.tick(59_999);
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(verify.mock.callCount(), 1, 'still fresh');
    t.mock.timers.tick(1);
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(verify.mock.callCount(), 2, 'expired: hashed again');
  });

  test('authCacheMaxEntries bounds the entries: the least recently used name goes first', async (t) => {
    const lines = ['alice', 'bob', 'carol'].map((name) => `${name}:${pbkdf2Field(name)}`);
    const { server, port, verify } = await serve(t, lines, { authCacheMaxEntries: 2 });
    for (const name of ['alice', 'bob', 'alice', 'carol'])
      assert.equal(await login(port, name, name), OK(name));
    assert.equal(verify.mock.callCount(), 3, 'alice was a hit');
    assert.equal(cacheStats(server).entries, 2);
    assert.equal(await login(port, 'alice', 'alice'), OK('alice'));
    assert.equal(verify.mock.callCount(), 3, 'alice, used last, stayed');
    assert.equal(await login(port, 'bob', 'bob'), OK('bob'));
    assert.equal(verify.mock.callCount(), 4, 'bob was the one evicted');
  });

  test('authCacheMaxEntries 0 turns the cache off', async (t) => {
    const { server, port, verify } = await serve(t, [`alice:${pbkdf2Field('pw')}`], {
      authCacheMaxEntries: 0,
    });
    for (let i = 0; i < 3; i += 1) assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(verify.mock.callCount(), 3);
    assert.deepEqual(cacheStats(server), { hits: 0, misses: 0, entries: 0 });
  });

  test('setting authCacheMaxEntries to 0 at run time empties the cache', async (t) => {
    const { server, port, verify } = await serve(t, [`alice:${pbkdf2Field('pw')}`]);
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    server.setLimits({ authCacheMaxEntries: 0 });
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(verify.mock.callCount(), 2);
    assert.equal(cacheStats(server).entries, 0);
  });

  test('a hit goes through the login throttle as any login does', async (t) => {
    const { server, port } = await serve(t, [`alice:${pbkdf2Field('pw')}`], { authFailureDelayMs: 1 });
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(await login(port, 'alice', 'wrong'), REFUSED);
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(server.stats.authCacheHits, 1);
    assert.equal(server.stats.loginsThrottled, 1, "the hit waited out the user name's penalty");
  });

  test('an authenticator without credentialVersion is not cached (a change could not be seen)', async (t) => {
    const { server, port } = await startServer(t, {
      authenticator: new StaticAuthenticator({ alice: 'pw' }),
    });
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.deepEqual(cacheStats(server), { hits: 0, misses: 0, entries: 0 });
  });

  test('/metrics shows the hits, misses and entries', async (t) => {
    const { server, port } = await serve(t, [`alice:${pbkdf2Field('pw')}`]);
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    assert.equal(await login(port, 'alice', 'pw'), OK('alice'));
    const text = await createMetricsRegistry(server).metrics();
    assert.match(text, /^pop3_auth_cache_hits_total 1$/m);
    assert.match(text, /^pop3_auth_cache_misses_total 1$/m);
    assert.match(text, /^pop3_auth_cache_entries 1$/m);
  });
});
