import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  curNameFor,
  parseMaildirName,
  uidFor,
  withFlag,
} from '../../../../src/mailstore/maildir/filename.js';

describe('parseMaildirName', () => {
  test('a full name: base with S= and W=, info with flags', () => {
    const name = '1700000000.M12345P678Q9.host.example,S=1234,W=1260:2,RS';
    assert.deepEqual(parseMaildirName(name), {
      name,
      base: '1700000000.M12345P678Q9.host.example,S=1234,W=1260',
      flags: 'RS',
      deliveredAt: 1700000000,
      virtualSize: 1260,
    });
  });

  test('a name from new/: no info, no flags', () => {
    assert.deepEqual(parseMaildirName('1700000000.P1.host'), {
      name: '1700000000.P1.host',
      base: '1700000000.P1.host',
      flags: '',
      deliveredAt: 1700000000,
      virtualSize: undefined,
    });
  });

  test('an empty info part', () => {
    const parsed = parseMaildirName('1.2.h:2,');
    assert.equal(parsed.base, '1.2.h');
    assert.equal(parsed.flags, '');
  });

  test('an info part that is not version 2 carries no flags', () => {
    const parsed = parseMaildirName('1.2.h:1,RS');
    assert.equal(parsed.base, '1.2.h');
    assert.equal(parsed.flags, '');
  });

  test('the base ends at the first colon', () => {
    assert.equal(parseMaildirName('a:b:2,S').base, 'a');
  });

  test('deliveredAt: the leading number followed by a dot or the end', () => {
    assert.equal(parseMaildirName('1700000000').deliveredAt, 1700000000);
    assert.equal(parseMaildirName('0.x').deliveredAt, 0);
    assert.equal(parseMaildirName('1700000000x.y').deliveredAt, undefined);
    assert.equal(parseMaildirName('host.1700000000').deliveredAt, undefined);
    assert.equal(parseMaildirName('').deliveredAt, undefined);
    assert.equal(parseMaildirName('1234567890123.x').deliveredAt, undefined, 'more than 12 digits');
  });

  test('virtualSize: W= followed by a comma or the end of the base', () => {
    assert.equal(parseMaildirName('1.x,W=5').virtualSize, 5);
    assert.equal(parseMaildirName('1.x,W=5,S=4').virtualSize, 5);
    assert.equal(parseMaildirName('1.x,W=5:2,S').virtualSize, 5);
    assert.equal(parseMaildirName('1.x,W=5x').virtualSize, undefined);
    assert.equal(parseMaildirName('1.x,W=').virtualSize, undefined);
    assert.equal(parseMaildirName('1.xW=5').virtualSize, undefined, 'needs the comma before W');
    assert.equal(parseMaildirName('1.x:2,W=5').virtualSize, undefined, 'only in the base, not the info');
    assert.equal(parseMaildirName('1.x,S=5').virtualSize, undefined);
  });
});

test('parseMaildirName agrees with the regular expressions that define deliveredAt and virtualSize', () => {
  const piece = fc.constantFrom('1', '0', '9', '.', ',', 'W', '=', ':', '2', 'x', ',W=', ',S=');
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 30 }), (pieces) => {
      const name = pieces.join('');
      const base = name.split(':')[0] ?? '';
      const time = /^([0-9]{1,12})(?:\.|$)/.exec(base);
      const w = /,W=([0-9]{1,15})(?:,|$)/.exec(base);
      const parsed = parseMaildirName(name);
      assert.equal(parsed.deliveredAt, time === null ? undefined : Number(time[1]));
      assert.equal(parsed.virtualSize, w === null ? undefined : Number(w[1]));
    }),
    { numRuns: 2000 },
  );
});

describe('curNameFor', () => {
  test('adds an empty info part to a name from new/', () => {
    assert.equal(curNameFor('1700000000.P1.host'), '1700000000.P1.host:2,');
  });

  test('keeps a name that already has an info part', () => {
    assert.equal(curNameFor('1700000000.P1.host:2,S'), '1700000000.P1.host:2,S');
    assert.equal(curNameFor('1700000000.P1.host:2,'), '1700000000.P1.host:2,');
  });
});

describe('withFlag', () => {
  test('adds a flag to a name without info', () => {
    assert.equal(withFlag(parseMaildirName('b'), 'S'), 'b:2,S');
  });

  test('keeps the flags sorted', () => {
    assert.equal(withFlag(parseMaildirName('b:2,S'), 'R'), 'b:2,RS');
    assert.equal(withFlag(parseMaildirName('b:2,FS'), 'D'), 'b:2,DFS');
    assert.equal(withFlag(parseMaildirName('b:2,DF'), 'T'), 'b:2,DFT');
    assert.equal(withFlag(parseMaildirName('b:2,DS'), 'P'), 'b:2,DPS');
  });

  test('is idempotent: a flag already set returns the same name', () => {
    assert.equal(withFlag(parseMaildirName('b:2,RS'), 'S'), 'b:2,RS');
    const once = withFlag(parseMaildirName('b:2,R'), 'S');
    assert.equal(withFlag(parseMaildirName(once), 'S'), once);
  });

  test('keeps the base, including S= and W=', () => {
    assert.equal(withFlag(parseMaildirName('1.x,S=4,W=5:2,'), 'S'), '1.x,S=4,W=5:2,S');
  });

  test('property: flags end up sorted, unique, and including the new one', () => {
    const letters = ['D', 'F', 'P', 'R', 'S', 'T'];
    const flagSet = fc.uniqueArray(fc.constantFrom(...letters), { maxLength: 6 });
    fc.assert(
      fc.property(flagSet, fc.constantFrom(...letters), (flags, flag) => {
        const sorted = [...flags].sort().join('');
        const out = withFlag(parseMaildirName(`base:2,${sorted}`), flag);
        const expected = [...new Set([...flags, flag])].sort().join('');
        assert.equal(out, `base:2,${expected}`);
      }),
    );
  });
});

describe('uidFor', () => {
  test('a valid base is its own UIDL', () => {
    for (const base of ['1700000000.M1P2.host', 'a', '!', 'x'.repeat(70), '1.x,S=4,W=5', 'a~b']) {
      assert.equal(uidFor(base), base);
    }
  });

  // Expected digests computed with `printf '%s' BASE | openssl dgst -sha256 -binary | base64 | tr '+/' '-_'`,
  // first 40 characters. The UIDL must never change for a message, across versions too.
  test('an unusable base becomes ~ and 40 characters of its SHA-256', () => {
    assert.equal(uidFor('has space'), '~R7XDb8CwF7pXbxD5iNDLy8eCVtq13g5GiZgImOfH');
    assert.equal(uidFor('~tilde'), '~pjTyYBJHUIAWY0i5JtrEoALQP4QOJSilPCu6-OHB');
    assert.equal(uidFor('x'.repeat(71)), '~h6Hkwckre3p8RkM9eA3mzBn57zT9uHLIdf1jY6sj');
    assert.equal(uidFor(''), '~47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hS');
  });

  test('non-printable, non-ASCII and overlong bases are digested', () => {
    for (const base of ['a\tb', 'a\x7f', 'caf\u00e9', 'a\0', 'x'.repeat(71), 'x'.repeat(500), '~', ' ']) {
      assert.match(uidFor(base), /^~[A-Za-z0-9_-]{40}$/, JSON.stringify(base));
    }
  });

  test('deterministic', () => {
    assert.equal(uidFor('has space'), uidFor('has space'));
    assert.equal(uidFor('1.2.h'), uidFor('1.2.h'));
  });

  test('property: every result is 1-70 characters in 0x21-0x7E (RFC 1939 section 7)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (base) => {
        assert.match(uidFor(base), /^[\x21-\x7e]{1,70}$/);
      }),
      { numRuns: 2000 },
    );
  });

  test('property: different bases give different UIDLs', () => {
    const base = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ maxLength: 80 }));
    fc.assert(
      fc.property(base, base, (a, b) => {
        fc.pre(a !== b);
        assert.notEqual(uidFor(a), uidFor(b));
      }),
      { numRuns: 2000 },
    );
    // A digest can never be mistaken for a valid base: a valid base never starts with '~'.
    assert.notEqual(uidFor('~R7XDb8CwF7pXbxD5iNDLy8eCVtq13g5GiZgImOfH'), uidFor('has space'));
  });
});
