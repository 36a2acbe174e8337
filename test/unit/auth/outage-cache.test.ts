import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { OutageCache, USERDB_CACHE_MAX_ENTRIES } from '../../../src/auth/userdb/outage-cache.js';

test('the outage cache answers for the password last accepted, within its TTL, for its newest names', (t) => {
  mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  t.after(() => {
    mock.timers.reset();
  });
  const cache = new OutageCache(60_000, 2);
  assert.equal(cache.check('alice', 'pw'), 'absent');
  cache.remember('alice', 'pw');
  assert.equal(cache.check('alice', 'pw'), 'match');
  assert.equal(cache.check('alice', 'pw '), 'mismatch');
  cache.forgetIfKept('alice', 'other');
  assert.equal(cache.check('alice', 'pw'), 'match', 'another password refused: the kept one stays');
  cache.forgetIfKept('alice', 'pw');
  assert.equal(cache.check('alice', 'pw'), 'absent', 'the kept password refused by the database: forgotten');
  cache.remember('alice', 'pw');
  cache.remember('bob', 'pw');
  cache.remember('carol', 'pw');
  assert.equal(cache.size, 2, 'bounded');
  assert.equal(cache.check('alice', 'pw'), 'absent', 'the least recently verified went first');
  mock.timers.tick(60_000);
  assert.equal(cache.check('bob', 'pw'), 'absent', 'expired');
  assert.equal(USERDB_CACHE_MAX_ENTRIES, 100_000);
});

test('cacheTtlMs 0 keeps nothing', () => {
  const cache = new OutageCache(0);
  cache.remember('alice', 'pw');
  assert.equal(cache.size, 0);
  assert.equal(cache.check('alice', 'pw'), 'absent');
});
