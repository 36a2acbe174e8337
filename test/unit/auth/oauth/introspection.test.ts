import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { IntrospectionVerifier } from '../../../../src/auth/oauth/introspection.js';
import { recordingLogger } from '../../../helpers/recording-logger.js';

const TOKEN = 'secret-token.AbC-123_~+/=';

interface Seen {
  readonly method: string | undefined;
  readonly contentType: string | undefined;
  readonly authorization: string | undefined;
  readonly body: URLSearchParams;
}

/** An introspection endpoint on loopback that answers with `reply`; records the requests. */
async function endpoint(
  t: TestContext,
  reply: (seen: Seen, res: ServerResponse) => void,
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = {
        method: req.method,
        contentType: req.headers['content-type'],
        authorization: req.headers.authorization,
        body: new URLSearchParams(Buffer.concat(chunks).toString()),
      };
      seen.push(request);
      reply(request, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`, seen };
}

const json = (res: ServerResponse, body: unknown, status = 200): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const signal = (): AbortSignal => new AbortController().signal;

test('POSTs token= with Basic client credentials; an active token names its user by "username"', async (t) => {
  const { url, seen } = await endpoint(t, (_req, res) => {
    json(res, { active: true, username: 'alice', sub: 'id-1' });
  });
  const verifier = new IntrospectionVerifier({ url, clientId: 'poplar client', clientSecret: 's3cret:x' });
  assert.deepEqual(await verifier.verify(TOKEN, signal()), { ok: true, username: 'alice' });
  assert.equal(seen.length, 1);
  const request = seen[0] as Seen;
  assert.equal(request.method, 'POST');
  assert.equal(request.contentType, 'application/x-www-form-urlencoded');
  assert.equal(request.body.get('token'), TOKEN);
  assert.equal(request.body.get('token_type_hint'), 'access_token');
  // RFC 6749 section 2.3.1: the id and secret are form-encoded before Basic.
  assert.equal(request.authorization, `Basic ${Buffer.from('poplar+client:s3cret%3Ax').toString('base64')}`);
});

test('"sub" when there is no "username"; a configured claim instead of both', async (t) => {
  const { url } = await endpoint(t, (_req, res) => {
    json(res, { active: true, sub: 'bob', preferred_username: 'carol' });
  });
  assert.deepEqual(await new IntrospectionVerifier({ url }).verify(TOKEN, signal()), {
    ok: true,
    username: 'bob',
  });
  const custom = new IntrospectionVerifier({ url, usernameClaims: ['preferred_username'] });
  assert.deepEqual(await custom.verify(TOKEN, signal()), { ok: true, username: 'carol' });
  const missing = new IntrospectionVerifier({ url, usernameClaims: ['email'] });
  assert.deepEqual(await missing.verify(TOKEN, signal()), { ok: false, reason: 'invalid' });
});

test('inactive, expired, not yet valid, wrong issuer or audience: invalid', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const responses: Record<string, unknown> = {
    inactive: { active: false },
    'active as a string': { active: 'true', username: 'alice' },
    expired: { active: true, username: 'alice', exp: now - 60 },
    'not yet': { active: true, username: 'alice', nbf: now + 3600 },
    issuer: { active: true, username: 'alice', iss: 'https://other.example' },
    audience: { active: true, username: 'alice', aud: ['someone-else'] },
  };
  const { url } = await endpoint(t, (req, res) => {
    json(res, responses[req.body.get('token') ?? '']);
  });
  const verifier = new IntrospectionVerifier({ url, issuer: 'https://idp.example', audience: 'pop3' });
  for (const token of Object.keys(responses)) {
    assert.deepEqual(await verifier.verify(token, signal()), { ok: false, reason: 'invalid' }, token);
  }
});

test('issuer and audience, when configured and matching, pass (aud as a string or a list)', async (t) => {
  const { url } = await endpoint(t, (req, res) => {
    const aud = req.body.get('token') === 'list' ? ['x', 'pop3'] : 'pop3';
    json(res, { active: true, username: 'alice', iss: 'https://idp.example', aud });
  });
  const verifier = new IntrospectionVerifier({ url, issuer: 'https://idp.example', audience: 'pop3' });
  assert.deepEqual(await verifier.verify('list', signal()), { ok: true, username: 'alice' });
  assert.deepEqual(await verifier.verify('string', signal()), { ok: true, username: 'alice' });
});

test('an endpoint error, a non-JSON or non-object answer, or no answer in time: temporary; the token is never logged', async (t) => {
  const { url } = await endpoint(t, (req, res) => {
    const token = req.body.get('token') ?? '';
    if (token.startsWith('500')) json(res, { error: token }, 500);
    else if (token.startsWith('401')) json(res, { error: 'invalid_client' }, 401);
    else if (token.startsWith('html')) res.end(`<html>${token}</html>`);
    else if (token.startsWith('array')) json(res, [token]);
    // "slow": never answered; the verifier's deadline ends it.
  });
  const logger = recordingLogger();
  const verifier = new IntrospectionVerifier({ url, timeoutMs: 200, logger });
  for (const token of [`500-${TOKEN}`, `401-${TOKEN}`, `html-${TOKEN}`, `array-${TOKEN}`, `slow-${TOKEN}`]) {
    assert.deepEqual(await verifier.verify(token, signal()), { ok: false, reason: 'temporary' }, token);
  }
  assert.ok(logger.lines.length >= 5, 'each failure is logged');
  for (const line of logger.lines) assert.ok(!line.includes(TOKEN), `token in the log: ${line}`);
});

test('an unreachable endpoint is temporary', async () => {
  // A port that was free a moment ago: nothing listens there now.
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  const closed = `http://127.0.0.1:${port}/introspect`;
  assert.deepEqual(await new IntrospectionVerifier({ url: closed }).verify(TOKEN, signal()), {
    ok: false,
    reason: 'temporary',
  });
});

test('the session signal aborts the request', async (t) => {
  const { url, seen } = await endpoint(t, () => {});
  const controller = new AbortController();
  const pending = new IntrospectionVerifier({ url }).verify(TOKEN, controller.signal);
  while (seen.length === 0) await new Promise((resolve) => setImmediate(resolve));
  controller.abort();
  assert.deepEqual(await pending, { ok: false, reason: 'temporary' });
});

test('options are checked: a secret needs an id, the URL must be http(s)', () => {
  assert.throws(
    () => new IntrospectionVerifier({ url: 'http://127.0.0.1/', clientSecret: 'x' }),
    /client id/,
  );
  assert.throws(() => new IntrospectionVerifier({ url: 'file:///etc/passwd' }), /http/);
});
