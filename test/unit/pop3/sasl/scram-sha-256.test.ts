import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PasswdFileAuthenticator } from '../../../../src/auth/passwd-file.js';
import { hashPassword } from '../../../../src/auth/passwords/registry.js';
import { StaticAuthenticator } from '../../../../src/auth/static.js';
import { canScram, type AuthenticatorWithScram, type ScramCredentials } from '../../../../src/auth/types.js';
import { begin, bytes, challengeOf, doneOf } from '../../../helpers/sasl-context.js';
import { scramClientFinal, scramKeys } from '../../../helpers/scram-client.js';
import { tempDir } from '../../../helpers/temp-dir.js';
import { createScramSha256 } from '../../../../src/pop3/sasl/scram-sha-256.js';
import { SaslError } from '../../../../src/pop3/sasl/types.js';

// RFC 7677 section 3: user "user", password "pencil", and every message of the exchange.
const RFC = {
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  iterations: 4096,
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
} as const;

const rfcKeys = scramKeys('pencil', Buffer.from(RFC.salt, 'base64'), RFC.iterations);
const rfcCredentials: ScramCredentials = {
  iterations: RFC.iterations,
  salt: Buffer.from(RFC.salt, 'base64'),
  storedKey: rfcKeys.storedKey,
  serverKey: rfcKeys.serverKey,
};

/** A backend that knows only the RFC's user, by its keys. */
const rfcBackend: AuthenticatorWithScram = {
  authenticate: () => Promise.resolve({ ok: false, reason: 'invalid' }),
  scramCredentials: (request) => Promise.resolve(request.username === 'user' ? rfcCredentials : undefined),
};

const mechanism = createScramSha256({ serverNonce: () => RFC.serverNonce });

/** Runs client-first, checks it is answered with a challenge; returns the exchange and server-first. */
async function clientFirst(message: string, backend = rfcBackend) {
  const exchange = begin(mechanism, backend);
  const serverFirst = challengeOf(await exchange.start(bytes(message))).toString();
  return { exchange, serverFirst };
}

describe('SCRAM-SHA-256 (RFC 7677 section 3)', () => {
  test('the RFC exchange, byte for byte: server-first and the server signature as successData', async () => {
    const { exchange, serverFirst } = await clientFirst(RFC.clientFirst);
    assert.equal(serverFirst, RFC.serverFirst);
    const done = doneOf(await exchange.step(bytes(RFC.clientFinal)));
    assert.equal(done.username, 'user');
    assert.deepEqual(done.result, { ok: true, user: { name: 'user' } });
    assert.equal(done.successData?.toString(), RFC.serverFinal);
  });

  test('without an initial response: an empty challenge first, then the same exchange', async () => {
    const exchange = begin(mechanism, rfcBackend);
    assert.deepEqual(challengeOf(await exchange.start(undefined)), Buffer.alloc(0));
    assert.equal(challengeOf(await exchange.step(bytes(RFC.clientFirst))).toString(), RFC.serverFirst);
    const done = doneOf(await exchange.step(bytes(RFC.clientFinal)));
    assert.equal(done.successData?.toString(), RFC.serverFinal);
  });

  test('a {SCRAM-SHA-256} users file entry with the RFC keys gives the same exchange', async (t) => {
    const path = join(await tempDir(t), 'users');
    const keys = `${rfcKeys.storedKey.toString('base64')},${rfcKeys.serverKey.toString('base64')}`;
    await writeFile(path, `user:{SCRAM-SHA-256}4096,${RFC.salt},${keys}\n`);
    const file = new PasswdFileAuthenticator(path);
    assert.deepEqual(await file.reload(), []);
    assert.equal(canScram(file), true);
    const { exchange, serverFirst } = await clientFirst(RFC.clientFirst, file);
    assert.equal(serverFirst, RFC.serverFirst);
    const done = doneOf(await exchange.step(bytes(RFC.clientFinal)));
    assert.equal(done.successData?.toString(), RFC.serverFinal);
  });

  test('a wrong proof fails, with no successData', async () => {
    const { exchange } = await clientFirst(RFC.clientFirst);
    const wrong = scramClientFinal({
      password: 'pencils',
      gs2Header: 'n,,',
      clientFirstBare: 'n=user,r=rOprNGfwEbeRWgbNEkqO',
      serverFirst: RFC.serverFirst,
    });
    const done = doneOf(await exchange.step(bytes(wrong.message)));
    assert.deepEqual(done.result, { ok: false, reason: 'invalid' });
    assert.equal(done.successData, undefined);
  });

  test('an unknown user gets a server-first of the same form, the same one each time, and fails at the proof', async () => {
    const first = await clientFirst('n,,n=nobody,r=rOprNGfwEbeRWgbNEkqO');
    const again = await clientFirst('n,,n=nobody,r=rOprNGfwEbeRWgbNEkqO');
    const other = await clientFirst('n,,n=somebody,r=rOprNGfwEbeRWgbNEkqO');
    const form = /^r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj\)hNlF\$k0,s=([A-Za-z0-9+/]{22}==),i=4096$/;
    assert.match(first.serverFirst, form);
    assert.equal(again.serverFirst, first.serverFirst, 'the same made-up salt for the same name');
    assert.notEqual(other.serverFirst, first.serverFirst, 'another name, another salt');
    const final = scramClientFinal({
      password: 'pencil',
      gs2Header: 'n,,',
      clientFirstBare: 'n=nobody,r=rOprNGfwEbeRWgbNEkqO',
      serverFirst: first.serverFirst,
    });
    const done = doneOf(await first.exchange.step(bytes(final.message)));
    assert.deepEqual(done.result, { ok: false, reason: 'invalid' });
  });

  test('"y,," (client could bind, server cannot) is accepted; c= must then be eSws', async () => {
    const bare = 'n=user,r=rOprNGfwEbeRWgbNEkqO';
    const { exchange, serverFirst } = await clientFirst(`y,,${bare}`);
    const final = scramClientFinal({
      password: 'pencil',
      gs2Header: 'y,,',
      clientFirstBare: bare,
      serverFirst,
    });
    assert.match(final.message, /^c=eSws,/);
    const done = doneOf(await exchange.step(bytes(final.message)));
    assert.equal(done.result.ok, true);
    assert.equal(done.successData?.toString(), final.expectedServerFinal);
  });

  test('"y,," followed by c=biws (a downgrade) is refused', async () => {
    const { exchange } = await clientFirst(`y,,n=user,r=rOprNGfwEbeRWgbNEkqO`);
    await assert.rejects(exchange.step(bytes(RFC.clientFinal)), /channel binding data does not match/);
  });

  test('an authzid equal to the user name is accepted; another one is refused', async () => {
    const bare = 'n=user,r=rOprNGfwEbeRWgbNEkqO';
    const { exchange, serverFirst } = await clientFirst(`n,a=user,${bare}`);
    const final = scramClientFinal({
      password: 'pencil',
      gs2Header: 'n,a=user,',
      clientFirstBare: bare,
      serverFirst,
    });
    assert.equal(doneOf(await exchange.step(bytes(final.message))).result.ok, true);
    await assert.rejects(
      begin(mechanism, rfcBackend).start(bytes(`n,a=admin,${bare}`)),
      /authorization identity must be empty or the user name/,
    );
  });

  test('channel binding (p=) is refused with a clear message', async () => {
    await assert.rejects(
      begin(mechanism, rfcBackend).start(bytes('p=tls-exporter,,n=user,r=rOprNGfwEbeRWgbNEkqO')),
      /channel binding is not supported/,
    );
  });

  test('user names are saslnames: =2C and =3D decode, any other = is refused', async () => {
    const seen: string[] = [];
    const recorder: AuthenticatorWithScram = {
      authenticate: () => Promise.resolve({ ok: false, reason: 'invalid' }),
      scramCredentials: (request) => {
        seen.push(request.username);
        return Promise.resolve(undefined);
      },
    };
    await clientFirst('n,,n=a=2Cb=3Dc,r=abc', recorder);
    assert.deepEqual(seen, ['a,b=c']);
    await assert.rejects(begin(mechanism, recorder).start(bytes('n,,n=a=2Db,r=abc')), /malformed user name/);
  });

  test('malformed messages are SaslErrors, at either step', async () => {
    for (const message of [
      'n,,r=abc,n=user', // wrong order
      'n,,m=ext,n=user,r=abc', // a mandatory extension
      'n,,n=user,r=', // empty nonce
      'n,,n=user,r=a,b', // nonce with a comma is not a nonce
      'x,,n=user,r=abc',
      'n,b=user,n=user,r=abc',
      'n,,n=,r=abc',
    ]) {
      await assert.rejects(begin(mechanism, rfcBackend).start(bytes(message)), SaslError, message);
    }
    const [nonce] = /r=[^,]+/.exec(RFC.clientFinal) ?? [''];
    for (const final of [
      `c=biws,${nonce}`, // no proof
      `c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`, // the client's nonce only
      `c=biws,${nonce},p=AAAA`, // a proof of the wrong length
      `c=biws,${nonce},p=not base64!`,
    ]) {
      const { exchange } = await clientFirst(RFC.clientFirst);
      await assert.rejects(exchange.step(bytes(final)), SaslError, final);
    }
    const { exchange } = await clientFirst(RFC.clientFirst);
    await exchange.step(bytes(RFC.clientFinal));
    await assert.rejects(exchange.step(bytes(RFC.clientFinal)), /unexpected response/);
  });

  test('StaticAuthenticator works out keys from the plain password: a real client logs in', async () => {
    const users = new StaticAuthenticator({ alice: 'pw' });
    const bare = 'n=alice,r=clientnonce';
    const { exchange, serverFirst } = await clientFirst(`n,,${bare}`, users);
    const again = await clientFirst(`n,,${bare}`, users);
    assert.equal(again.serverFirst, serverFirst, 'the same salt every time');
    const final = scramClientFinal({ password: 'pw', gs2Header: 'n,,', clientFirstBare: bare, serverFirst });
    const done = doneOf(await exchange.step(bytes(final.message)));
    assert.deepEqual(done.result, { ok: true, user: { name: 'alice' } });
    assert.equal(done.successData?.toString(), final.expectedServerFinal);
  });

  test('a passwd-file offers it only when every user is {SCRAM-SHA-256}; others get made-up keys', async (t) => {
    const path = join(await tempDir(t), 'users');
    await writeFile(path, `alice:${await hashPassword('pw', 'SCRAM-SHA-256')}\nbob:{PLAIN}secret\n`);
    const file = new PasswdFileAuthenticator(path);
    assert.deepEqual(await file.reload(), []);
    assert.equal(canScram(file), false);
    const bare = 'n=bob,r=clientnonce';
    const { exchange, serverFirst } = await clientFirst(`n,,${bare}`, file);
    const final = scramClientFinal({
      password: 'secret',
      gs2Header: 'n,,',
      clientFirstBare: bare,
      serverFirst,
    });
    assert.deepEqual(doneOf(await exchange.step(bytes(final.message))).result, {
      ok: false,
      reason: 'invalid',
    });

    await writeFile(path, `alice:${await hashPassword('pw', 'SCRAM-SHA-256')}\n`);
    await file.reload();
    assert.equal(canScram(file), true);
  });
});
