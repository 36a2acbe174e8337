import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isValidUserName, MAX_USER_NAME_BYTES } from '../../src/user.js';

describe('isValidUserName', () => {
  test('accepts ordinary names', () => {
    for (const name of [
      'alice',
      'Alice',
      'a',
      '0',
      'user.name',
      'a.b.c',
      'a..b',
      'alice@example.org',
      'alice+tag',
      'under_score',
      'dash-ed',
      '_x',
      '-x',
      '@',
      'x.',
      'a'.repeat(64),
    ]) {
      assert.equal(isValidUserName(name), true, JSON.stringify(name));
    }
  });

  test('the longest name is 64 bytes', () => {
    assert.equal(MAX_USER_NAME_BYTES, 64);
    assert.equal(isValidUserName('a'.repeat(64)), true);
    assert.equal(isValidUserName('a'.repeat(65)), false);
    assert.equal(isValidUserName(`a${'.'.repeat(63)}`), true);
    assert.equal(isValidUserName(`a${'.'.repeat(64)}`), false);
  });

  test('refuses names that are not a single safe path segment', () => {
    for (const name of ['', '.', '..', '.hidden', '...', '../x', 'a/b', '/abs', 'a\\b', '..\\x', './a']) {
      assert.equal(isValidUserName(name), false, JSON.stringify(name));
    }
  });

  test('refuses control characters, NUL, CR and LF, also at the end', () => {
    for (const name of ['a\0', '\0', 'a\r', 'a\n', 'alice\n', 'alice\r\n', 'a\tb', '\x7f', 'a\x1b[0m']) {
      assert.equal(isValidUserName(name), false, JSON.stringify(name));
    }
  });

  test('refuses spaces and other punctuation', () => {
    for (const name of [
      ' ',
      'a b',
      ' alice',
      'alice ',
      'a:b',
      'a*',
      'a?',
      'a%2f',
      'a"b',
      "a'b",
      'a;b',
      'a,b',
      '~a',
      'a|b',
    ]) {
      assert.equal(isValidUserName(name), false, JSON.stringify(name));
    }
  });

  test('refuses non-ASCII, even when it looks like a permitted character', () => {
    for (const name of [
      'jöhn',
      'ālice',
      '用户',
      'a\u00a0b',
      'a\u2024b' /* one dot leader */,
      'a\uff0fb' /* fullwidth / */,
      '🔑',
    ]) {
      assert.equal(isValidUserName(name), false, JSON.stringify(name));
    }
  });

  test('property: a valid name is 1-64 chars of [A-Za-z0-9._+@-], not starting with a dot', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 70 }), (name) => {
        const expected =
          name.length >= 1 && name.length <= 64 && /^[A-Za-z0-9._+@-]*$/.test(name) && !name.startsWith('.');
        assert.equal(isValidUserName(name), expected);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9._+@-]{0,70}$/), (name) => {
        const expected = name.length >= 1 && name.length <= 64 && !name.startsWith('.');
        assert.equal(isValidUserName(name), expected);
      }),
      { numRuns: 2000 },
    );
  });
});
