import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import type { TestContext } from 'node:test';

/**
 * Counts the hashing work node:crypto does while `during(fn)` runs: every createHash, createHmac,
 * pbkdf2 and pbkdf2Sync call, as `function:algorithm`. Named imports of node:crypto see the
 * counting wrappers too (syncBuiltinESMExports). Work, not time: no timing assertion.
 */
export interface CryptoCounter {
  during<T>(fn: () => Promise<T>): Promise<{ readonly result: T; readonly calls: readonly string[] }>;
}

export function countCrypto(t: TestContext): CryptoCounter {
  let calls: string[] | undefined;
  const record = (name: string, algorithm: unknown): void => {
    calls?.push(`${name}:${String(algorithm)}`);
  };
  const createHash = crypto.createHash.bind(crypto);
  const createHmac = crypto.createHmac.bind(crypto);
  const pbkdf2 = crypto.pbkdf2.bind(crypto);
  const pbkdf2Sync = crypto.pbkdf2Sync.bind(crypto);
  t.mock.method(crypto, 'createHash', (...args: Parameters<typeof crypto.createHash>) => {
    record('createHash', args[0]);
    return createHash(...args);
  });
  t.mock.method(crypto, 'createHmac', (...args: Parameters<typeof crypto.createHmac>) => {
    record('createHmac', args[0]);
    return createHmac(...args);
  });
  t.mock.method(crypto, 'pbkdf2', (...args: Parameters<typeof crypto.pbkdf2>) => {
    record('pbkdf2', `${args[4]}x${args[2]}`);
    pbkdf2(...args);
  });
  t.mock.method(crypto, 'pbkdf2Sync', (...args: Parameters<typeof crypto.pbkdf2Sync>) => {
    record('pbkdf2Sync', `${args[4]}x${args[2]}`);
    return pbkdf2Sync(...args);
  });
  syncBuiltinESMExports();
  t.after(() => {
    t.mock.restoreAll();
    syncBuiltinESMExports();
  });
  return {
    async during(fn) {
      calls = [];
      try {
        const result = await fn();
        return { result, calls };
      } finally {
        calls = undefined;
      }
    },
  };
}
