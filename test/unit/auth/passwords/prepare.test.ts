import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PasswordRefusedError, preparePassword } from '../../../../src/auth/passwords/prepare.js';
import { findScheme, hashPassword, parseStoredPassword } from '../../../../src/auth/passwords/registry.js';
import { checkPassword } from '../../../../src/auth/stored-credentials.js';
import type { StoredPassword } from '../../../../src/auth/passwords/types.js';

const request = (password: string) => ({ password, signal: new AbortController().signal });
const stored = (field: string): StoredPassword => {
  const parsed = parseStoredPassword(field);
  if (typeof parsed === 'string') assert.fail(parsed);
  return parsed;
};
const noDecoy = () => Promise.resolve(stored('{PLAIN}decoy that never matches'));

const NFC = 'pässwörd';
const NFD = 'pa\u0308sswo\u0308rd';

test('an ASCII password is left exactly as it is, a tab and other controls included', () => {
  for (const password of [
    'pw',
    'a b',
    'tab\there',
    ' lead',
    'trail ',
    '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~',
    '\x7f',
  ])
    assert.equal(preparePassword(password), password);
});

test('a UTF-8 password is prepared: NFKC, other spaces a space, invisible characters removed', () => {
  assert.equal(preparePassword(NFD), NFC);
  assert.equal(preparePassword('ｐｗ'), 'pw');
  assert.equal(preparePassword('a\u00a0b'), 'a b');
  assert.equal(preparePassword('se\u00adcreto'), 'secreto');
  assert.equal(preparePassword('🔑 llave'), '🔑 llave'); // unassigned in Unicode 3.2: allowed
});

test('SASLprep refuses bidirectional controls, mixed directions and prohibited characters', () => {
  for (const password of ['pw\u202e', 'שלוםabc', 'a\u200fb', 'x\ue000', '\u00ad']) {
    assert.equal(preparePassword(password), undefined, JSON.stringify(password));
  }
});

test('one hash for every form: made from the decomposed form, checked with the composed, and back', async () => {
  for (const scheme of ['PBKDF2', 'SSHA256', 'SHA512-CRYPT', 'PLAIN']) {
    const fromNfd = stored(await hashPassword(NFD, scheme));
    const fromNfc = stored(await hashPassword(NFC, scheme));
    assert.equal(await checkPassword(fromNfd, noDecoy, request(NFC)), 'match', scheme);
    assert.equal(await checkPassword(fromNfc, noDecoy, request(NFD)), 'match', scheme);
    assert.equal(await checkPassword(fromNfc, noDecoy, request(`${NFC}!`)), 'mismatch', scheme);
  }
});

test('ASCII hashes made before preparation existed keep matching, tab included', async () => {
  // {PLAIN} holds the password itself; PBKDF2 hashed without any preparation, as older versions did.
  assert.equal(await checkPassword(stored('{PLAIN}tab\there'), noDecoy, request('tab\there')), 'match');
  const pbkdf2 = findScheme('PBKDF2');
  assert.ok(pbkdf2 !== undefined);
  const old = stored(`{PBKDF2}${await pbkdf2.hash('old secret')}`);
  assert.equal(await checkPassword(old, noDecoy, request('old secret')), 'match');
});

test('a password SASLprep refuses is not hashed, and matches nothing, not even its own {PLAIN} form', async () => {
  await assert.rejects(hashPassword('pw\u202e'), PasswordRefusedError);
  let decoys = 0;
  const decoy = () => {
    decoys += 1;
    return noDecoy();
  };
  assert.equal(await checkPassword(stored('{PLAIN}pw\u202e'), decoy, request('pw\u202e')), 'mismatch');
  assert.equal(decoys, 1, 'checked against the decoy, so it costs what any check costs');
});
