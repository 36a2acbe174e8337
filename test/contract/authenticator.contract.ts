/**
 * The Authenticator contract (src/auth/types.ts), run against every backend, as the MailStore
 * contract is against every store: a backend's test file calls {@link describeAuthenticator} with a
 * factory that stores the given users its own way. A new backend (SQL, LDAP...) calls it too.
 *
 * What every backend must do: the right password logs the user in under the name given; a wrong
 * password, an unknown user and a name that is not valid under `isValidUserName` get one and the
 * same refusal, so a reply never tells whether a name exists. Each capability the backend says it
 * offers (APOP, CRAM-MD5, SCRAM-SHA-256, bearer tokens) works and refuses the same way; the ones it
 * does not offer are not offered (`canApop()`... say no). Every successful login, by any
 * mechanism, returns the user's own policy as the backend holds it (docs/policy.md), and
 * `lookupUser` returns that same user without a secret.
 *
 * Not checked: timing (see the decoy-work test of the passwd-file backend), and an aborted
 * `signal` (no shipped backend waits on anything the signal could cut short).
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { apopDigest, cramMd5Digest } from '../../src/auth/digests.js';
import type { OAuthVerifier, TokenVerdict } from '../../src/auth/oauth/verifier.js';
import {
  hasLookup,
  canApop,
  canBearer,
  canCramMd5,
  canScram,
  type Authenticator,
  type AuthResult,
} from '../../src/auth/types.js';
import { isValidUserName, type MailUser } from '../../src/user.js';
import type { UserPolicyOverrides } from '../../src/policy.js';

/** The capabilities a backend can offer besides passwords; the suite checks each one it says it offers. */
export type AuthenticatorCapability = 'APOP' | 'CRAM-MD5' | 'SCRAM-SHA-256' | 'BEARER';

export interface AuthenticatorUnderTest {
  readonly authenticator: Authenticator;
  /** What this backend, so built, offers: each works; any other is not offered. */
  readonly offers: readonly AuthenticatorCapability[];
}

/**
 * Builds a backend holding `users` (name to password; the APOP and CRAM-MD5 secret is the
 * password, SCRAM-SHA-256 keys are worked out from it). Some names in `users` are not valid
 * under `isValidUserName`: store them like the others if the storage can hold them (the suite
 * checks they never log in), or leave them out. `oauth` checks the suite's bearer tokens, for a
 * backend that offers bearer logins. `policies` gives some users their own policy, to store the
 * backend's way (extra fields, columns, attributes). Everything it creates is removed after `t`.
 */
export type MakeAuthenticator = (
  t: TestContext,
  users: Readonly<Record<string, string>>,
  oauth: OAuthVerifier,
  policies: Readonly<Record<string, UserPolicyOverrides>>,
) => Promise<AuthenticatorUnderTest>;

/** Own policies of some contract users: every setting for alice, a few for carol, none for bob. */
export const CONTRACT_POLICIES: Readonly<Record<string, UserPolicyOverrides>> = {
  alice: {
    delete: { mode: 'move', folder: 'Trash' },
    expire: 0,
    loginDelaySeconds: 300,
    maxSessions: 2,
    downloadPerDay: 1_048_576,
    appPasswordsOnly: false,
  },
  'carol.smith@example.com': {
    delete: { mode: 'keep-days', days: 30 },
    expire: 'never',
    appPasswordsOnly: true,
  },
};

/** Users whose names are valid: spaces, non-ASCII and a colon-free mix in the passwords. */
export const CONTRACT_USERS: Readonly<Record<string, string>> = {
  alice: 'correct horse',
  bob: 'pässwörd 密码',
  'carol.smith@example.com': ' two  words ',
};

/** Users a backend may hold but must never let in: their names are not valid. */
export const INVALID_USERS: Readonly<Record<string, string>> = {
  '../alice': 'dot dot',
  'bad name': 'a space',
  '.hidden': 'leading dot',
  'jo\u0308rg': 'not in its prepared form (decomposed)',
  'a\u202eb': 'a bidirectional control',
  ['x'.repeat(65)]: 'too long',
};

/** Names close to a real one, which a lax backend (trimming, normalising, matching a prefix) might let in. */
const NEAR_ALICE = ['Alice', ' alice', 'alice ', 'alice/', 'alic', 'alice2', ''];

const REFUSED: AuthResult = { ok: false, reason: 'invalid' };

/** The suite's token issuer: which token stands for whom. */
const TOKENS: Readonly<Record<string, TokenVerdict>> = {
  'token-alice': { ok: true, username: 'alice' },
  'token-bob': { ok: true, username: 'bob' },
  'token-ghost': { ok: true, username: 'ghost' }, // a valid name nobody has
  'token-dotdot': { ok: true, username: '../alice' }, // a name held, but not valid
  'token-expired': { ok: false, reason: 'invalid' },
  'token-verifier-down': { ok: false, reason: 'temporary' },
};

const contractVerifier: OAuthVerifier = {
  verify: (token) => Promise.resolve(TOKENS[token] ?? { ok: false, reason: 'invalid' }),
};

const base = () => ({ remoteAddress: '192.0.2.7', isTls: true, signal: new AbortController().signal });

const login = (a: Authenticator, username: string, password: string): Promise<AuthResult> =>
  a.authenticate({ mechanism: 'USER', username, password, ...base() });

/** The user a login returns: the name, and the user's own policy when there is one. */
const userOf = (name: string): MailUser => {
  const policy = CONTRACT_POLICIES[name];
  return policy === undefined ? { name } : { name, policy };
};

const accepted = (name: string): AuthResult => ({ ok: true, user: userOf(name) });

const TIMESTAMP = '<4242.1700000000@poplar.test>';
const CHALLENGE = '<1896.697170952@poplar.test>';

/** RFC 5802 section 3: StoredKey and ServerKey from the password, the salt and the iteration count. */
function scramKeys(
  password: string,
  salt: Buffer,
  iterations: number,
): { storedKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

export function describeAuthenticator(name: string, make: MakeAuthenticator): void {
  const build = (t: TestContext): Promise<AuthenticatorUnderTest> =>
    make(t, { ...CONTRACT_USERS, ...INVALID_USERS }, contractVerifier, CONTRACT_POLICIES);
  const offered = (backend: AuthenticatorUnderTest, capability: AuthenticatorCapability): boolean =>
    backend.offers.includes(capability);

  describe(`Authenticator contract: ${name}`, () => {
    test('the suite itself: its users have valid names, its invalid users do not', () => {
      assert.ok(Object.keys(CONTRACT_USERS).every(isValidUserName));
      assert.ok(!Object.keys(INVALID_USERS).some(isValidUserName));
    });

    test('the right password logs the user in under the name given', async (t) => {
      const { authenticator } = await build(t);
      for (const [user, password] of Object.entries(CONTRACT_USERS)) {
        assert.deepEqual(await login(authenticator, user, password), accepted(user), user);
      }
    });

    test('a wrong password, another user’s password and an unknown user get the same refusal', async (t) => {
      const { authenticator } = await build(t);
      const attempts: [string, string][] = [
        ['alice', 'correct horse '],
        ['alice', 'Correct horse'],
        ['alice', CONTRACT_USERS['bob'] ?? ''],
        ['bob', 'passwörd 密码'],
        ['carol.smith@example.com', 'two words'],
        ['mallory', 'correct horse'],
        ['ghost', 'anything'],
      ];
      for (const [user, password] of attempts) {
        assert.deepEqual(await login(authenticator, user, password), REFUSED, `${user} / ${password}`);
      }
    });

    test('a name that is not valid never logs in, even with the password it was stored with', async (t) => {
      const { authenticator } = await build(t);
      for (const [user, password] of Object.entries(INVALID_USERS)) {
        assert.deepEqual(await login(authenticator, user, password), REFUSED, user);
      }
      for (const near of NEAR_ALICE) {
        assert.deepEqual(await login(authenticator, near, 'correct horse'), REFUSED, JSON.stringify(near));
      }
    });

    test('lookupUser finds each user with the policy a login returns, and no one else', async (t) => {
      const { authenticator } = await build(t);
      assert.ok(hasLookup(authenticator), 'every backend implements lookupUser');
      const signal = new AbortController().signal;
      for (const user of Object.keys(CONTRACT_USERS)) {
        assert.deepEqual(await authenticator.lookupUser(user, signal), userOf(user), user);
      }
      for (const user of ['mallory', ...NEAR_ALICE, ...Object.keys(INVALID_USERS)]) {
        assert.equal(await authenticator.lookupUser(user, signal), undefined, JSON.stringify(user));
      }
    });

    test('offers exactly the capabilities it declares', async (t) => {
      const backend = await build(t);
      const { authenticator } = backend;
      assert.equal(canApop(authenticator), offered(backend, 'APOP'), 'APOP');
      assert.equal(canCramMd5(authenticator), offered(backend, 'CRAM-MD5'), 'CRAM-MD5');
      assert.equal(canScram(authenticator), offered(backend, 'SCRAM-SHA-256'), 'SCRAM-SHA-256');
      assert.equal(canBearer(authenticator), offered(backend, 'BEARER'), 'BEARER');
    });

    test('APOP, if offered: the right digest logs in; anything else gets the same refusal', async (t) => {
      const backend = await build(t);
      const { authenticator } = backend;
      if (!offered(backend, 'APOP')) return;
      assert.ok(canApop(authenticator));
      const apop = (username: string, secret: string) =>
        authenticator.authenticateApop({
          mechanism: 'APOP',
          username,
          timestamp: TIMESTAMP,
          digest: apopDigest(TIMESTAMP, secret),
          ...base(),
        });
      for (const [user, password] of Object.entries(CONTRACT_USERS)) {
        assert.deepEqual(await apop(user, password), accepted(user), user);
      }
      assert.deepEqual(await apop('alice', 'correct horse '), REFUSED, 'wrong secret');
      assert.deepEqual(
        await authenticator.authenticateApop({
          mechanism: 'APOP',
          username: 'alice',
          timestamp: '<another@poplar.test>',
          digest: apopDigest(TIMESTAMP, 'correct horse'),
          ...base(),
        }),
        REFUSED,
        'a digest of another timestamp',
      );
      assert.deepEqual(await apop('mallory', 'correct horse'), REFUSED, 'unknown user');
      for (const [user, password] of Object.entries(INVALID_USERS)) {
        assert.deepEqual(await apop(user, password), REFUSED, user);
      }
    });

    test('CRAM-MD5, if offered: the right digest logs in; anything else gets the same refusal', async (t) => {
      const backend = await build(t);
      const { authenticator } = backend;
      if (!offered(backend, 'CRAM-MD5')) return;
      assert.ok(canCramMd5(authenticator));
      const cram = (username: string, secret: string, challenge = CHALLENGE) =>
        authenticator.authenticateCramMd5({
          mechanism: 'CRAM-MD5',
          username,
          challenge: CHALLENGE,
          digest: cramMd5Digest(challenge, secret),
          ...base(),
        });
      for (const [user, password] of Object.entries(CONTRACT_USERS)) {
        assert.deepEqual(await cram(user, password), accepted(user), user);
      }
      assert.deepEqual(await cram('alice', 'correct horse '), REFUSED, 'wrong secret');
      assert.deepEqual(
        await cram('alice', 'correct horse', '<other@poplar.test>'),
        REFUSED,
        'other challenge',
      );
      assert.deepEqual(await cram('mallory', 'correct horse'), REFUSED, 'unknown user');
      for (const [user, password] of Object.entries(INVALID_USERS)) {
        assert.deepEqual(await cram(user, password), REFUSED, user);
      }
    });

    test('SCRAM-SHA-256, if offered: each user’s keys fit the password; no keys for anyone else', async (t) => {
      const backend = await build(t);
      const { authenticator } = backend;
      if (!offered(backend, 'SCRAM-SHA-256')) return;
      assert.ok(canScram(authenticator));
      const keysOf = (username: string) =>
        authenticator.scramCredentials({ mechanism: 'SCRAM-SHA-256', username, ...base() });
      for (const [user, password] of Object.entries(CONTRACT_USERS)) {
        const keys = await keysOf(user);
        assert.ok(keys !== undefined, user);
        assert.ok(keys.iterations >= 4096, 'RFC 7677: at least 4096 iterations');
        assert.ok(keys.salt.length > 0);
        const expected = scramKeys(password, keys.salt, keys.iterations);
        assert.deepEqual(keys.storedKey, expected.storedKey, `${user}: StoredKey`);
        assert.deepEqual(keys.serverKey, expected.serverKey, `${user}: ServerKey`);
      }
      // Nothing else to tell apart: unknown, near and invalid names all get no keys.
      for (const user of ['mallory', ...NEAR_ALICE, ...Object.keys(INVALID_USERS)]) {
        assert.equal(await keysOf(user), undefined, JSON.stringify(user));
      }
    });

    test('bearer tokens, if offered: a valid token logs in its user; the rest are refused alike', async (t) => {
      const backend = await build(t);
      const { authenticator } = backend;
      if (!offered(backend, 'BEARER')) return;
      assert.ok(canBearer(authenticator));
      const bearer = (token: string, username?: string) =>
        authenticator.authenticateBearer({ mechanism: 'OAUTHBEARER', username, token, ...base() });
      assert.deepEqual(await bearer('token-alice'), accepted('alice'));
      assert.deepEqual(await bearer('token-alice', 'alice'), accepted('alice'), 'claimed name matches');
      assert.deepEqual(await bearer('token-bob', 'alice'), REFUSED, 'one user cannot act for another');
      assert.deepEqual(await bearer('token-expired'), REFUSED);
      assert.deepEqual(await bearer('no such token', 'alice'), REFUSED);
      assert.deepEqual(await bearer('token-ghost'), REFUSED, 'a token does not create a user');
      assert.deepEqual(await bearer('token-dotdot'), REFUSED, 'a name that is not valid');
      assert.deepEqual(await bearer('token-verifier-down'), { ok: false, reason: 'temporary' });
    });
  });
}
