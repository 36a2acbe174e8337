// The app-password decorator on a stub backend (a users backend with lookupUser and a policy):
// which logins it lets in, as whom, what it refuses (revoked, vanished user, appPasswordsOnly),
// the capabilities it keeps, and the same hashing work for an unknown name, a wrong app password
// and a wrong main password (work counted, never timed).
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { matchAppPassword, withAppPasswords } from '../../src/auth/app-passwords/authenticator.js';
import { AppPasswordStore } from '../../src/auth/app-passwords/store.js';
import { findScheme } from '../../src/auth/passwords/registry.js';
import {
  hasApop,
  hasCramMd5,
  hasLookup,
  hasScram,
  hasUserCheck,
  type AuthResult,
  type PasswordAuthRequest,
} from '../../src/auth/types.js';
import { DEFAULT_POLICY, type UserPolicyOverrides } from '../../src/policy.js';
import type { MailUser } from '../../src/user.js';
import { AuthCache } from '../../src/pop3/auth-cache.js';
import { ServerStats } from '../../src/pop3/stats.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { tempDir } from '../helpers/temp-dir.js';

const INVALID: AuthResult = { ok: false, reason: 'invalid' };

/** A users backend: name -> main password and own policy; counts what it is asked. */
function stubBackend(initial: Record<string, { password: string; policy?: UserPolicyOverrides }>) {
  let users = initial;
  const calls = { authenticate: 0, lookupUser: 0 };
  let isDown = false;
  const backend = {
    calls,
    setDown(down: boolean) {
      isDown = down;
    },
    remove(name: string) {
      users = Object.fromEntries(Object.entries(users).filter(([n]) => n !== name));
    },
    authenticate(request: PasswordAuthRequest): Promise<AuthResult> {
      calls.authenticate += 1;
      const user = users[request.username];
      return Promise.resolve(
        user !== undefined && user.password === request.password
          ? { ok: true, user: { name: request.username, ...(user.policy ? { policy: user.policy } : {}) } }
          : INVALID,
      );
    },
    lookupUser(name: string): Promise<MailUser | undefined> {
      calls.lookupUser += 1;
      if (isDown) return Promise.reject(new Error('database down'));
      const user = users[name];
      return Promise.resolve(
        user === undefined ? undefined : { name, ...(user.policy ? { policy: user.policy } : {}) },
      );
    },
    credentialVersion: (name: string) =>
      users[name] === undefined ? undefined : `v-${users[name].password}`,
  };
  return backend;
}

const request = (username: string, password: string): PasswordAuthRequest => ({
  mechanism: 'USER',
  username,
  password,
  remoteAddress: '192.0.2.5',
  isTls: false,
  signal: new AbortController().signal,
});

async function setUp(t: TestContext, options: { isOnlyForAll?: boolean } = {}) {
  const root = await tempDir(t);
  const logger = recordingLogger();
  const store = new AppPasswordStore({ root: () => root, logger });
  const backend = stubBackend({
    alice: { password: 'alice-main' },
    carol: { password: 'carol-main', policy: { appPasswordsOnly: true, loginDelaySeconds: 60 } },
  });
  const auth = withAppPasswords(backend, {
    store,
    logger,
    policyDefaults: () => ({ ...DEFAULT_POLICY, appPasswordsOnly: options.isOnlyForAll === true }),
  });
  return { store, backend, auth, logger };
}

describe('password logins', () => {
  test('an app password logs the user in, as the backend has them, with its label', async (t) => {
    const { store, auth, backend } = await setUp(t);
    const { secret } = await store.add('carol', 'phone');
    assert.deepEqual(await auth.authenticate(request('carol', secret)), {
      ok: true,
      user: {
        name: 'carol',
        policy: { appPasswordsOnly: true, loginDelaySeconds: 60 },
        appPassword: 'phone',
      },
    });
    assert.equal(backend.calls.authenticate, 0, 'the main password is not checked after a match');
    const [listed] = await store.list('carol');
    assert.equal(listed?.lastUsed?.address, '192.0.2.5');
  });

  test('typed without dashes, with spaces, in capitals', async (t) => {
    const { store, auth } = await setUp(t);
    const { secret } = await store.add('alice', 'phone');
    for (const form of [secret.replace(/-/g, ''), secret.replace(/-/g, ' '), secret.toUpperCase()]) {
      assert.equal((await auth.authenticate(request('alice', form))).ok, true, form);
    }
  });

  test("the main password still logs in; another user's app password does not", async (t) => {
    const { store, auth } = await setUp(t);
    const { secret } = await store.add('carol', 'phone');
    assert.deepEqual(await auth.authenticate(request('alice', 'alice-main')), {
      ok: true,
      user: { name: 'alice' },
    });
    assert.deepEqual(await auth.authenticate(request('alice', secret)), INVALID);
  });

  test('revoked: refused at once', async (t) => {
    const { store, auth } = await setUp(t);
    const { secret } = await store.add('alice', 'phone');
    assert.equal((await auth.authenticate(request('alice', secret))).ok, true);
    await store.revoke('alice', 'phone');
    assert.deepEqual(await auth.authenticate(request('alice', secret)), INVALID);
  });

  test('a user gone from the backend (deleted outside Poplar) is refused with a leftover app password', async (t) => {
    const { store, auth, backend } = await setUp(t);
    const { secret } = await store.add('alice', 'phone');
    backend.remove('alice');
    assert.deepEqual(await auth.authenticate(request('alice', secret)), INVALID);
  });

  test('the backend cannot say whether the user exists: temporary', async (t) => {
    const { store, auth, backend } = await setUp(t);
    const { secret } = await store.add('alice', 'phone');
    backend.setDown(true);
    assert.deepEqual(await auth.authenticate(request('alice', secret)), { ok: false, reason: 'temporary' });
  });

  test('a backend without lookupUser and no lookup given: app passwords log nobody in', async (t) => {
    const { store } = await setUp(t);
    const { secret } = await store.add('alice', 'phone');
    const full = stubBackend({ alice: { password: 'alice-main' } });
    const noLookup = { authenticate: (r: PasswordAuthRequest) => full.authenticate(r) };
    const auth = withAppPasswords(noLookup, { store });
    assert.equal(hasLookup(auth), false);
    assert.deepEqual(await auth.authenticate(request('alice', secret)), INVALID);
    assert.equal((await auth.authenticate(request('alice', 'alice-main'))).ok, true);
  });
});

describe('appPasswordsOnly', () => {
  test("the user's own: the right main password is refused as a wrong one; app passwords work", async (t) => {
    const { store, auth, logger } = await setUp(t);
    assert.deepEqual(await auth.authenticate(request('carol', 'carol-main')), INVALID);
    assert.ok(logger.lines.some((l) => l.includes('main password refused: app passwords only')));
    const { secret } = await store.add('carol', 'phone');
    assert.equal((await auth.authenticate(request('carol', secret))).ok, true);
    assert.equal((await auth.authenticate(request('alice', 'alice-main'))).ok, true, 'others unaffected');
  });

  test('server-wide: every main password refused, APOP, CRAM-MD5 and SCRAM not offered', async (t) => {
    const root = await tempDir(t);
    const store = new AppPasswordStore({ root: () => root });
    const backend = {
      ...stubBackend({ alice: { password: 'alice-main', policy: {} } }),
      authenticateApop: () => Promise.resolve<AuthResult>({ ok: true, user: { name: 'alice' } }),
      authenticateCramMd5: () => Promise.resolve<AuthResult>({ ok: true, user: { name: 'alice' } }),
      scramCredentials: () =>
        Promise.resolve({
          iterations: 4096,
          salt: Buffer.alloc(16),
          storedKey: Buffer.alloc(32),
          serverKey: Buffer.alloc(32),
        }),
    };
    let isOnly = true;
    const auth = withAppPasswords(backend, {
      store,
      policyDefaults: () => ({ ...DEFAULT_POLICY, appPasswordsOnly: isOnly }),
    });
    assert.ok(hasApop(auth) && hasCramMd5(auth) && hasScram(auth));
    assert.equal(auth.isApopOffered?.(), false);
    assert.equal(auth.isCramMd5Offered?.(), false);
    assert.equal(auth.isScramOffered?.(), false);
    assert.deepEqual(await auth.authenticate(request('alice', 'alice-main')), INVALID);
    const digest = { ...request('alice', ''), timestamp: '<1@x>', challenge: '<1@x>', digest: '0' };
    assert.deepEqual(await auth.authenticateApop({ ...digest, mechanism: 'APOP' }), INVALID);
    assert.deepEqual(await auth.authenticateCramMd5({ ...digest, mechanism: 'CRAM-MD5' }), INVALID);
    assert.equal(await auth.scramCredentials({ ...digest, mechanism: 'SCRAM-SHA-256' }), undefined);
    isOnly = false;
    assert.equal(auth.isApopOffered(), true);
    assert.ok((await auth.scramCredentials({ ...digest, mechanism: 'SCRAM-SHA-256' })) !== undefined);
  });
});

describe('capabilities of the wrapped backend', () => {
  test('kept exactly: none added, the cache and the user check forwarded', async (t) => {
    const { auth } = await setUp(t);
    assert.equal(hasApop(auth), false);
    assert.equal(hasCramMd5(auth), false);
    assert.equal(hasScram(auth), false);
    assert.equal(hasUserCheck(auth), true);
    assert.equal(hasLookup(auth), true);
    assert.ok(hasUserCheck(auth) && auth.credentialVersion('alice') === 'v-alice-main');
    assert.ok(hasLookup(auth) && (await auth.lookupUser('bob', new AbortController().signal)) === undefined);
  });

  test('the authentication cache never keeps an app-password login: a revoke ends it at once', async (t) => {
    const { store, auth, backend } = await setUp(t);
    const cache = new AuthCache(new ServerStats());
    const limits = { authCacheTtlMs: 3_600_000, authCacheMaxEntries: 100 };
    const { secret } = await store.add('alice', 'phone');
    assert.equal((await cache.authenticate(auth, request('alice', secret), limits)).ok, true);
    await store.revoke('alice', 'phone');
    assert.deepEqual(await cache.authenticate(auth, request('alice', secret), limits), INVALID);
    // The main password is still cached as before.
    await cache.authenticate(auth, request('alice', 'alice-main'), limits);
    const before = backend.calls.authenticate;
    assert.equal((await cache.authenticate(auth, request('alice', 'alice-main'), limits)).ok, true);
    assert.equal(backend.calls.authenticate, before, 'a cache hit');
  });
});

describe('the same work whoever asks', () => {
  /** Counts verify() of the app passwords' scheme while `fn` runs. */
  function countVerify(t: TestContext): { count: () => number } {
    const scheme = findScheme('SSHA256');
    assert.ok(scheme !== undefined);
    let calls = 0;
    const verify = scheme.verify.bind(scheme);
    t.mock.method(scheme, 'verify', (...args: Parameters<typeof verify>) => {
      calls += 1;
      return verify(...args);
    });
    return { count: () => calls };
  }

  test('an unknown name, a wrong app password, a wrong main password, a user with 20: 20 checks, then the main password', async (t) => {
    const { store, auth, backend } = await setUp(t);
    await store.add('alice', 'phone');
    for (let i = 0; i < 19; i++) await store.add('carol', `d${i}`);
    await store.add('carol', 'last');
    const verifies = countVerify(t);
    const work: Record<string, [number, number]> = {};
    for (const [name, username, password] of [
      ['unknown name', 'nobody', 'abcd-efgh-ijkl-mnop'],
      ['invalid name', '../x', 'whatever'],
      ['wrong app password', 'alice', 'abcd-efgh-ijkl-mnop'],
      ['wrong main password', 'alice', 'not-it'],
      ['user with 20, wrong', 'carol', 'abcd-efgh-ijkl-mnop'],
    ] as const) {
      const [v0, a0] = [verifies.count(), backend.calls.authenticate];
      assert.deepEqual(await auth.authenticate(request(username, password)), INVALID, name);
      work[name] = [verifies.count() - v0, backend.calls.authenticate - a0];
    }
    for (const [name, done] of Object.entries(work)) assert.deepEqual(done, [20, 1], name);
  });

  test('matchAppPassword checks every slot, even after a match', async (t) => {
    const { store } = await setUp(t);
    const { secret } = await store.add('alice', 'phone');
    const entries = await store.read('alice');
    const verifies = countVerify(t);
    assert.equal((await matchAppPassword(entries, secret))?.label, 'phone');
    assert.equal(verifies.count(), 20);
  });
});
