import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DamagedUidlistError,
  dovecotDefaultUidl,
  isValidUidl,
  parseDovecotUidlist,
} from '../../../../src/mailstore/maildir/uidl-dovecot.js';

// dovecot-uidlist as Dovecot 2.3 writes it (seen in test/interop/dovecot-migration.test.ts), as
// Dovecot 1.0 wrote it, with the P field of an earlier migration, and hostile ones.

test('version 3: uid and uidvalidity in 8 lower-case hex digits each, the base name of the file', () => {
  const list = parseDovecotUidlist(
    '3 V1796672350 N4 Ged3d5c375e0b176b324b000083ecc375\n' +
      '1 W23 :1700000001.M1P1.host\n' +
      '2 W23 S20 G0123 :1700000002.M2P1.host:2,S\n' +
      '3 :1700000003.M3P1.host,S=20\n',
  );
  assert.equal(list.uidValidity, 1_796_672_350);
  assert.deepEqual(list.records, [
    { uid: 1, base: '1700000001.M1P1.host', uidl: '000000016b170b5e' },
    { uid: 2, base: '1700000002.M2P1.host', uidl: '000000026b170b5e' },
    { uid: 3, base: '1700000003.M3P1.host,S=20', uidl: '000000036b170b5e' },
  ]);
  assert.equal(list.skipped, 0);
});

test('a P field (the UIDL an earlier migration recorded) wins over the format', () => {
  const list = parseDovecotUidlist('3 V7 N9\n5 PUID12-1099 W10 :a.b.c\n6 P :d.e.f\n');
  assert.deepEqual(
    list.records.map((r) => r.uidl),
    ['UID12-1099', dovecotDefaultUidl(6, 7)],
  );
  assert.equal(dovecotDefaultUidl(6, 7), '0000000600000007');
  assert.equal(dovecotDefaultUidl(0xfffffffe, 0xffffffff), 'fffffffeffffffff');
});

test('version 1: `uid file name` lines after `1 uidvalidity nextuid`', () => {
  const list = parseDovecotUidlist('1 1234 3\n1 1.M1.h:2,S\n2 2.M2.h\n');
  assert.deepEqual(
    list.records.map((r) => [r.base, r.uidl]),
    [
      ['1.M1.h', '00000001000004d2'],
      ['2.M2.h', '00000002000004d2'],
    ],
  );
});

test('a file name listed twice keeps its later uid, as Dovecot does', () => {
  const list = parseDovecotUidlist('3 V1 N5\n1 :x.y\n2 :z.w\n4 :x.y:2,S\n');
  assert.deepEqual(
    list.records.map((r) => [r.uid, r.base]),
    [
      [2, 'z.w'],
      [4, 'x.y'],
    ],
  );
});

test('a damaged header, an unknown version or uids out of order: the whole file is refused', () => {
  for (const text of [
    '',
    'garbage\n1 :a\n',
    '2 1 2\n1 a\n', // version 2: development versions only, refused by Dovecot 2 too
    '3 N5\n1 :a\n', // no uidvalidity
    '3 V0 N5\n1 :a\n',
    '3 Vx N5\n',
    '1 12\n1 a\n',
    '3 V1 N5\n2 :a\n2 :b\n',
    '3 V1 N5\n3 :a\n1 :b\n',
  ]) {
    assert.throws(() => parseDovecotUidlist(text), DamagedUidlistError, JSON.stringify(text));
  }
});

test('hostile lines are left out and counted: no uid, no file name, a path, a P that is no unique-id', () => {
  const p71 = 'P' + 'x'.repeat(71);
  const list = parseDovecotUidlist(
    `3 V1 N99\nx :a\n0 :b\n1 W5\n2 :../../etc/passwd\n3 ${p71} :c\n4 P\u00e9t\u00e9 :d\n4294967295 :e\n6 :good\n99999999999 :f\n`,
  );
  assert.deepEqual(
    list.records.map((r) => r.base),
    ['good'],
  );
  assert.equal(list.skipped, 8);
  assert.match(list.firstProblem ?? '', /^line 2: /);
});

test('UIDL validity: 1-70 characters in 0x21-0x7E', () => {
  assert.ok(isValidUidl('!'));
  assert.ok(isValidUidl('~'.repeat(70)));
  assert.ok(!isValidUidl(''));
  assert.ok(!isValidUidl('a b'));
  assert.ok(!isValidUidl('x'.repeat(71)));
  assert.ok(!isValidUidl('caf\u00e9'));
});
