import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { OAuthVerifier, TokenVerdict } from '../../../../src/auth/oauth/verifier.js';
import { StaticAuthenticator } from '../../../../src/auth/static.js';
import { canBearer, type AuthenticatorWithBearer } from '../../../../src/auth/types.js';
import { begin, bytes, challengeOf, doneOf, fromBase64 } from '../../../helpers/sasl-context.js';
import { oauthBearer, xoauth2 } from '../../../../src/pop3/sasl/oauth.js';
import { SaslError } from '../../../../src/pop3/sasl/types.js';

// RFC 7628 section 4.1 (success) and 4.3 (failure): the client's initial response, as sent.
const RFC7628_INITIAL =
  'bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB';
const RFC7628_TOKEN = 'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==';
// Google's XOAUTH2 documentation: the initial client response for someuser@example.com.
const XOAUTH2_INITIAL =
  'dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==';
const XOAUTH2_TOKEN = 'ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg';

/** Accepts the listed tokens, for the listed users; records every token it is asked about. */
function verifier(tokens: Record<string, TokenVerdict>): OAuthVerifier & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    verify(token) {
      seen.push(token);
      return Promise.resolve(tokens[token] ?? { ok: false, reason: 'invalid' });
    },
  };
}

const usersWith = (oauth: OAuthVerifier): StaticAuthenticator =>
  new StaticAuthenticator({ 'user@example.com': 'x', 'someuser@example.com': 'y', alice: 'pw' }, { oauth });

const ACK = Buffer.from([0x01]);

describe('OAUTHBEARER (RFC 7628)', () => {
  test('section 4.1: the example initial response logs user@example.com in with its token', async () => {
    const check = verifier({ [RFC7628_TOKEN]: { ok: true, username: 'user@example.com' } });
    const done = doneOf(await begin(oauthBearer, usersWith(check)).start(fromBase64(RFC7628_INITIAL)));
    assert.deepEqual(check.seen, [RFC7628_TOKEN]);
    assert.deepEqual(done.result, { ok: true, user: { name: 'user@example.com' } });
  });

  test("section 4.3: a refused token gets a JSON error challenge; the client's AQ== (^A) ends it in failure", async () => {
    const exchange = begin(oauthBearer, usersWith(verifier({})));
    const error = challengeOf(await exchange.start(fromBase64(RFC7628_INITIAL)));
    assert.deepEqual(JSON.parse(error.toString()), { status: 'invalid_token', schemes: 'bearer' });
    const done = doneOf(await exchange.step(fromBase64('AQ==')));
    assert.equal(done.username, 'user@example.com');
    assert.deepEqual(done.result, { ok: false, reason: 'invalid' });
  });

  test('anything but ^A after the error challenge is a SaslError', async () => {
    const exchange = begin(oauthBearer, usersWith(verifier({})));
    challengeOf(await exchange.start(fromBase64(RFC7628_INITIAL)));
    await assert.rejects(exchange.step(Buffer.alloc(0)), SaslError);
  });

  test('without an initial response: an empty challenge, then the message; no authzid is fine', async () => {
    const check = verifier({ tok: { ok: true, username: 'alice' } });
    const exchange = begin(oauthBearer, usersWith(check));
    assert.deepEqual(challengeOf(await exchange.start(undefined)), Buffer.alloc(0));
    const done = doneOf(await exchange.step(bytes('n,,\x01auth=Bearer tok\x01\x01')));
    assert.deepEqual(done.result, { ok: true, user: { name: 'alice' } });
  });

  test('the token must name the user the client claims, a known one, with a valid name', async () => {
    const check = verifier({
      alices: { ok: true, username: 'alice' },
      strangers: { ok: true, username: 'stranger' },
      bad: { ok: true, username: '../etc' },
    });
    for (const message of [
      'n,a=user@example.com,\x01auth=Bearer alices\x01\x01', // someone else's token
      'n,,\x01auth=Bearer strangers\x01\x01', // no such user here
      'n,,\x01auth=Bearer bad\x01\x01',
    ]) {
      const exchange = begin(oauthBearer, usersWith(check));
      challengeOf(await exchange.start(bytes(message)));
      assert.deepEqual(doneOf(await exchange.step(ACK)).result, { ok: false, reason: 'invalid' }, message);
    }
  });

  test('a verifier that cannot decide fails at once as temporary, without an error challenge', async () => {
    const check = verifier({ tok: { ok: false, reason: 'temporary' } });
    const done = doneOf(
      await begin(oauthBearer, usersWith(check)).start(bytes('n,,\x01auth=Bearer tok\x01\x01')),
    );
    assert.deepEqual(done.result, { ok: false, reason: 'temporary' });
  });

  test('the scheme name is case-insensitive; the authzid is a saslname (=2C, =3D)', async () => {
    const requests: { username: string | undefined; token: string }[] = [];
    const recorder: AuthenticatorWithBearer = {
      authenticate: () => Promise.resolve({ ok: false, reason: 'invalid' }),
      authenticateBearer: ({ username, token }) => {
        requests.push({ username, token });
        return Promise.resolve({ ok: true, user: { name: 'alice' } });
      },
    };
    doneOf(await begin(oauthBearer, recorder).start(bytes('n,a=a=2Cb=3Dc,\x01auth=bearer tok\x01\x01')));
    doneOf(await begin(oauthBearer, recorder).start(bytes('y,,\x01auth=BEARER tok2\x01\x01')));
    assert.deepEqual(requests, [
      { username: 'a,b=c', token: 'tok' },
      { username: undefined, token: 'tok2' },
    ]);
  });

  test('malformed messages are SaslErrors', async () => {
    const users = usersWith(verifier({}));
    for (const message of [
      'p=tls-unique,,\x01auth=Bearer tok\x01\x01', // channel binding
      'n,,auth=Bearer tok\x01\x01', // no ^A after the GS2 header
      'n,,\x01auth=Bearer tok\x01', // no final ^A
      'n,,\x01host=x\x01\x01', // no auth
      'n,,\x01auth=Basic dG9r\x01\x01',
      'n,,\x01auth=Bearer to ken\x01\x01',
      'n,,\x01auth=Bearer tok\x01auth=Bearer tok\x01\x01',
      'n,,\x01au-th=x\x01auth=Bearer tok\x01\x01',
      'n,a=,\x01auth=Bearer tok\x01\x01',
      '\x01',
    ]) {
      await assert.rejects(
        begin(oauthBearer, users).start(bytes(message)),
        SaslError,
        JSON.stringify(message),
      );
    }
  });
});

describe('XOAUTH2', () => {
  test("Google's example initial response logs someuser@example.com in", async () => {
    const check = verifier({ [XOAUTH2_TOKEN]: { ok: true, username: 'someuser@example.com' } });
    const done = doneOf(await begin(xoauth2, usersWith(check)).start(fromBase64(XOAUTH2_INITIAL)));
    assert.deepEqual(check.seen, [XOAUTH2_TOKEN]);
    assert.deepEqual(done.result, { ok: true, user: { name: 'someuser@example.com' } });
  });

  test('a refused token: a JSON error challenge, answered empty, then failure', async () => {
    const exchange = begin(xoauth2, usersWith(verifier({})));
    assert.equal(challengeOf(await exchange.start(undefined)).length, 0);
    const error = challengeOf(await exchange.step(fromBase64(XOAUTH2_INITIAL)));
    assert.deepEqual(JSON.parse(error.toString()), { status: '401', schemes: 'bearer' });
    const done = doneOf(await exchange.step(Buffer.alloc(0)));
    assert.equal(done.username, 'someuser@example.com');
    assert.deepEqual(done.result, { ok: false, reason: 'invalid' });
  });

  test('user= is required; malformed messages are SaslErrors', async () => {
    const users = usersWith(verifier({}));
    for (const message of [
      'auth=Bearer tok\x01\x01',
      'user=\x01auth=Bearer tok\x01\x01',
      'user=alice\x01\x01',
      'user=alice\x01auth=Bearer tok\x01',
    ]) {
      await assert.rejects(begin(xoauth2, users).start(bytes(message)), SaslError, JSON.stringify(message));
    }
  });
});

test('both are cleartext-class, and offered only when the authenticator has a verifier', () => {
  assert.equal(oauthBearer.isCleartext, true);
  assert.equal(xoauth2.isCleartext, true);
  const without = new StaticAuthenticator({ alice: 'pw' });
  assert.equal(canBearer(without), false);
  assert.equal(oauthBearer.isAvailable(without), false);
  assert.equal(xoauth2.isAvailable(usersWith(verifier({}))), true);
});
