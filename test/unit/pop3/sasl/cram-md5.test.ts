import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PasswdFileAuthenticator } from '../../../../src/auth/passwd-file.js';
import { hashPassword } from '../../../../src/auth/passwords/registry.js';
import { StaticAuthenticator } from '../../../../src/auth/static.js';
import { canCramMd5 } from '../../../../src/auth/types.js';
import { begin, bytes, challengeOf, doneOf, fromBase64, saslContext } from '../../../helpers/sasl-context.js';
import { tempDir } from '../../../helpers/temp-dir.js';
import { createCramMd5, cramMd5 } from '../../../../src/pop3/sasl/cram-md5.js';
import { SaslError } from '../../../../src/pop3/sasl/types.js';

// RFC 2195 section 2's example: the server's challenge and tim's response, as sent (base64).
const RFC_CHALLENGE = '<1896.697170952@postoffice.reston.mci.net>';
const RFC_CHALLENGE_B64 = 'PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+';
const RFC_RESPONSE_B64 = 'dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw';
const RFC_DIGEST = 'b913a602c7eda7a495b4e6e7334d3890';

const rfcMechanism = createCramMd5({ challenge: () => RFC_CHALLENGE });
const users = new StaticAuthenticator({ tim: 'tanstaaftanstaaf', empty: '' });

describe('CRAM-MD5 (RFC 2195)', () => {
  test("the RFC example: challenge bytes as in the RFC, and tim's response logs tim in", async () => {
    const exchange = begin(rfcMechanism, users);
    assert.equal(challengeOf(await exchange.start(undefined)).toString('base64'), RFC_CHALLENGE_B64);
    assert.equal(fromBase64(RFC_RESPONSE_B64).toString(), `tim ${RFC_DIGEST}`);
    const done = doneOf(await exchange.step(fromBase64(RFC_RESPONSE_B64)));
    assert.equal(done.username, 'tim');
    assert.deepEqual(done.result, { ok: true, user: { name: 'tim' } });
  });

  test('upper-case hex is the same digest', async () => {
    const exchange = begin(rfcMechanism, users);
    await exchange.start(undefined);
    const done = doneOf(await exchange.step(bytes(`tim ${RFC_DIGEST.toUpperCase()}`)));
    assert.equal(done.result.ok, true);
  });

  test('a wrong digest, an unknown user and a user with an empty password all fail alike', async () => {
    for (const response of [`tim ${'0'.repeat(32)}`, `nobody ${RFC_DIGEST}`, `empty ${RFC_DIGEST}`]) {
      const exchange = begin(rfcMechanism, users);
      await exchange.start(undefined);
      const done = doneOf(await exchange.step(bytes(response)));
      assert.deepEqual(done.result, { ok: false, reason: 'invalid' }, response);
    }
  });

  test('the default challenge is <digits.digits@hostname>, random, new for every exchange, without the clock', async () => {
    const challenges = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const before = Date.now();
      const step = await cramMd5.begin(saslContext(users, 'mail.example.org')).start(undefined);
      const after = Date.now();
      const challenge = challengeOf(step).toString();
      const m = /^<([0-9]+)\.([0-9]+)@mail\.example\.org>$/.exec(challenge);
      assert.ok(m !== null, challenge);
      for (const field of m.slice(1)) {
        const n = Number(field);
        // Neither number is the clock, in milliseconds or seconds.
        assert.ok(!(n >= before && n <= after), `the clock in ${challenge}`);
        assert.ok(
          !(n >= Math.floor(before / 1000) && n <= Math.ceil(after / 1000)),
          `the clock in ${challenge}`,
        );
        assert.notEqual(n, process.pid, `the pid in ${challenge}`);
      }
      challenges.add(challenge);
    }
    assert.equal(challenges.size, 3);
  });

  test('malformed responses and an initial response are SaslErrors', async () => {
    await assert.rejects(begin(rfcMechanism, users).start(bytes(`tim ${RFC_DIGEST}`)), SaslError);
    for (const response of [
      'tim',
      `tim  ${RFC_DIGEST}x`,
      `tim ${RFC_DIGEST.slice(1)}`,
      ` ${RFC_DIGEST}`,
      `t\nm ${RFC_DIGEST}`,
      `t\tm ${RFC_DIGEST}`,
      `t\x7fm ${RFC_DIGEST}`,
    ]) {
      const exchange = begin(rfcMechanism, users);
      await exchange.start(undefined);
      await assert.rejects(exchange.step(bytes(response)), SaslError, JSON.stringify(response));
    }
  });

  test('a passwd-file offers it only when every user is {PLAIN}, and checks only {PLAIN} users', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'users');
    await writeFile(path, 'tim:{PLAIN}tanstaaftanstaaf\n');
    const file = new PasswdFileAuthenticator(path);
    await file.reload();
    assert.equal(canCramMd5(file), true);
    const exchange = begin(rfcMechanism, file);
    await exchange.start(undefined);
    assert.deepEqual(doneOf(await exchange.step(fromBase64(RFC_RESPONSE_B64))).result, {
      ok: true,
      user: { name: 'tim' },
    });

    await writeFile(path, `tim:{PLAIN}tanstaaftanstaaf\nkurt:${await hashPassword('x', 'SSHA256')}\n`);
    assert.deepEqual(await file.reload(), []);
    assert.equal(canCramMd5(file), false, 'a hashed password turns CRAM-MD5 off');
  });
});
