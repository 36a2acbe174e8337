// The daemon's [oauth] table: bearer tokens checked against a JWKS file or an introspection
// endpoint, for users of the users file only; a start that cannot work stops with a clear message.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { runPoplar, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const INVALID = '-ERR [AUTH] invalid user name or password';

/** A daemon on 127.0.0.1 with a users file (alice, bob) and `oauthToml` as its [oauth] table. */
async function daemonWith(t: TestContext, cwd: string, oauthToml: string): Promise<RunningDaemon> {
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\nbob:{PLAIN}secret\n');
  await writeFile(
    join(cwd, 'poplar.toml'),
    `[limits]\nauthFailureDelayMs = 0\nmaxAuthFailures = 10\n\n[oauth]\n${oauthToml}\n`,
  );
  return startDaemon(t, {
    args: [
      '--config',
      'poplar.toml',
      '--users',
      'users',
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
}

async function xoauth2(port: number, user: string, token: string): Promise<string> {
  const client = await Pop3TestClient.connect(port);
  try {
    let reply = await client.command(`AUTH XOAUTH2 ${b64(`user=${user}\x01auth=Bearer ${token}\x01\x01`)}`);
    if (reply.startsWith('+ ')) reply = await client.command('');
    if (reply.startsWith('+OK')) await client.command('QUIT');
    return reply;
  } finally {
    client.close();
  }
}

test('jwksFile: a signed JWT for our audience logs in the user of its email claim, if the users file has them', async (t) => {
  const cwd = await tempDir(t);
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  await writeFile(
    join(cwd, 'jwks.json'),
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }] }),
  );
  const d = await daemonWith(
    t,
    cwd,
    'jwksFile = "jwks.json"\nissuer = "https://idp.example"\naudience = "pop3"',
  );
  const token = (claims: Record<string, unknown>): Promise<string> =>
    new SignJWT({ iss: 'https://idp.example', aud: 'pop3', email_verified: true, ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setExpirationTime('5m')
      .sign(privateKey);

  const client = await Pop3TestClient.connect(d.port);
  const { lines } = await client.multi('CAPA');
  client.close();
  assert.ok(lines.includes('SASL CRAM-MD5 PLAIN LOGIN OAUTHBEARER XOAUTH2'), lines.join('|'));

  const alice = await token({ email: 'alice' });
  assert.equal(await xoauth2(d.port, 'alice', alice), '+OK alice has 0 messages (0 octets)');
  assert.equal(await xoauth2(d.port, 'bob', alice), INVALID, "alice's token, claiming to be bob");
  assert.equal(
    await xoauth2(d.port, 'carol', await token({ email: 'carol' })),
    INVALID,
    'carol is not in the users file',
  );
  assert.equal(
    await xoauth2(d.port, 'bob', await token({ email: 'bob', aud: 'webmail' })),
    INVALID,
    'another audience',
  );
  for (const flag of [undefined, 'true', false]) {
    assert.equal(
      await xoauth2(d.port, 'alice', await token({ email: 'alice', email_verified: flag })),
      INVALID,
      `email_verified ${JSON.stringify(flag)}`,
    );
  }
  assert.ok(!d.stdout().includes(alice) && !d.stderr().includes(alice), 'the token is never logged');
});

test('introspectionUrl with clientSecretFile: the endpoint is asked with our credentials', async (t) => {
  const cwd = await tempDir(t);
  const seen: { authorization: string | undefined; body: string }[] = [];
  const endpoint = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ authorization: req.headers.authorization, body });
      const token = new URLSearchParams(body).get('token');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(token === 'good' ? { active: true, username: 'bob' } : { active: false }));
    });
  });
  endpoint.listen(0, '127.0.0.1');
  await once(endpoint, 'listening');
  t.after(() => {
    endpoint.closeAllConnections();
    endpoint.close();
  });
  const url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/introspect`;
  await writeFile(join(cwd, 'secret'), 'very-secret\n');
  const d = await daemonWith(
    t,
    cwd,
    `introspectionUrl = "${url}"\nclientId = "poplar"\nclientSecretFile = "secret"`,
  );

  assert.equal(await xoauth2(d.port, 'bob', 'good'), '+OK bob has 0 messages (0 octets)');
  assert.equal(await xoauth2(d.port, 'bob', 'bad'), INVALID);
  assert.deepEqual(
    seen.map((s) => s.authorization),
    [`Basic ${b64('poplar:very-secret')}`, `Basic ${b64('poplar:very-secret')}`],
  );
  assert.deepEqual(
    seen.map((s) => s.body),
    ['token=good&token_type_hint=access_token', 'token=bad&token_type_hint=access_token'],
  );
});

test('a JWKS file that cannot be read stops the daemon before it listens, naming the file', async (t) => {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  await writeFile(join(cwd, 'poplar.toml'), '[oauth]\njwksFile = "missing.json"\naudience = "pop3"\n');
  const result = await runPoplar(
    t,
    ['--config', 'poplar.toml', '--users', 'users', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'],
    { cwd },
  );
  assert.notEqual(result.code, 0);
  assert.match(result.stdout + result.stderr, /missing\.json/);
});

test('an [oauth] table with a JWKS but no audience is a config error', async (t) => {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'poplar.toml'), '[oauth]\njwksUrl = "https://idp.example/jwks"\n');
  const result = await runPoplar(
    t,
    ['--config', 'poplar.toml', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'],
    { cwd },
  );
  assert.notEqual(result.code, 0);
  assert.match(result.stdout + result.stderr, /audience is required/);
});
