import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasControlCharacter } from '../../src/text.js';

test('hasControlCharacter finds every C0 character and DEL, and nothing else below U+0100', () => {
  for (let code = 0; code < 0x100; code++) {
    const char = String.fromCharCode(code);
    const isControl = code < 0x20 || code === 0x7f;
    assert.equal(hasControlCharacter(`a${char}b`), isControl, `U+${code.toString(16).padStart(4, '0')}`);
    assert.equal(hasControlCharacter(`a${char}b`, { isTabAllowed: true }), isControl && code !== 0x09);
  }
});

test('hasControlCharacter looks at every position, and an empty text has none', () => {
  assert.equal(hasControlCharacter(''), false);
  assert.equal(hasControlCharacter('\0abc'), true);
  assert.equal(hasControlCharacter('abc\x7f'), true);
  assert.equal(hasControlCharacter('pass word\twith tab', { isTabAllowed: true }), false);
  assert.equal(hasControlCharacter('pass word\twith tab'), true);
  assert.equal(hasControlCharacter('é ü \u2028 \u0085'), false);
});
