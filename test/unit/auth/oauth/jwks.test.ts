import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  exportJWK,
  generateKeyPair,
  SignJWT,
  type JSONWebKeySet,
  type JWTPayload,
  type CryptoKey,
} from 'jose';
import { tempDir } from '../../../helpers/temp-dir.js';
import { JwksVerifier, readJwksFile } from '../../../../src/auth/oauth/jwks.js';
import { recordingLogger } from '../../../helpers/recording-logger.js';

const ISSUER = 'https://idp.example';
const AUDIENCE = 'pop3.example';

interface Keys {
  readonly privateKey: CryptoKey;
  readonly jwks: JSONWebKeySet;
}

async function keyPair(kid: string): Promise<Keys> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  return { privateKey, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] } };
}

const idp = await keyPair('key-1');
const stranger = await keyPair('key-1'); // same kid, another key: a forgery

/** A signed JWT with sensible defaults; `claims` overrides them (undefined removes one). */
async function jwt(claims: Record<string, unknown> = {}, key: CryptoKey = idp.privateKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const all: Record<string, unknown> = {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-id-1',
    email: 'alice@example.org',
    email_verified: true,
    iat: now,
    exp: now + 300,
    ...claims,
  };
  const payload: JWTPayload = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: 'key-1' }).sign(key);
}

const local = (extra: Partial<ConstructorParameters<typeof JwksVerifier>[0]> = {}): JwksVerifier =>
  new JwksVerifier({ keys: { jwks: idp.jwks }, audience: AUDIENCE, issuer: ISSUER, ...extra });

/** Serves `body()` as the JWKS on loopback, with `status()`; counts requests. */
async function jwksServer(
  t: TestContext,
  reply: () => { status: number; body: string },
): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests += 1;
    const { status, body } = reply();
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    requests: () => requests,
  };
}

test('a valid token names its user by "email"; by "sub" when there is no email; or by a configured claim', async () => {
  assert.deepEqual(await local().verify(await jwt()), { ok: true, username: 'alice@example.org' });
  assert.deepEqual(await local().verify(await jwt({ email: undefined })), {
    ok: true,
    username: 'user-id-1',
  });
  const custom = local({ usernameClaims: ['preferred_username'] });
  assert.deepEqual(await custom.verify(await jwt({ preferred_username: 'bob' })), {
    ok: true,
    username: 'bob',
  });
  assert.deepEqual(await custom.verify(await jwt()), { ok: false, reason: 'invalid' });
});

test('refused: another key, wrong audience or issuer, expired, no exp, not yet valid, unverified email, not a JWT', async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases: Record<string, string> = {
    forged: await jwt({}, stranger.privateKey),
    audience: await jwt({ aud: 'another-service' }),
    issuer: await jwt({ iss: 'https://evil.example' }),
    expired: await jwt({ exp: now - 600, iat: now - 900 }),
    'no exp': await jwt({ exp: undefined }),
    'not yet valid': await jwt({ nbf: now + 3600 }),
    'unverified email': await jwt({ email_verified: false }),
    'email with no email_verified': await jwt({ email_verified: undefined }),
    'email_verified "false"': await jwt({ email_verified: 'false' }),
    'email_verified "true" (a string)': await jwt({ email_verified: 'true' }),
    'email_verified 1': await jwt({ email_verified: 1 }),
    garbage: 'not.a.jwt',
  };
  const logger = recordingLogger();
  const verifier = local({ logger });
  for (const [name, token] of Object.entries(cases)) {
    assert.deepEqual(await verifier.verify(token), { ok: false, reason: 'invalid' }, name);
  }
  for (const line of logger.lines) {
    for (const token of Object.values(cases)) assert.ok(!line.includes(token), `token in the log: ${line}`);
  }
});

test('an unverified email is refused, not replaced by "sub"; a name from "sub" needs no email_verified', async () => {
  const verifier = local();
  assert.deepEqual(await verifier.verify(await jwt({ email_verified: undefined })), {
    ok: false,
    reason: 'invalid',
  });
  assert.deepEqual(await verifier.verify(await jwt({ email: undefined, email_verified: undefined })), {
    ok: true,
    username: 'user-id-1',
  });
  const bySub = local({ usernameClaims: ['sub'] });
  assert.deepEqual(await bySub.verify(await jwt({ email_verified: 'false' })), {
    ok: true,
    username: 'user-id-1',
  });
});

test('without an issuer configured, any issuer with our audience passes', async () => {
  const verifier = new JwksVerifier({ keys: { jwks: idp.jwks }, audience: AUDIENCE });
  assert.deepEqual(await verifier.verify(await jwt({ iss: 'https://other.example' })), {
    ok: true,
    username: 'alice@example.org',
  });
});

test('a JWKS URL: fetched from the server (once, then cached), and tokens checked against it', async (t) => {
  const { url, requests } = await jwksServer(t, () => ({ status: 200, body: JSON.stringify(idp.jwks) }));
  const verifier = new JwksVerifier({ keys: { url }, audience: AUDIENCE, issuer: ISSUER });
  assert.deepEqual(await verifier.verify(await jwt()), { ok: true, username: 'alice@example.org' });
  assert.deepEqual(await verifier.verify(await jwt({ sub: 'x', email: 'carol@example.org' })), {
    ok: true,
    username: 'carol@example.org',
  });
  assert.equal(requests(), 1);
});

test('a JWKS URL that fails (500, or not JSON): temporary, not invalid', async (t) => {
  for (const reply of [
    { status: 500, body: '{}' },
    { status: 200, body: 'not json' },
    { status: 200, body: '{"keys": "no"}' },
  ]) {
    const { url } = await jwksServer(t, () => reply);
    const logger = recordingLogger();
    const verifier = new JwksVerifier({ keys: { url }, audience: AUDIENCE, logger });
    const token = await jwt();
    assert.deepEqual(await verifier.verify(token), { ok: false, reason: 'temporary' }, JSON.stringify(reply));
    assert.ok(logger.lines.length > 0);
    for (const line of logger.lines) assert.ok(!line.includes(token));
  }
});

test('readJwksFile reads a key set, and names the file when it cannot', async (t) => {
  const dir = await tempDir(t);
  const good = join(dir, 'jwks.json');
  await writeFile(good, JSON.stringify(idp.jwks));
  const jwks = await readJwksFile(good);
  const verifier = new JwksVerifier({ keys: { jwks }, audience: AUDIENCE });
  assert.deepEqual(await verifier.verify(await jwt()), { ok: true, username: 'alice@example.org' });
  const bad = join(dir, 'bad.json');
  await writeFile(bad, '{"keys": 1}');
  await assert.rejects(readJwksFile(bad), /bad\.json/);
  await assert.rejects(readJwksFile(join(dir, 'missing.json')), /missing\.json/);
});

test('an empty audience is refused', () => {
  assert.throws(() => new JwksVerifier({ keys: { jwks: idp.jwks }, audience: '' }), /audience/);
});
