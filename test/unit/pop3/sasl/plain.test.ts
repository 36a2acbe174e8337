import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StaticAuthenticator } from '../../../../src/auth/static.js';
import { begin, bytes, challengeOf, doneOf, fromBase64 } from '../../../helpers/sasl-context.js';
import { plain } from '../../../../src/pop3/sasl/plain.js';
import { SaslError } from '../../../../src/pop3/sasl/types.js';

// RFC 4616 section 4's users: tim (tanstaaftanstaaf) and Kurt (xipj3plmq).
const users = new StaticAuthenticator({ tim: 'tanstaaftanstaaf', Kurt: 'xipj3plmq' });

describe('PLAIN (RFC 4616)', () => {
  test('section 4, first example: an empty challenge, then <NUL>tim<NUL>tanstaaftanstaaf logs tim in', async () => {
    const exchange = begin(plain, users);
    assert.deepEqual(challengeOf(await exchange.start(undefined)), Buffer.alloc(0));
    // The 21 octets of the example's literal {21}.
    const message = bytes('\0tim\0tanstaaftanstaaf');
    assert.equal(message.length, 21);
    const done = doneOf(await exchange.step(message));
    assert.equal(done.username, 'tim');
    assert.deepEqual(done.result, { ok: true, user: { name: 'tim' } });
  });

  test('the same message as base64 (dGltAHRpbQB0YW5zdGFhZnRhbnN0YWFm: tim<NUL>tim<NUL>...) as an initial response', async () => {
    // authzid "tim" equal to the authcid is allowed.
    const done = doneOf(await begin(plain, users).start(fromBase64('dGltAHRpbQB0YW5zdGFhZnRhbnN0YWFm')));
    assert.deepEqual(done.result, { ok: true, user: { name: 'tim' } });
  });

  test('section 4, second example: Ursel<NUL>Kurt<NUL>xipj3plmq (acting for another user) is refused', async () => {
    const message = bytes('Ursel\0Kurt\0xipj3plmq');
    assert.equal(message.length, 20); // the example's {20+}
    const done = doneOf(await begin(plain, users).start(message));
    assert.equal(done.username, 'Kurt');
    assert.deepEqual(done.result, { ok: false, reason: 'invalid' });
    // Without the authorization identity, Kurt's password is right.
    const kurt = doneOf(await begin(plain, users).start(bytes('\0Kurt\0xipj3plmq')));
    assert.deepEqual(kurt.result, { ok: true, user: { name: 'Kurt' } });
  });

  test('a wrong password or an unknown user fails the same way', async () => {
    for (const message of ['\0tim\0wrong', '\0nobody\0tanstaaftanstaaf']) {
      const done = doneOf(await begin(plain, users).start(bytes(message)));
      assert.deepEqual(done.result, { ok: false, reason: 'invalid' }, message);
    }
  });

  test('malformed messages are SaslErrors', async () => {
    for (const message of [
      bytes('tim'),
      bytes('\0tim'),
      bytes('\0tim\0pw\0'),
      bytes('\0\0pw'),
      bytes('\0tim\0'),
    ]) {
      await assert.rejects(begin(plain, users).start(message), SaslError, JSON.stringify(message.toString()));
    }
    await assert.rejects(begin(plain, users).start(Buffer.from([0, 0xff, 0, 0x41])), /not UTF-8/);
  });
});
