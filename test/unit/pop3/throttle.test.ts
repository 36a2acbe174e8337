import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_LIMITS } from '../../../src/pop3/limits.js';
import { addressKey, LoginThrottle, userKey, type ThrottleLimits } from '../../../src/pop3/throttle.js';

const LIMITS: ThrottleLimits = {
  authFailureDelayMs: 100,
  authThrottleMaxDelayMs: 1600,
  authThrottleMaxUserDelayMs: 400,
  authThrottleWindowMs: 60_000,
  authThrottleMaxEntries: 1000,
};

/** A throttle on a clock the test moves by hand. */
function throttleWithClock(): { throttle: LoginThrottle; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { throttle: new LoginThrottle({ now: () => clock.now }), clock };
}

describe('LoginThrottle', () => {
  test('failures from one address double the delay up to the address cap', () => {
    const { throttle } = throttleWithClock();
    const delays = Array.from({ length: 8 }, (_, i) => throttle.fail('192.0.2.7', `user${i}`, LIMITS));
    assert.deepEqual(
      delays.map((v) => v.delayMs),
      [100, 200, 400, 800, 1600, 1600, 1600, 1600],
    );
    assert.deepEqual(
      delays.map((v) => v.addressFailures),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    // The first failure gets the plain authFailureDelayMs: not throttled; every later one is.
    assert.deepEqual(
      delays.map((v) => v.isThrottled),
      [false, true, true, true, true, true, true, true],
    );
    // The next attempt from there, even with the right password, waits the address's penalty.
    assert.deepEqual(throttle.check('192.0.2.7', 'someone', LIMITS), {
      addressFailures: 8,
      userFailures: 0,
      delayMs: 1600,
      isThrottled: true,
    });
  });

  test('failures for one user name from many addresses stop at the small user cap', () => {
    const { throttle } = throttleWithClock();
    const delays = Array.from({ length: 6 }, (_, i) => throttle.fail(`198.51.100.${i}`, 'alice', LIMITS));
    assert.deepEqual(
      delays.map((v) => [v.delayMs, v.userFailures, v.addressFailures]),
      [
        [100, 1, 1],
        [200, 2, 1],
        [400, 3, 1],
        [400, 4, 1],
        [400, 5, 1],
        [400, 6, 1],
      ],
    );
    // alice, from an address of her own, waits at most the user cap, however long the attack.
    const fromHome = throttle.check('203.0.113.9', 'alice', LIMITS);
    assert.deepEqual(fromHome, { addressFailures: 0, userFailures: 6, delayMs: 400, isThrottled: true });
    // Someone else from a clean address is not slowed at all.
    assert.deepEqual(throttle.check('203.0.113.9', 'bob', LIMITS), {
      addressFailures: 0,
      userFailures: 0,
      delayMs: 0,
      isThrottled: false,
    });
  });

  test('a success forgets the user count, not the address count', () => {
    const { throttle } = throttleWithClock();
    for (let i = 0; i < 3; i++) throttle.fail('192.0.2.1', 'bob', LIMITS);
    throttle.fail('192.0.2.1', 'alice', LIMITS);
    throttle.succeed('Alice');
    const after = throttle.check('192.0.2.1', 'alice', LIMITS);
    assert.equal(after.userFailures, 0);
    assert.equal(after.addressFailures, 4, 'the guesses from that address still count');
    assert.equal(after.delayMs, 800);
    assert.equal(throttle.check('192.0.2.1', 'bob', LIMITS).userFailures, 3);
    assert.equal(throttle.fail('192.0.2.1', 'bob', LIMITS).delayMs, 1600, 'counting goes on');
  });

  test('counts are forgotten a window after the last failure, not the first', () => {
    const { throttle, clock } = throttleWithClock();
    throttle.fail('192.0.2.1', 'alice', LIMITS);
    clock.now += 59_999;
    throttle.fail('192.0.2.1', 'alice', LIMITS);
    clock.now += 59_999;
    assert.equal(throttle.check('192.0.2.1', 'alice', LIMITS).addressFailures, 2);
    assert.equal(throttle.trackedAddresses, 1);
    clock.now += 1;
    assert.deepEqual(throttle.check('192.0.2.1', 'alice', LIMITS), {
      addressFailures: 0,
      userFailures: 0,
      delayMs: 0,
      isThrottled: false,
    });
    assert.equal(throttle.trackedAddresses, 0, 'expired entries are dropped, not kept');
    assert.equal(throttle.trackedUsers, 0);
  });

  test('a snapshot restored in another throttle keeps counts and ages: entries expire there when they would here', () => {
    const { throttle, clock } = throttleWithClock();
    throttle.fail('192.0.2.1', 'alice', LIMITS);
    clock.now += 30_000;
    throttle.fail('192.0.2.2', 'Bob', LIMITS);
    throttle.fail('192.0.2.2', 'Bob', LIMITS);
    const copy = throttleWithClock();
    copy.clock.now = 1_000_000;
    copy.throttle.fail('198.51.100.1', 'zed', LIMITS); // replaced: the snapshot is the whole truth
    copy.throttle.restore(throttle.snapshot());
    assert.equal(copy.throttle.check('198.51.100.1', 'zed', LIMITS).addressFailures, 0);
    const bob = copy.throttle.check('192.0.2.2', 'bob', LIMITS);
    assert.deepEqual([bob.addressFailures, bob.userFailures], [2, 2]);
    copy.clock.now += 29_999;
    assert.equal(copy.throttle.check('192.0.2.1', 'alice', LIMITS).addressFailures, 1);
    copy.clock.now += 1;
    assert.equal(copy.throttle.check('192.0.2.1', 'alice', LIMITS).addressFailures, 0, 'aged out');
    assert.equal(copy.throttle.check('192.0.2.2', 'bob', LIMITS).addressFailures, 2);
  });

  test('stale entries are dropped whenever the table is used, whatever key is asked for', () => {
    const { throttle, clock } = throttleWithClock();
    for (let i = 0; i < 50; i++) throttle.fail(`192.0.2.${i}`, `u${i}`, LIMITS);
    clock.now += 30_000;
    throttle.fail('198.51.100.1', 'fresh', LIMITS);
    clock.now += 30_000;
    throttle.check('203.0.113.1', undefined, LIMITS);
    assert.equal(throttle.trackedAddresses, 1);
    assert.equal(throttle.check('198.51.100.1', 'fresh', LIMITS).addressFailures, 1);
  });

  test('memory is bounded: past authThrottleMaxEntries the stalest entry goes', () => {
    const { throttle, clock } = throttleWithClock();
    const limits = { ...LIMITS, authThrottleMaxEntries: 3 };
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) {
      throttle.fail(ip, undefined, limits);
      clock.now += 1;
    }
    throttle.fail('192.0.2.1', undefined, limits); // now the freshest
    throttle.fail('192.0.2.4', undefined, limits); // evicts 192.0.2.2
    assert.equal(throttle.trackedAddresses, 3);
    assert.equal(throttle.check('192.0.2.1', undefined, limits).addressFailures, 2);
    assert.equal(throttle.check('192.0.2.2', undefined, limits).addressFailures, 0);
    assert.equal(throttle.check('192.0.2.3', undefined, limits).addressFailures, 1);
    // A flood of fresh addresses never grows the table past the limit.
    for (let i = 0; i < 10_000; i++) throttle.fail(`10.${i >> 8}.${i & 255}.1`, `x${i}`, limits);
    assert.equal(throttle.trackedAddresses, 3);
    assert.equal(throttle.trackedUsers, 3);
  });

  test('no name (a SASL exchange that broke off) counts against the address only', () => {
    const { throttle } = throttleWithClock();
    const verdict = throttle.fail('192.0.2.1', undefined, LIMITS);
    assert.equal(verdict.userFailures, 0);
    assert.equal(throttle.trackedUsers, 0);
    assert.equal(throttle.trackedAddresses, 1);
  });

  test('authFailureDelayMs 0 turns the throttle off; a cap of 0 leaves the plain failure delay', () => {
    const { throttle } = throttleWithClock();
    const off = { ...LIMITS, authFailureDelayMs: 0 };
    for (let i = 0; i < 60; i++) assert.equal(throttle.fail('192.0.2.1', 'alice', off).delayMs, 0);
    assert.equal(throttle.check('192.0.2.1', 'alice', off).isThrottled, false);
    const capped = { ...LIMITS, authThrottleMaxDelayMs: 0, authThrottleMaxUserDelayMs: 0 };
    assert.equal(throttle.fail('192.0.2.1', 'alice', capped).delayMs, 100);
    assert.equal(throttle.check('192.0.2.1', 'alice', capped).delayMs, 0);
  });

  test('a huge failure count neither overflows nor loses the cap', () => {
    const { throttle } = throttleWithClock();
    let last = 0;
    for (let i = 0; i < 2000; i++) last = throttle.fail('192.0.2.1', undefined, DEFAULT_LIMITS).delayMs;
    assert.equal(last, DEFAULT_LIMITS.authThrottleMaxDelayMs);
  });

  test('limits are read at each call, so a change applies at once', () => {
    const { throttle, clock } = throttleWithClock();
    for (let i = 0; i < 5; i++) throttle.fail('192.0.2.1', undefined, LIMITS);
    clock.now += 10;
    assert.equal(throttle.check('192.0.2.1', undefined, LIMITS).delayMs, 1600);
    assert.equal(
      throttle.check('192.0.2.1', undefined, { ...LIMITS, authThrottleMaxDelayMs: 500 }).delayMs,
      500,
    );
    assert.equal(throttle.check('192.0.2.1', undefined, { ...LIMITS, authThrottleWindowMs: 10 }).delayMs, 0);
  });

  test('user names are counted case-insensitively', () => {
    const { throttle } = throttleWithClock();
    throttle.fail('192.0.2.1', 'Alice', LIMITS);
    assert.equal(throttle.fail('192.0.2.2', 'ALICE', LIMITS).userFailures, 2);
  });

  test('the default clock is monotonic and needs no timers', () => {
    const throttle = new LoginThrottle();
    assert.equal(throttle.fail('192.0.2.1', 'alice', DEFAULT_LIMITS).delayMs, 1000);
    assert.equal(throttle.fail('192.0.2.1', 'alice', DEFAULT_LIMITS).delayMs, 2000);
  });
});

describe('addressKey', () => {
  test('IPv4 stays as it is, also when IPv4-mapped', () => {
    assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('::FFFF:127.0.0.2'), '127.0.0.2');
  });

  test('IPv6 addresses count by their /64', () => {
    const key = '2001:db8:1:2::/64';
    for (const address of [
      '2001:db8:1:2::1',
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
      '2001:0db8:0001:0002:0:0:0:9',
      '2001:DB8:1:2::abcd%eth0',
      '2001:db8:1:2::192.0.2.1',
    ]) {
      assert.equal(addressKey(address), key, address);
    }
    assert.notEqual(addressKey('2001:db8:1:3::1'), key);
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('2001:db8::'), '2001:db8:0:0::/64');
  });

  test('anything else is its own key', () => {
    assert.equal(addressKey('unknown'), 'unknown');
    assert.equal(addressKey(''), '');
  });
});

describe('userKey', () => {
  test('short names are folded to lower case; long ones are digested into a short key', () => {
    assert.equal(userKey('Alice@Example.ORG'), 'alice@example.org');
    const long = 'x'.repeat(5000);
    const key = userKey(long);
    assert.ok(key.length < 64, key);
    assert.equal(userKey(long.toUpperCase()), key);
    assert.notEqual(userKey(`${long}y`), key);
  });
});
