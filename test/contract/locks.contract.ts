/**
 * The MaildropLocks contract (src/mailstore/locks.ts), run against every implementation: a lock
 * file per maildir, locks within one process, and any lock shared by several machines to come.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { Pop3Error, RespCode } from '../../src/errors.js';
import {
  canBeLost,
  isFenced,
  type MaildropKey,
  type MaildropLease,
  type MaildropLocks,
} from '../../src/mailstore/locks.js';

export interface LocksFixture {
  /** Two independent lock sets over the same maildrops: two processes, or two machines, where the implementation allows it. */
  readonly locks: MaildropLocks;
  readonly other: MaildropLocks;
  /** The key of a maildrop named `name`, made ready for locking (a folder for file locks). */
  readonly keyOf: (name: string) => Promise<MaildropKey>;
  /**
   * Takes the maildrop from its holder as if the holder had died and its lock had been broken as
   * stale, then holds it for another session. Undefined when the implementation cannot be made to
   * do so from a test.
   */
  readonly steal?: (key: MaildropKey) => Promise<void>;
  /**
   * Leaves the maildrop held by a holder that has died: a lock or lease nobody refreshes any more
   * (for a lock file, another host's with an old mtime; for a lease, one whose refresh stopped).
   * Undefined where holders cannot die apart from the test's process.
   */
  readonly abandon?: (key: MaildropKey) => Promise<void>;
  /** The TTL of the locks, for bounded waits (default 30 s). */
  readonly ttlMs?: number;
}

export type MakeLocksFixture = (t: TestContext) => Promise<LocksFixture>;

function isCoded(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof Pop3Error, `expected a Pop3Error, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  };
}

async function hold(t: TestContext, locks: MaildropLocks, key: MaildropKey): Promise<MaildropLease> {
  const lease = await locks.acquire(key);
  t.after(() => lease.release());
  return lease;
}

export function describeMaildropLocks(name: string, makeFixture: MakeLocksFixture, canSteal: boolean): void {
  describe(`MaildropLocks contract: ${name}`, () => {
    test('a held maildrop is refused with IN-USE, from the same lock set and from the other', async (t) => {
      const { locks, other, keyOf } = await makeFixture(t);
      const key = await keyOf('alice');
      await hold(t, locks, key);
      await assert.rejects(locks.acquire(key), isCoded(RespCode.inUse));
      await assert.rejects(other.acquire(key), isCoded(RespCode.inUse));
    });

    test('after release the maildrop can be taken again, by either lock set', async (t) => {
      const { locks, other, keyOf } = await makeFixture(t);
      const key = await keyOf('alice');
      await (await locks.acquire(key)).release();
      await (await other.acquire(key)).release();
      await hold(t, locks, key);
    });

    test("one maildrop's lock does not block another", async (t) => {
      const { locks, other, keyOf } = await makeFixture(t);
      await hold(t, locks, await keyOf('alice'));
      await hold(t, other, await keyOf('bob'));
      await hold(t, locks, await keyOf('carol'));
    });

    test('a held lease confirms; a released one does not; a second release does nothing', async (t) => {
      const { locks, keyOf } = await makeFixture(t);
      const key = await keyOf('alice');
      const lease = await locks.acquire(key);
      await lease.confirm();
      await lease.confirm();
      await lease.release();
      await assert.rejects(lease.confirm(), isCoded(RespCode.sysTemp));
      await lease.release();
      const next = await hold(t, locks, key);
      await next.confirm();
      await assert.rejects(
        lease.confirm(),
        Pop3Error,
        'an old lease stays released when the maildrop is taken again',
      );
    });

    // Only where a test can make a holder lose its maildrop (a lock within one process cannot be lost).
    if (canSteal)
      test('a lease whose maildrop was taken by another session no longer confirms', async (t) => {
        const fixture = await makeFixture(t);
        const key = await fixture.keyOf('alice');
        const lease = await hold(t, fixture.locks, key);
        assert.ok(fixture.steal, 'the fixture says how to take a maildrop from its holder');
        await fixture.steal(key);
        await assert.rejects(lease.confirm(), isCoded(RespCode.sysTemp));
        if (canBeLost(lease)) assert.equal(lease.lost.aborted, true, 'a failed confirm marks the lease lost');
        // Its release leaves the new holder's lock alone.
        await lease.release();
        await assert.rejects(fixture.other.acquire(key), isCoded(RespCode.inUse));
        await assert.rejects(lease.confirm(), isCoded(RespCode.sysTemp));
      });

    test("a dead holder's lock expires after the TTL and is taken over", async (t) => {
      const fixture = await makeFixture(t);
      if (fixture.abandon === undefined) return; // holders cannot die apart from this process
      const key = await fixture.keyOf('alice');
      await fixture.abandon(key);
      // Polled, not slept: IN-USE until the TTL has passed, then the maildrop is ours.
      const end = Date.now() + 3 * (fixture.ttlMs ?? 30_000) + 5_000;
      for (;;) {
        try {
          await hold(t, fixture.locks, key);
          break;
        } catch (error) {
          isCoded(RespCode.inUse)(error);
          assert.ok(Date.now() < end, "the dead holder's lock never expired");
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    });

    test('a held lease outlives its TTL: its holder refreshes it', async (t) => {
      const fixture = await makeFixture(t);
      const { ttlMs } = fixture;
      if (ttlMs === undefined || ttlMs > 5_000) return; // too long to wait for here
      const key = await fixture.keyOf('alice');
      const lease = await hold(t, fixture.locks, key);
      const end = Date.now() + 2 * ttlMs;
      while (Date.now() < end) {
        await assert.rejects(fixture.other.acquire(key), isCoded(RespCode.inUse));
        await new Promise((resolve) => setTimeout(resolve, ttlMs / 4));
      }
      await lease.confirm();
      if (canBeLost(lease)) assert.equal(lease.lost.aborted, false);
    });

    test('a fencing number, where there is one, rises at every acquire and takeover', async (t) => {
      const fixture = await makeFixture(t);
      const key = await fixture.keyOf('alice');
      const first = await fixture.locks.acquire(key);
      if (!isFenced(first)) {
        await first.release();
        return; // this implementation has none
      }
      await first.release();
      const second = await fixture.other.acquire(key);
      assert.ok(isFenced(second));
      assert.ok(second.fencing > first.fencing, `${second.fencing} > ${first.fencing}`);
      await second.release();
      const third = await hold(t, fixture.locks, key);
      assert.ok(isFenced(third));
      assert.ok(third.fencing > second.fencing, `${third.fencing} > ${second.fencing}`);
    });

    test('many sessions racing for one maildrop: exactly one wins', async (t) => {
      const { locks, other, keyOf } = await makeFixture(t);
      const key = await keyOf('alice');
      const attempts = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? locks : other).acquire(key));
      const results = await Promise.allSettled(attempts);
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1);
      for (const r of results) if (r.status === 'rejected') isCoded(RespCode.inUse)(r.reason);
      for (const r of won) t.after(() => r.value.release());
    });
  });
}
