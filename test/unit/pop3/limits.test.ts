import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../../src/errors.js';
import { DEFAULT_LIMITS, resolveLimits, type Pop3Limits } from '../../../src/pop3/limits.js';

/** Asserts that `fn` throws a ConfigError whose message names `option`. */
function assertRejects(fn: () => unknown, option: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.ok(error.message.includes(option), `"${error.message}" should name ${option}`);
    return true;
  });
}

/** Passes values the type system would refuse, as a config file or JavaScript caller could. */
const resolveUntyped = (given: Record<string, unknown>): Pop3Limits => resolveLimits(given);

// Written out by hand from the README's limits table, not copied from DEFAULT_LIMITS.
const DEFAULTS: Pop3Limits = {
  maxCommandBytes: 1024,
  maxSaslLineBytes: 8192,
  maxPasswordBytes: 1024,
  maxProtocolErrors: 10,
  authFailureDelayMs: 1000,
  maxAuthFailures: 3,
  maxConnections: 1000,
  maxConnectionsPerIp: 20,
  idleTimeoutMs: 600_000,
  loginTimeoutMs: 60_000,
  writeStallTimeoutMs: 60_000,
  transferChunkBytes: 65_536,
  authThrottleMaxDelayMs: 30_000,
  authThrottleMaxUserDelayMs: 4000,
  authThrottleWindowMs: 900_000,
  authThrottleMaxEntries: 10_000,
  authCacheTtlMs: 3_600_000,
  authCacheMaxEntries: 10_000,
  proxyHeaderTimeoutMs: 3000,
};

// [option, smallest accepted, largest accepted (undefined: no maximum)]
const RANGES: readonly [keyof Pop3Limits, number, number | undefined][] = [
  ['maxCommandBytes', 255, 65_536], // RFC 2449 section 4: at least 255 octets
  ['maxSaslLineBytes', 512, 65_536],
  ['maxPasswordBytes', 64, 65_536], // NIST SP 800-63B: at least 64 characters
  ['maxProtocolErrors', 1, undefined],
  ['authFailureDelayMs', 0, undefined],
  ['maxAuthFailures', 1, undefined],
  ['maxConnections', 1, undefined],
  ['maxConnectionsPerIp', 1, undefined],
  ['idleTimeoutMs', 600_000, undefined], // RFC 1939 section 3: at least 10 minutes
  ['loginTimeoutMs', 1, undefined],
  ['writeStallTimeoutMs', 1, undefined],
  ['transferChunkBytes', 512, 1_048_576],
  ['authThrottleMaxDelayMs', 0, undefined],
  ['authThrottleMaxUserDelayMs', 0, undefined],
  ['authThrottleWindowMs', 1, undefined],
  ['authThrottleMaxEntries', 1, 1_000_000],
  ['authCacheTtlMs', 1, 86_400_000],
  ['authCacheMaxEntries', 0, 1_000_000], // 0: no cache
  ['proxyHeaderTimeoutMs', 1, undefined],
];

describe('resolveLimits', () => {
  test('defaults', () => {
    assert.deepEqual(resolveLimits(), DEFAULTS);
    assert.deepEqual(resolveLimits({}), DEFAULTS);
    assert.deepEqual(DEFAULT_LIMITS, DEFAULTS);
  });

  test('every option is covered by the range table', () => {
    assert.deepEqual(RANGES.map(([key]) => key).sort(), Object.keys(DEFAULTS).sort());
  });

  test('a given value replaces only its own default', () => {
    assert.deepEqual(resolveLimits({ maxConnections: 5, idleTimeoutMs: 900_000 }), {
      ...DEFAULTS,
      maxConnections: 5,
      idleTimeoutMs: 900_000,
    });
  });

  test('an undefined value keeps the default', () => {
    assert.deepEqual(resolveUntyped({ maxCommandBytes: undefined }), DEFAULTS);
  });

  test('does not modify the defaults', () => {
    resolveLimits({ maxConnections: 7 });
    assert.equal(DEFAULT_LIMITS.maxConnections, 1000);
  });

  for (const [key, min, max] of RANGES) {
    describe(key, () => {
      test(`accepts the minimum ${min}`, () => {
        assert.equal(resolveLimits({ [key]: min })[key], min);
      });

      test(`rejects ${min - 1}, below the minimum`, () => {
        assertRejects(() => resolveLimits({ [key]: min - 1 }), key);
      });

      if (max === undefined) {
        test('accepts a large value', () => {
          assert.equal(resolveLimits({ [key]: 86_400_000 })[key], 86_400_000);
        });
      } else {
        test(`accepts the maximum ${max} and rejects ${max + 1}`, () => {
          assert.equal(resolveLimits({ [key]: max })[key], max);
          assertRejects(() => resolveLimits({ [key]: max + 1 }), key);
        });
      }

      test('rejects non-integers and non-numbers', () => {
        for (const bad of [
          min + 0.5,
          Number.NaN,
          Number.POSITIVE_INFINITY,
          `${min}`,
          null,
          true,
          [min],
          {},
        ]) {
          assertRejects(() => resolveUntyped({ [key]: bad }), key);
        }
      });
    });
  }

  test('idleTimeoutMs below ten minutes is refused (RFC 1939)', () => {
    assertRejects(() => resolveLimits({ idleTimeoutMs: 599_999 }), 'idleTimeoutMs');
    assertRejects(() => resolveLimits({ idleTimeoutMs: 60_000 }), 'idleTimeoutMs');
  });

  test('maxCommandBytes below 255 is refused (RFC 2449)', () => {
    assertRejects(() => resolveLimits({ maxCommandBytes: 254 }), 'maxCommandBytes');
    assertRejects(() => resolveLimits({ maxCommandBytes: 0 }), 'maxCommandBytes');
  });

  test('negative values are refused', () => {
    assertRejects(() => resolveLimits({ authFailureDelayMs: -1 }), 'authFailureDelayMs');
  });

  test('unknown keys are refused, by name', () => {
    assertRejects(() => resolveUntyped({ maxLineBytes: 100 }), 'maxLineBytes');
    assertRejects(() => resolveUntyped({ MaxCommandBytes: 1024 }), 'MaxCommandBytes');
  });

  test('names inherited from Object.prototype are unknown keys too', () => {
    for (const key of ['toString', 'constructor', 'hasOwnProperty', '__proto__']) {
      const given: Record<string, unknown> = JSON.parse(`{"${key}": 1000}`) as Record<string, unknown>;
      assertRejects(() => resolveUntyped(given), key);
    }
  });
});
