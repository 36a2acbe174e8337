/**
 * The UserLedger contract (src/mailstore/ledger.ts), run against every ledger as the MailStore
 * contract is against every store: a ledger keeps what it is given per user, one user's apart from
 * another's; a user with none reads as empty; the access record stays bounded, oldest out first; a
 * session's end completes its own record and adds the day's octets.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import {
  EMPTY_LEDGER,
  LEDGER_MAX_SESSIONS,
  utcDay,
  withSessionEnd,
  withSessionStart,
  type AccessRecord,
  type UserLedger,
} from '../../src/mailstore/ledger.js';

/** Builds an empty ledger for users `alice` and `bob` (whose maildir folders exist); removed after `t`. */
export type MakeLedger = (t: TestContext) => Promise<UserLedger>;

const record = (start: number, extra: Partial<AccessRecord> = {}): AccessRecord => ({
  start,
  address: '192.0.2.7',
  method: 'USER',
  tls: true,
  bytesSent: 0,
  downloaded: 0,
  retrieved: 0,
  deleted: 0,
  ...extra,
});

export function describeUserLedger(name: string, make: MakeLedger): void {
  describe(`UserLedger contract: ${name}`, () => {
    test('a user with no ledger reads as empty', async (t) => {
      const ledger = await make(t);
      assert.deepEqual(await ledger.read('alice'), EMPTY_LEDGER);
    });

    test('keeps a session start and end per user, apart from other users', async (t) => {
      const ledger = await make(t);
      const start = Date.UTC(2026, 11, 7, 10, 0, 0);
      await ledger.update('alice', (s) => withSessionStart(s, record(start, { appPassword: 'phone' })));
      assert.equal((await ledger.read('alice')).lastStart, start);
      assert.deepEqual(await ledger.read('bob'), EMPTY_LEDGER);
      const end = { end: start + 5000, bytesSent: 900, downloaded: 700, retrieved: 2, deleted: 1 };
      await ledger.update('alice', (s) => withSessionEnd(s, start, end, start + 5000, 700));
      const state = await ledger.read('alice');
      assert.deepEqual(state, {
        lastStart: start,
        day: '2026-12-07',
        dayBytes: 700,
        sessions: [{ ...record(start, { appPassword: 'phone' }), ...end }],
      });
    });

    test('the day’s octets add up within a UTC day and start again the next', async (t) => {
      const ledger = await make(t);
      const day1 = Date.UTC(2026, 11, 7, 23, 0, 0);
      const day2 = Date.UTC(2026, 11, 8, 1, 0, 0);
      const end = { end: 0, bytesSent: 0, downloaded: 0, retrieved: 0, deleted: 0 };
      await ledger.update('bob', (s) =>
        withSessionEnd(withSessionStart(s, record(day1)), day1, end, day1, 100),
      );
      await ledger.update('bob', (s) => withSessionEnd(s, day1, end, day1 + 1000, 50));
      assert.equal((await ledger.read('bob')).dayBytes, 150);
      await ledger.update('bob', (s) => withSessionEnd(s, day1, end, day2, 10));
      const state = await ledger.read('bob');
      assert.equal(state.day, utcDay(day2));
      assert.equal(state.dayBytes, 10);
    });

    test(`keeps the last ${LEDGER_MAX_SESSIONS} sessions, oldest out first; long texts are cut`, async (t) => {
      const ledger = await make(t);
      for (let i = 0; i < LEDGER_MAX_SESSIONS + 5; i++) {
        await ledger.update('alice', (s) =>
          withSessionStart(s, record(1000 + i, { address: 'x'.repeat(500) })),
        );
      }
      const { sessions } = await ledger.read('alice');
      assert.equal(sessions.length, LEDGER_MAX_SESSIONS);
      assert.equal(sessions[0]?.start, 1005);
      assert.equal(sessions.at(-1)?.start, 1000 + LEDGER_MAX_SESSIONS + 4);
      assert.ok(sessions.every((s) => s.address.length === 128));
    });
  });
}
