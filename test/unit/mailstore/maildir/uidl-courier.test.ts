import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  courierFileNameUidl,
  DamagedSizelistError,
  parseCourierSizelist,
} from '../../../../src/mailstore/maildir/uidl-courier.js';

// courierpop3dsizelist fixtures. The first ones are what Debian's courier-pop 1.0.16 courierpop3d
// wrote, and the UIDLs it served for them (run by hand: the package conflicts with dovecot-pop3d,
// which the Dovecot migration test needs, so CI cannot install both).

const uidls = (text: string): [string, string][] =>
  parseCourierSizelist(text).records.map((r) => [r.base, r.uidl]);

test('version 3, as courierpop3d 1.0.16 writes it: UID<uid>-<uidvalidity>', () => {
  const text =
    '/3 3 1796673584\n' +
    '1700000001.M1P1.host:2, 17 1:1796673584:0\n' +
    '1700000002.M2P1.ho+st:2,S 18 2:1796673584:0\n';
  assert.deepEqual(uidls(text), [
    ['1700000001.M1P1.host', 'UID1-1796673584'],
    ['1700000002.M2P1.ho+st', 'UID2-1796673584'],
  ]);
  assert.equal(parseCourierSizelist(text).version, 3);
});

test('uidvalidity 0: UID<uid>; uid 0: the file name, +XX for what may not be in a UIDL (served as such by 1.0.16)', () => {
  const text = '/2 5 0\n1700000001.M1P1.host:2,S 17 3:0\n1700000002.M2P1.ho+st:2, 18 0:0\n';
  assert.deepEqual(uidls(text), [
    ['1700000001.M1P1.host', 'UID3'],
    ['1700000002.M2P1.ho+st', '1700000002.M2P1.ho+2Bst'],
  ]);
  assert.equal(courierFileNameUidl('a b"c\'d+\u00e9'), 'a+20b+22c+27d+2B+C3+A9');
});

test('a file name with spaces: the size and the uid are the last two fields', () => {
  assert.deepEqual(uidls('/3 9 77\nname with spaces:2, 10 8:77:1\n'), [['name with spaces', 'UID8-77']]);
});

test('the oldest form, without a header: `name size` lines served by file name', () => {
  assert.deepEqual(uidls('1000.M1.h:2,S 120\n1001.M2.h 99\n'), [
    ['1000.M1.h', '1000.M1.h'],
    ['1001.M2.h', '1001.M2.h'],
  ]);
  assert.equal(parseCourierSizelist('1000.M1.h 1\n').version, 0);
});

test('a header courier-pop3d would ignore: the whole list is refused', () => {
  for (const text of ['/1 5 7\na 1 1:7\n', '/3\n', '/3 x 5\n', '/4 1 1\n', '/3 1 2 3\n', '/\n']) {
    assert.throws(() => parseCourierSizelist(text), DamagedSizelistError, JSON.stringify(text));
  }
});

test('hostile lines are left out and counted', () => {
  const long = '\u00e9'.repeat(20); // 40 bytes, 120 characters once encoded: over 70
  const list = parseCourierSizelist(
    `/3 9 7\nnospace\nname x 1:7:0\nname 1 1-7\n../etc/passwd 1 2:7:0\n${long} 1 0:0:0\nname 1 1:2:3:4\nok 1 5:7:0\n`,
  );
  assert.deepEqual(
    list.records.map((r) => r.base),
    ['ok'],
  );
  assert.equal(list.skipped, 6);
});
