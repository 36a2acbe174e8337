import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DecoyRing, scramDecoy, scramSaltFor } from '../../../src/auth/decoy.js';
import { StaticAuthenticator } from '../../../src/auth/static.js';
import { saslContext } from '../../helpers/sasl-context.js';

const SECRET = Buffer.alloc(32, 1);
const names = Array.from({ length: 400 }, (_, i) => `name${i}`);

test('DecoyRing: the same item for a name every time and for every ring made with the same secret', () => {
  const items = ['a', 'b', 'c', 'd'].map((key) => [key, key] as const);
  const one = new DecoyRing(SECRET, items);
  const two = new DecoyRing(Buffer.from(SECRET), [...items].reverse());
  const other = new DecoyRing(Buffer.alloc(32, 2), items);
  assert.deepEqual(
    names.map((n) => one.pick(n)),
    names.map((n) => two.pick(n)),
  );
  assert.notDeepEqual(
    names.map((n) => one.pick(n)),
    names.map((n) => other.pick(n)),
  );
  assert.equal(new DecoyRing(SECRET, []).pick('x'), undefined);
});

test('DecoyRing: every item gets a share of names; adding an item moves few names', () => {
  const keys = ['a', 'b', 'c', 'd'];
  const ring = new DecoyRing(
    SECRET,
    keys.map((key) => [key, key] as const),
  );
  const counts = new Map<string, number>();
  for (const n of names) counts.set(ring.pick(n) ?? '', (counts.get(ring.pick(n) ?? '') ?? 0) + 1);
  for (const key of keys) assert.ok((counts.get(key) ?? 0) >= 30, `${key}: ${counts.get(key)} of 400`);
  const bigger = new DecoyRing(
    SECRET,
    [...keys, 'e'].map((key) => [key, key] as const),
  );
  const moved = names.filter((n) => bigger.pick(n) !== ring.pick(n));
  assert.ok(
    moved.every((n) => bigger.pick(n) === 'e'),
    'only names taken by the new item move',
  );
  assert.ok(moved.length < 200, `${moved.length} of 400 moved`);
});

test('scramDecoy: derived from the secret and the name only', () => {
  const a = scramDecoy(SECRET, 'zed', 4096);
  assert.deepEqual(scramDecoy(Buffer.from(SECRET), 'zed', 4096), a);
  assert.notDeepEqual(scramDecoy(SECRET, 'zee', 4096).salt, a.salt);
  assert.notDeepEqual(scramDecoy(Buffer.alloc(32, 3), 'zed', 4096).salt, a.salt);
  assert.equal(a.salt.length, 16);
});

test("StaticAuthenticator: a user's SCRAM salt is derived like an unknown name's, stable for the same secret", async () => {
  const request = (auth: StaticAuthenticator) =>
    auth.scramCredentials({ ...saslContext(auth), mechanism: 'SCRAM-SHA-256', username: 'alice' });
  const one = await request(new StaticAuthenticator({ alice: 'pw' }, { decoySecret: SECRET }));
  const two = await request(new StaticAuthenticator({ alice: 'pw' }, { decoySecret: Buffer.from(SECRET) }));
  assert.ok(one !== undefined && two !== undefined);
  assert.deepEqual(one.salt, scramSaltFor(SECRET, 'alice'));
  assert.deepEqual(two, one);
  assert.throws(() => new StaticAuthenticator({}, { decoySecret: Buffer.alloc(8) }), RangeError);
});
