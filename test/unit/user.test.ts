import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { canonicalUserName, isValidUserName, MAX_USER_NAME_BYTES, prepareUserName } from '../../src/user.js';

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

  test('accepts letters, marks and digits of any script, in their prepared (NFKC) form', () => {
    for (const name of [
      'jöhn',
      'ālice',
      '用户',
      'ñandú',
      'Ωμέγα',
      'иван.петров',
      'हिन्दी',
      'משה',
      '٣٤',
      'やまだ太郎',
      'yamadaタロウ',
      'ラーメン',
      '김민준',
      'li.wei王',
      'é'.repeat(32),
    ]) {
      assert.equal(isValidUserName(name), true, JSON.stringify(name));
    }
  });

  test('the 64-byte limit counts UTF-8 bytes', () => {
    assert.equal(isValidUserName('é'.repeat(32)), true);
    assert.equal(isValidUserName('é'.repeat(33)), false);
    assert.equal(isValidUserName(`a${'用'.repeat(21)}`), true);
    assert.equal(isValidUserName(`ab${'用'.repeat(21)}`), false);
  });

  test('refuses a name in another spelling than its prepared one, and gives that one', () => {
    for (const [given, prepared] of [
      ['jo\u0308hn', 'jöhn'],
      ['ﬁle', 'file'],
      ['ｊｏｈｎ', 'john'],
      ['a\u2024b', 'a.b'] /* one dot leader: a dot */,
    ] as const) {
      assert.equal(isValidUserName(given), false, JSON.stringify(given));
      assert.equal(prepareUserName(given), prepared);
      assert.equal(canonicalUserName(given), prepared);
    }
  });

  test('refuses what looks like a permitted character, or becomes a forbidden one when prepared', () => {
    for (const name of [
      'a\u00a0b' /* no-break space: a space */,
      'a\uff0fb' /* fullwidth solidus: "/" */,
      '\u2024\u2024' /* "..", prepared */,
      '．hidden' /* fullwidth full stop: ".hidden" */,
      '🔑',
      'a\u0085b' /* NEL, a C1 control */,
      'a\u200bb' /* zero width space: refused, not removed */,
      'alice\ufeff' /* BOM: refused, not removed */,
      'x\u00adz' /* soft hyphen: refused, not removed */,
      '\u0430lice' /* Cyrillic a with Latin letters */,
      'Ωmega' /* Greek with Latin */,
      'a\u0338lice' /* combining long solidus overlay */,
      'a\u20ddb' /* combining enclosing circle */,
      '\u16a0\u16a1' /* runes: a script not in the list */,
    ]) {
      assert.equal(isValidUserName(name), false, JSON.stringify(name));
      assert.equal(canonicalUserName(name), undefined, JSON.stringify(name));
    }
  });

  test('refuses bidirectional controls and right-to-left letters mixed with left-to-right ones', () => {
    for (const name of ['a\u202eb', 'a\u200fb', '\u202bmsh', 'משהa', 'a\u05d0', 'משה1', '\u0301a']) {
      assert.equal(isValidUserName(name), false, JSON.stringify(name));
      assert.equal(canonicalUserName(name), undefined, JSON.stringify(name));
    }
  });

  test('ASCII names are prepared to themselves', () => {
    for (const name of ['alice', 'a.b', 'x@example.org', '-', '@']) assert.equal(prepareUserName(name), name);
  });

  test('property: an ASCII name is valid when 1-64 chars of [A-Za-z0-9._+@-], not starting with a dot', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 70 }), (name) => {
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

  test('property: a valid name is a safe path segment, prepared, at most 64 bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 70 }), (name) => {
        if (!isValidUserName(name)) return;
        assert.ok(Buffer.byteLength(name) <= 64 && name !== '' && !name.startsWith('.'));
        // eslint-disable-next-line no-control-regex -- separators, controls and spaces
        assert.ok(!/[/\\\0-\x1f\x7f-\x9f\s]/.test(name), JSON.stringify(name));
        assert.equal(prepareUserName(name), name);
        assert.equal(name.normalize('NFC'), name);
      }),
      { numRuns: 5000 },
    );
  });
});
