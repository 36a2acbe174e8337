// Bytes per user over the last 24 hours, on a clock the test moves: the order of the top users, the
// hours forgotten, the memory bound, and the helpers that sum and sort the figures of several processes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_USERS_REMEMBERED, sumUserBytes, topOf, UserTraffic } from '../../src/pop3/user-traffic.js';

const HOUR = 3_600_000;

/** A UserTraffic on a clock the test moves; it starts mid-hour. */
function traffic(): { traffic: UserTraffic; advance: (ms: number) => void } {
  let now = 1000 * HOUR + HOUR / 2;
  return {
    traffic: new UserTraffic(() => now),
    advance: (ms) => {
      now += ms;
    },
  };
}

test('top: most bytes first, the bytes of a user summed, ties by name', () => {
  const { traffic: t } = traffic();
  t.add('carol', 100);
  t.add('bob', 300);
  t.add('alice', 100);
  t.add('carol', 50);
  t.add('dave', 300);
  assert.deepEqual(t.top(10), [
    ['bob', 300],
    ['dave', 300],
    ['carol', 150],
    ['alice', 100],
  ]);
  assert.deepEqual(t.top(2), [
    ['bob', 300],
    ['dave', 300],
  ]);
});

test('bytes of 0 or less are not counted (a session that sent nothing is not a user of the top)', () => {
  const { traffic: t } = traffic();
  t.add('alice', 0);
  t.add('bob', -5);
  t.add('carol', 1);
  assert.deepEqual(t.top(10), [['carol', 1]]);
});

test('sessions that ended 23 hours ago still count; those of 25 hours ago do not', () => {
  const { traffic: t, advance } = traffic();
  t.add('old', 500);
  advance(2 * HOUR);
  t.add('recent', 70);
  t.add('old', 5);
  advance(1 * HOUR);
  // Summed over the hours.
  assert.deepEqual(t.top(10), [
    ['old', 505],
    ['recent', 70],
  ]);
  advance(20 * HOUR);
  // 23 hours after the first two, 21 after the others.
  assert.deepEqual(t.top(10), [
    ['old', 505],
    ['recent', 70],
  ]);
  advance(2 * HOUR);
  // 25 hours after the 500 bytes: gone; the 5 bytes of 23 hours ago stay.
  assert.deepEqual(t.top(10), [
    ['recent', 70],
    ['old', 5],
  ]);
  advance(48 * HOUR);
  assert.deepEqual(t.top(10), []);
});

test('past MAX_USERS_REMEMBERED users, the biggest are kept and memory stays bounded', () => {
  const { traffic: t, advance } = traffic();
  // A few big users first, then many small ones: the big ones must survive every halving.
  for (let i = 0; i < 5; i++) t.add(`big${String(i)}`, 1_000_000 + i);
  for (let i = 0; i < 3 * MAX_USERS_REMEMBERED; i++) t.add(`small${String(i)}`, 1 + (i % 7));
  const top = t.top(Number.MAX_SAFE_INTEGER);
  assert.ok(top.length <= MAX_USERS_REMEMBERED, String(top.length));
  assert.deepEqual(
    top.slice(0, 5).map(([user]) => user),
    ['big4', 'big3', 'big2', 'big1', 'big0'],
  );
  // And over the past hours too: a new hour in every step, many users in each.
  for (let hour = 0; hour < 4; hour++) {
    advance(HOUR);
    for (let i = 0; i < MAX_USERS_REMEMBERED; i++) t.add(`h${String(hour)}-${String(i)}`, 1);
  }
  const later = t.top(Number.MAX_SAFE_INTEGER);
  assert.ok(later.length <= 2 * MAX_USERS_REMEMBERED, String(later.length));
  assert.equal(later[0]?.[0], 'big4');
});

test('topOf sorts by bytes then name and keeps n; sumUserBytes sums the lists of several processes', () => {
  assert.deepEqual(
    topOf(
      [
        ['b', 5],
        ['a', 5],
        ['c', 9],
        ['d', 1],
      ],
      3,
    ),
    [
      ['c', 9],
      ['a', 5],
      ['b', 5],
    ],
  );
  const sum = sumUserBytes([
    [
      ['alice', 10],
      ['bob', 1],
    ],
    [['alice', 5]],
    [],
    new Map([['carol', 2]]),
  ]);
  assert.deepEqual(
    [...sum].sort(),
    [
      ['alice', 15],
      ['bob', 1],
      ['carol', 2],
    ].sort(),
  );
});
