// AUTH (RFC 5034) through a real server, for every mechanism: with and without an initial
// response, `*` to cancel, bad base64, wrong credentials, SCRAM's server signature as a last `+`
// challenge, and the cleartext policy. The client side is worked out here from the RFCs.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { OAuthVerifier, TokenVerdict } from '../../src/auth/oauth/verifier.js';
import { PasswdFileAuthenticator } from '../../src/auth/passwd-file.js';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { StaticAuthenticator } from '../../src/auth/static.js';
import type { Authenticator } from '../../src/auth/types.js';
import type { Pop3ServerOptions } from '../../src/pop3/server.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { scramClientFinal } from '../helpers/scram-client.js';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8');

const ALICE_OK = '+OK alice has 1 message (20 octets)';
const BOB_OK = '+OK bob has 0 messages (0 octets)';
const INVALID = '-ERR [AUTH] invalid user name or password';
const CANCELLED = '-ERR [AUTH] authentication failed: cancelled by the client';
const BAD_BASE64 = '-ERR [AUTH] authentication failed: invalid base64';
const REFUSED = '-ERR [AUTH] cleartext login refused on an unencrypted connection, TLS is required';
const ALL = 'SASL SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN OAUTHBEARER XOAUTH2';

const TOKENS: Record<string, TokenVerdict> = {
  'alice-token': { ok: true, username: 'alice' },
  'bob-token': { ok: true, username: 'bob' },
  'nobody-token': { ok: true, username: 'nobody' },
  'down-token': { ok: false, reason: 'temporary' },
};
const verifier: OAuthVerifier = {
  verify: (token) => Promise.resolve(TOKENS[token] ?? { ok: false, reason: 'invalid' }),
};

async function serve(t: TestContext, options: Partial<Pop3ServerOptions> = {}): Promise<number> {
  const { port } = await startServer(t, {
    authenticator: new StaticAuthenticator({ alice: 'pw', bob: 'secret' }, { oauth: verifier }),
    mailboxes: { alice: ['Subject: x\r\n\r\nbody\r\n'], bob: [] },
    ...options,
  });
  return port;
}

async function connect(t: TestContext, port: number): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  return client;
}

async function capaSasl(client: Pop3TestClient): Promise<string | undefined> {
  const { lines } = await client.multi('CAPA');
  return lines.find((l) => l.startsWith('SASL'));
}

/** The text of a `+ base64` challenge line. */
function challenge(line: string): string {
  assert.match(line, /^\+ [A-Za-z0-9+/=]*$/, `expected a challenge, got ${line}`);
  return unb64(line.slice(2));
}

const cramResponse = (user: string, password: string, text: string): string =>
  b64(`${user} ${createHmac('md5', password).update(text).digest('hex')}`);

/** A whole SCRAM-SHA-256 login; returns the server's replies after client-final and after the empty line. */
async function scram(
  client: Pop3TestClient,
  user: string,
  password: string,
  { initial = true }: { initial?: boolean } = {},
): Promise<{ final: string; outcome: string; expectedServerFinal: string }> {
  const bare = `n=${user},r=fyko+d2lbbFgONRv9qkxdawL`;
  let line: string;
  if (initial) line = await client.command(`AUTH SCRAM-SHA-256 ${b64(`n,,${bare}`)}`);
  else {
    assert.equal(await client.command('AUTH SCRAM-SHA-256'), '+ ');
    line = await client.command(b64(`n,,${bare}`));
  }
  const serverFirst = challenge(line);
  assert.match(serverFirst, /^r=fyko\+d2lbbFgONRv9qkxdawL[^,]+,s=[A-Za-z0-9+/]+=*,i=4096$/);
  const { message, expectedServerFinal } = scramClientFinal({
    password,
    gs2Header: 'n,,',
    clientFirstBare: bare,
    serverFirst,
  });
  const final = await client.command(b64(message));
  const outcome = final.startsWith('+ ') ? await client.command('') : final;
  return { final, outcome, expectedServerFinal };
}

describe('CAPA and the bare AUTH list', () => {
  test('with a token verifier: every mechanism, strongest first; bare AUTH lists the same', async (t) => {
    const client = await connect(t, await serve(t));
    assert.equal(await capaSasl(client), ALL);
    const list = await client.multi('AUTH');
    assert.deepEqual(list.lines, ALL.split(' ').slice(1));
  });

  test('without a verifier: no OAUTHBEARER or XOAUTH2, and AUTH refuses them', async (t) => {
    const client = await connect(
      t,
      await serve(t, { authenticator: new StaticAuthenticator({ alice: 'pw' }) }),
    );
    assert.equal(await capaSasl(client), 'SASL SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN');
    assert.equal(
      await client.command(`AUTH XOAUTH2 ${b64('user=alice\x01auth=Bearer alice-token\x01\x01')}`),
      '-ERR unsupported authentication mechanism XOAUTH2',
    );
    assert.equal(
      await client.command('AUTH OAUTHBEARER'),
      '-ERR unsupported authentication mechanism OAUTHBEARER',
    );
  });

  test('saslMechanisms chooses (and orders) what is offered', async (t) => {
    const client = await connect(t, await serve(t, { saslMechanisms: ['PLAIN', 'CRAM-MD5'] }));
    assert.equal(await capaSasl(client), 'SASL PLAIN CRAM-MD5');
    assert.equal(
      await client.command('AUTH SCRAM-SHA-256'),
      '-ERR unsupported authentication mechanism SCRAM-SHA-256',
    );
  });
});

describe('each mechanism logs in, with and without an initial response', () => {
  test('PLAIN', async (t) => {
    const port = await serve(t);
    const a = await connect(t, port);
    assert.equal(await a.command(`AUTH PLAIN ${b64('\0alice\0pw')}`), ALICE_OK);
    const b = await connect(t, port);
    assert.equal(await b.command('AUTH PLAIN'), '+ ');
    assert.equal(await b.command(b64('bob\0bob\0secret')), BOB_OK);
  });

  test('PLAIN with "=" as an empty initial response asks for nothing more and fails', async (t) => {
    const client = await connect(t, await serve(t));
    assert.equal(
      await client.command('AUTH PLAIN ='),
      '-ERR [AUTH] authentication failed: malformed PLAIN message',
    );
  });

  test('LOGIN', async (t) => {
    const port = await serve(t);
    const a = await connect(t, port);
    assert.equal(challenge(await a.command(`AUTH LOGIN ${b64('alice')}`)), 'Password:');
    assert.equal(await a.command(b64('pw')), ALICE_OK);
    const b = await connect(t, port);
    assert.equal(challenge(await b.command('AUTH LOGIN')), 'Username:');
    assert.equal(challenge(await b.command(b64('bob'))), 'Password:');
    assert.equal(await b.command(b64('secret')), BOB_OK);
  });

  test('CRAM-MD5 (server first: an initial response is refused)', async (t) => {
    const port = await serve(t, { hostname: 'pop.example.org' });
    const a = await connect(t, port);
    const text = challenge(await a.command('AUTH CRAM-MD5'));
    assert.match(text, /^<[0-9]+\.[0-9]+@pop\.example\.org>$/);
    assert.equal(await a.command(cramResponse('alice', 'pw', text)), ALICE_OK);
    const b = await connect(t, port);
    assert.equal(
      await b.command(`AUTH CRAM-MD5 ${cramResponse('alice', 'pw', '<1.2@pop.example.org>')}`),
      '-ERR [AUTH] authentication failed: CRAM-MD5 takes no initial response',
    );
  });

  test('SCRAM-SHA-256: the server signature comes as a last "+" challenge, answered by an empty line', async (t) => {
    const port = await serve(t);
    for (const initial of [true, false]) {
      const client = await connect(t, port);
      const { final, outcome, expectedServerFinal } = await scram(client, 'alice', 'pw', { initial });
      assert.equal(final, `+ ${b64(expectedServerFinal)}`);
      assert.equal(outcome, ALICE_OK);
      assert.equal(await client.command('STAT'), '+OK 1 20');
      assert.match(await client.command('QUIT'), /^\+OK/); // releases the maildrop for the next round
    }
  });

  test('OAUTHBEARER', async (t) => {
    const port = await serve(t);
    const a = await connect(t, port);
    assert.equal(
      await a.command(
        `AUTH OAUTHBEARER ${b64('n,a=alice,\x01host=127.0.0.1\x01port=110\x01auth=Bearer alice-token\x01\x01')}`,
      ),
      ALICE_OK,
    );
    const b = await connect(t, port);
    assert.equal(await b.command('AUTH OAUTHBEARER'), '+ ');
    assert.equal(await b.command(b64('n,,\x01auth=Bearer bob-token\x01\x01')), BOB_OK);
  });

  test('XOAUTH2', async (t) => {
    const port = await serve(t);
    const a = await connect(t, port);
    assert.equal(
      await a.command(`AUTH XOAUTH2 ${b64('user=alice\x01auth=Bearer alice-token\x01\x01')}`),
      ALICE_OK,
    );
    const b = await connect(t, port);
    assert.equal(await b.command('AUTH xoauth2'), '+ ', 'the mechanism name is case-insensitive');
    assert.equal(await b.command(b64('user=bob\x01auth=Bearer bob-token\x01\x01')), BOB_OK);
  });
});

describe('"*" cancels, bad base64 fails', () => {
  test('"*" at the first challenge of every mechanism: -ERR [AUTH], and the session goes on', async (t) => {
    const port = await serve(t, { limits: { maxAuthFailures: 10 } });
    const client = await connect(t, port);
    for (const name of ['SCRAM-SHA-256', 'CRAM-MD5', 'PLAIN', 'LOGIN', 'OAUTHBEARER', 'XOAUTH2']) {
      assert.match(await client.command(`AUTH ${name}`), /^\+ /, name);
      assert.equal(await client.command('*'), CANCELLED, name);
    }
    assert.equal(await client.command(`AUTH PLAIN ${b64('\0alice\0pw')}`), ALICE_OK);
  });

  test('"*" in the middle of SCRAM, and at its final "+" challenge: no login', async (t) => {
    const port = await serve(t);
    const a = await connect(t, port);
    challenge(await a.command(`AUTH SCRAM-SHA-256 ${b64('n,,n=alice,r=abcdef')}`));
    assert.equal(await a.command('*'), CANCELLED);

    const b = await connect(t, port);
    const bare = 'n=alice,r=abcdef';
    const serverFirst = challenge(await b.command(`AUTH SCRAM-SHA-256 ${b64(`n,,${bare}`)}`));
    const { message } = scramClientFinal({
      password: 'pw',
      gs2Header: 'n,,',
      clientFirstBare: bare,
      serverFirst,
    });
    assert.match(await b.command(b64(message)), /^\+ /);
    assert.equal(await b.command('*'), CANCELLED);
    assert.equal(await b.command('STAT'), '-ERR STAT is not valid in the AUTHORIZATION state');
  });

  test('anything but an empty line after the server signature fails', async (t) => {
    const client = await connect(t, await serve(t));
    const bare = 'n=alice,r=abcdef';
    const serverFirst = challenge(await client.command(`AUTH SCRAM-SHA-256 ${b64(`n,,${bare}`)}`));
    const { message } = scramClientFinal({
      password: 'pw',
      gs2Header: 'n,,',
      clientFirstBare: bare,
      serverFirst,
    });
    assert.match(await client.command(b64(message)), /^\+ /);
    assert.equal(
      await client.command(b64('v=whatever')),
      '-ERR [AUTH] authentication failed: expected an empty response',
    );
  });

  test('bad base64, in the AUTH line or in a response, is -ERR [AUTH]', async (t) => {
    const port = await serve(t, { limits: { maxAuthFailures: 10 } });
    const client = await connect(t, port);
    assert.equal(await client.command('AUTH PLAIN AGFsaWNlAHB3!'), BAD_BASE64);
    assert.equal(await client.command('AUTH PLAIN AGFsaWNlAHB'), BAD_BASE64, 'not a multiple of 4');
    assert.equal(await client.command('AUTH SCRAM-SHA-256'), '+ ');
    assert.equal(await client.command('bixuPWFsaWNlLHI9YWJj==='), BAD_BASE64);
    assert.equal(await client.command('AUTH XOAUTH2'), '+ ');
    assert.equal(await client.command('dXNlcj1hbGljZQ'), BAD_BASE64, 'unpadded');
  });
});

describe('wrong credentials', () => {
  test('PLAIN, LOGIN and CRAM-MD5 with a wrong password', async (t) => {
    const port = await serve(t, { limits: { maxAuthFailures: 10 } });
    const client = await connect(t, port);
    assert.equal(await client.command(`AUTH PLAIN ${b64('\0alice\0wrong')}`), INVALID);
    challenge(await client.command(`AUTH LOGIN ${b64('alice')}`));
    assert.equal(await client.command(b64('wrong')), INVALID);
    const text = challenge(await client.command('AUTH CRAM-MD5'));
    assert.equal(await client.command(cramResponse('alice', 'wrong', text)), INVALID);
  });

  test('SCRAM-SHA-256: a wrong password and an unknown user fail alike, with no server signature', async (t) => {
    const port = await serve(t, { limits: { maxAuthFailures: 10 } });
    const client = await connect(t, port);
    const wrong = await scram(client, 'alice', 'wrong');
    assert.equal(wrong.final, INVALID);
    const unknown = await scram(client, 'nobody', 'pw');
    assert.equal(unknown.final, INVALID);
  });

  test('OAUTHBEARER: a refused token gets the JSON error, the client acknowledges with ^A, then -ERR', async (t) => {
    const port = await serve(t, { limits: { maxAuthFailures: 10 } });
    const client = await connect(t, port);
    for (const message of [
      'n,,\x01auth=Bearer forged\x01\x01',
      'n,a=alice,\x01auth=Bearer bob-token\x01\x01', // bob's token, claiming to be alice
      'n,,\x01auth=Bearer nobody-token\x01\x01', // a valid token for a user this server does not have
    ]) {
      const error = challenge(await client.command(`AUTH OAUTHBEARER ${b64(message)}`));
      assert.deepEqual(JSON.parse(error), { status: 'invalid_token', schemes: 'bearer' });
      assert.equal(await client.command('AQ=='), INVALID);
    }
  });

  test('XOAUTH2: a refused token gets the JSON error, answered with an empty line, then -ERR', async (t) => {
    const client = await connect(t, await serve(t));
    const error = challenge(
      await client.command(`AUTH XOAUTH2 ${b64('user=alice\x01auth=Bearer bob-token\x01\x01')}`),
    );
    assert.deepEqual(JSON.parse(error), { status: '401', schemes: 'bearer' });
    assert.equal(await client.command(''), INVALID);
  });

  test('a verifier that cannot decide: -ERR [SYS/TEMP], not counted as a wrong token', async (t) => {
    const client = await connect(t, await serve(t));
    assert.equal(
      await client.command(`AUTH XOAUTH2 ${b64('user=alice\x01auth=Bearer down-token\x01\x01')}`),
      '-ERR [SYS/TEMP] authentication is temporarily unavailable, try again later',
    );
  });

  test('maxAuthFailures counts SASL failures: the third closes the connection', async (t) => {
    const client = await connect(t, await serve(t, { limits: { maxAuthFailures: 3 } }));
    assert.equal(await client.command(`AUTH PLAIN ${b64('\0alice\0x')}`), INVALID);
    assert.equal((await scram(client, 'alice', 'x')).final, INVALID);
    assert.equal(await client.command('AUTH CRAM-MD5 *'), BAD_BASE64 + ', too many failures');
    await client.closed();
  });
});

describe('the cleartext policy', () => {
  test('not TLS, not local: only SCRAM-SHA-256 and CRAM-MD5 are offered; the others are refused before any challenge', async (t) => {
    const port = await serve(t, { isLocalAddress: () => false });
    const client = await connect(t, port);
    assert.equal(await capaSasl(client), 'SASL SCRAM-SHA-256 CRAM-MD5');
    assert.deepEqual((await client.multi('AUTH')).lines, ['SCRAM-SHA-256', 'CRAM-MD5']);
    for (const name of ['PLAIN', 'LOGIN', 'OAUTHBEARER', 'XOAUTH2']) {
      assert.equal(await client.command(`AUTH ${name}`), REFUSED, name);
    }
    assert.equal(
      await client.command(`AUTH XOAUTH2 ${b64('user=alice\x01auth=Bearer alice-token\x01\x01')}`),
      REFUSED,
    );
    // The refusals are not failed logins; the mechanisms that keep the secret work.
    const { outcome } = await scram(client, 'alice', 'pw');
    assert.equal(outcome, ALICE_OK);
    const cram = await connect(t, port);
    const text = challenge(await cram.command('AUTH CRAM-MD5'));
    assert.equal(await cram.command(cramResponse('bob', 'secret', text)), BOB_OK);
  });

  test('allowCleartextLogin offers them all again', async (t) => {
    const port = await serve(t, { isLocalAddress: () => false, allowCleartextLogin: true });
    const client = await connect(t, port);
    assert.equal(await capaSasl(client), ALL);
    assert.equal(
      await client.command(`AUTH OAUTHBEARER ${b64('n,,\x01auth=Bearer alice-token\x01\x01')}`),
      ALICE_OK,
    );
  });
});

describe('a passwd-file decides what it can serve', () => {
  async function fileServer(t: TestContext, lines: string[], oauth?: OAuthVerifier): Promise<number> {
    const path = join(await tempDir(t), 'users');
    await writeFile(path, lines.join('\n') + '\n');
    const users = new PasswdFileAuthenticator(path, oauth === undefined ? {} : { oauth });
    assert.deepEqual(await users.reload(), []);
    return serve(t, { authenticator: users satisfies Authenticator });
  }

  test('every user {SCRAM-SHA-256}: SCRAM is offered, and logs in with the stored keys', async (t) => {
    const port = await fileServer(t, [
      `alice:${await hashPassword('pw', 'SCRAM-SHA-256')}`,
      `bob:${await hashPassword('secret', 'SCRAM-SHA-256')}`,
    ]);
    const client = await connect(t, port);
    assert.equal(await capaSasl(client), 'SASL SCRAM-SHA-256 PLAIN LOGIN');
    const { final, outcome, expectedServerFinal } = await scram(client, 'alice', 'pw');
    assert.equal(final, `+ ${b64(expectedServerFinal)}`);
    assert.equal(outcome, ALICE_OK);
    // The same users file serves PLAIN: the SCRAM keys check a password too.
    const plain = await connect(t, port);
    assert.equal(await plain.command(`AUTH PLAIN ${b64('\0bob\0secret')}`), BOB_OK);
  });

  test('every user {PLAIN}: CRAM-MD5 is offered; hashed users: only PLAIN and LOGIN', async (t) => {
    const plainPort = await fileServer(t, ['alice:{PLAIN}pw', 'bob:{PLAIN}secret']);
    const plainClient = await connect(t, plainPort);
    assert.equal(await capaSasl(plainClient), 'SASL CRAM-MD5 PLAIN LOGIN');
    const text = challenge(await plainClient.command('AUTH CRAM-MD5'));
    assert.equal(await plainClient.command(cramResponse('alice', 'pw', text)), ALICE_OK);

    const hashedPort = await fileServer(t, [`alice:${await hashPassword('pw')}`, 'bob:{PLAIN}secret']);
    const hashedClient = await connect(t, hashedPort);
    assert.equal(await capaSasl(hashedClient), 'SASL PLAIN LOGIN');
  });

  test('with a verifier: bearer tokens log in users of the file only', async (t) => {
    const port = await fileServer(t, [`alice:${await hashPassword('pw')}`], verifier);
    const client = await connect(t, port);
    assert.equal(await capaSasl(client), 'SASL PLAIN LOGIN OAUTHBEARER XOAUTH2');
    challenge(await client.command(`AUTH XOAUTH2 ${b64('user=bob\x01auth=Bearer bob-token\x01\x01')}`));
    assert.equal(await client.command(''), INVALID, 'bob is not in the file');
    assert.equal(
      await client.command(`AUTH XOAUTH2 ${b64('user=alice\x01auth=Bearer alice-token\x01\x01')}`),
      ALICE_OK,
    );
  });
});
