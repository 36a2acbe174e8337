import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenThrottle } from '../../../src/monitor/token-throttle.js';

/** A throttle on a clock the test moves. */
function throttle(options: ConstructorParameters<typeof TokenThrottle>[0] = {}): {
  t: TokenThrottle;
  advance: (ms: number) => void;
} {
  let now = 1_000_000;
  return {
    t: new TokenThrottle(options, () => now),
    advance: (ms) => {
      now += ms;
    },
  };
}

/** Admits a request from `key`: a function to end its check, or undefined if it must wait. */
function admit(t: TokenThrottle, key: string): (() => void) | undefined {
  const admission = t.admit(key);
  return admission.kind === 'check' ? admission.done : undefined;
}

/** One whole request from `key` with a wrong token: held back, or checked and failed. */
function guess(t: TokenThrottle, key: string): 'held' | 'checked' {
  const done = admit(t, key);
  if (done === undefined) {
    t.hold(key);
    return 'held';
  }
  done();
  t.fail(key);
  return 'checked';
}

test('past its free wrong tokens, each wrong token locks its address out, twice as long each time', () => {
  const { t, advance } = throttle();
  const lockouts: number[] = [];
  for (let i = 0; i < 9; i++) {
    assert.equal(guess(t, 'a'), 'checked');
    let ms = 0;
    let done;
    while ((done = admit(t, 'a')) === undefined) {
      advance(1);
      ms += 1;
    }
    done();
    lockouts.push(ms);
  }
  assert.deepEqual(lockouts, [0, 0, 0, 250, 500, 1000, 2000, 4000, 5000]);
  assert.notEqual(admit(t, 'b'), undefined, 'another address is not concerned');
});

test('while locked out, requests wait unchecked and do not count as failures', () => {
  const { t } = throttle();
  for (let i = 0; i < 4; i++) guess(t, 'a');
  assert.deepEqual(t.admit('a'), { kind: 'wait', ms: 250 }, 'ask again when the lock-out ends');
  const before = t.failuresOf('a');
  assert.deepEqual(
    Array.from({ length: 100 }, () => guess(t, 'a')),
    Array<string>(100).fill('held'),
  );
  assert.equal(t.failuresOf('a'), before);
});

test('with no failure to spare, one request of an address is checked at a time', () => {
  const { t } = throttle({ freeTokenFailures: 2 });
  const first = admit(t, 'a');
  const second = admit(t, 'a');
  assert.ok(first !== undefined && second !== undefined, 'failures to spare: side by side');
  first();
  second();
  t.fail('a');
  t.fail('a');
  const checking = admit(t, 'a');
  assert.notEqual(checking, undefined);
  assert.deepEqual(t.admit('a'), { kind: 'busy' }, 'waits while the other is checked');
  assert.notEqual(admit(t, 'b'), undefined);
  checking?.();
  checking?.(); // twice is harmless
  assert.notEqual(admit(t, 'a'), undefined, 'the right token was not a failure: no lock-out');
});

test('failures decay: one is forgotten every tokenFailureDecayMs, and counts until wholly gone', () => {
  const { t, advance } = throttle({ tokenFailureDecayMs: 1000, tokenLockoutMs: 1 });
  for (let i = 0; i < 5; i++) t.fail('a');
  assert.equal(t.failuresOf('a'), 5);
  advance(2000);
  assert.equal(t.failuresOf('a'), 3);
  t.fail('a');
  assert.equal(admit(t, 'a'), undefined, 'four failures: locked out');
  advance(1999);
  assert.ok(Math.abs(t.failuresOf('a') - 2.001) < 1e-9);
  const done = admit(t, 'a');
  assert.notEqual(done, undefined);
  done?.();
  t.fail('a');
  assert.equal(admit(t, 'a'), undefined, 'a failure nearly decayed still counts');
  advance(10_000);
  assert.equal(t.failuresOf('a'), 0);
});

test('a right token does not clear the failures (only time does)', () => {
  const { t, advance } = throttle();
  for (let i = 0; i < 4; i++) t.fail('a');
  advance(250);
  const done = admit(t, 'a');
  assert.notEqual(done, undefined);
  done?.(); // the token was right: no fail()
  assert.equal(t.failuresOf('a'), 4 - 250 / 10_000);
  t.fail('a');
  assert.equal(admit(t, 'a'), undefined);
});

test('one log line per address per interval, with the failures and held since the last one', () => {
  const { t, advance } = throttle({ tokenFailureLogIntervalMs: 60_000, freeTokenFailures: 1000 });
  assert.deepEqual(t.fail('a'), { failures: 1, held: 0, lockoutMs: 0 });
  for (let i = 0; i < 98; i++) assert.equal(t.fail('a'), undefined);
  assert.equal(t.hold('a'), undefined);
  assert.deepEqual(t.hold('b'), { failures: 0, held: 1, lockoutMs: 0 }, 'each address has its own');
  advance(60_000);
  assert.deepEqual(t.fail('a'), { failures: 99, held: 1, lockoutMs: 0 });
  assert.equal(t.fail('a'), undefined);
});

test('the line says how long the address is locked out', () => {
  const { t } = throttle({ tokenFailureLogIntervalMs: 0, freeTokenFailures: 0 });
  assert.deepEqual(t.fail('a'), { failures: 1, held: 0, lockoutMs: 250 });
});

test('at most ten lines per interval over all addresses', () => {
  const { t, advance } = throttle({ tokenFailureLogIntervalMs: 60_000, freeTokenFailures: 1000 });
  const lines = Array.from({ length: 30 }, (_, i) => t.fail(`198.51.100.${i}`));
  assert.equal(lines.filter((l) => l !== undefined).length, 10);
  advance(60_000);
  assert.deepEqual(t.fail('198.51.100.29'), { failures: 2, held: 0, lockoutMs: 0 }, 'then the next');
});
