import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword } from '../../../src/auth/passwords/registry.js';
import { checkPassword, DefaultDecoy, parseDatabasePassword } from '../../../src/auth/stored-credentials.js';
import type { StoredPassword } from '../../../src/auth/passwords/types.js';

const request = (password: string) => ({ password, signal: new AbortController().signal });

test('a database password is {SCHEME}data, or a bare crypt hash read as {CRYPT}', async () => {
  const sha512 = (await hashPassword('secret', 'SHA512-CRYPT')).replace('{SHA512-CRYPT}', '');
  const bare = parseDatabasePassword(sha512);
  assert.ok(typeof bare !== 'string');
  assert.equal(bare.scheme.name, 'CRYPT');
  assert.equal(
    await checkPassword(bare, () => Promise.reject(new Error('no decoy')), request('secret')),
    'match',
  );
  const bcrypt = (await hashPassword('secret', 'BLF-CRYPT')).replace('{BLF-CRYPT}', '');
  assert.ok(bcrypt.startsWith('$2y$'));
  assert.equal(
    await checkPassword(
      parseDatabasePassword(bcrypt) as StoredPassword,
      () => Promise.reject(new Error()),
      request('secret'),
    ),
    'match',
  );
  const braced = parseDatabasePassword('{PLAIN}pw');
  assert.ok(typeof braced !== 'string' && braced.scheme.name === 'PLAIN');
  // Postfixadmin's old default, MD5-crypt, is refused with the reason; so is a bare password.
  assert.match(parseDatabasePassword('$1$abcdefgh$0123456789abcdefghijkl') as string, /MD5-crypt/);
  assert.equal(parseDatabasePassword('hunter2'), 'password must start with {SCHEME}');
});

test('an unknown name is checked against the decoy, and never matches, even with its password', async () => {
  const decoy = new DefaultDecoy('SSHA256');
  let used = 0;
  const check = await checkPassword(
    undefined,
    () => {
      used += 1;
      return decoy.get();
    },
    request('decoy password'),
  );
  assert.equal(check, 'mismatch');
  assert.equal(used, 1);
  assert.equal(await decoy.get(), await decoy.get(), 'the decoy is made once');
});
