// poplar_delete=keep-days:N in the Maildir store: hidden from POP3 at once, the time of deletion
// in `.poplar-policy`, removed for good by the sweep at the first login N days later (the clock is
// the store's, moved by the test, or the state file is written with an old time).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ProcessMaildropLocks, type MaildropLocks } from '../../src/mailstore/locks.js';
import { POLICY_STATE_FILE } from '../../src/mailstore/maildir/policy-state.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { Pop3Error, RespCode } from '../../src/errors.js';
import { DAY, policyFixture, T0 } from './policy-fixture.js';

const BASES = ['1700000001.a.host', '1700000002.b.host', '1700000003.c.host'];
const KEEP = { delete: { mode: 'keep-days', days: 7 } } as const;

describe('poplar_delete=keep-days:N', () => {
  test('hidden at once with the time of deletion; still on disk a moment before N days; gone at N days', async (t) => {
    const f = await policyFixture(t, BASES);
    assert.deepEqual(await f.session(KEEP, [BASES[1] as string]), { notDeleted: [] });
    assert.equal(await f.state(), `poplar-policy 1\nK ${T0} 7 ${BASES[1]}\n`);
    assert.deepEqual(
      await f.list('cur'),
      BASES.map((b) => `${b}:2,`),
    );
    assert.deepEqual(await f.uids(KEEP), [BASES[0], BASES[2]]);
    f.clock.now = T0 + 7 * DAY - 1;
    assert.deepEqual(await f.uids(KEEP), [BASES[0], BASES[2]]);
    assert.deepEqual(
      await f.list('cur'),
      BASES.map((b) => `${b}:2,`),
    );
    f.clock.now = T0 + 7 * DAY;
    assert.deepEqual(await f.uids(KEEP), [BASES[0], BASES[2]]);
    assert.deepEqual(await f.list('cur'), [`${BASES[0]}:2,`, `${BASES[2]}:2,`]);
    assert.equal(await f.state(), undefined);
  });

  test('a state file written with an old time is swept at the next login, whatever the policy is now', async (t) => {
    const f = await policyFixture(t, BASES);
    const now = Date.now();
    await writeFile(
      join(f.dir, POLICY_STATE_FILE),
      `poplar-policy 1\nK ${now - 31 * DAY} 30 ${BASES[0]}\nK ${now - 29 * DAY} 30 ${BASES[2]}\n`,
    );
    const store = new MaildirStore({ root: f.root });
    const drop = await store.open({ name: 'alice', policy: { delete: { mode: 'expunge' } } });
    assert.deepEqual(
      drop.messages.map((m) => m.uid),
      [BASES[1]],
    );
    await drop.close();
    assert.deepEqual(await f.list('cur'), [`${BASES[1]}:2,`, `${BASES[2]}:2,`]);
    assert.equal(await f.state(), `poplar-policy 1\nK ${now - 29 * DAY} 30 ${BASES[2]}\n`);
  });

  test('each message keeps the term it was deleted under (keep-days:0 goes at the next login)', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session(KEEP, [BASES[0] as string]);
    await f.session({ delete: { mode: 'keep-days', days: 0 } }, [BASES[1] as string]);
    f.clock.now = T0 + 1;
    assert.deepEqual(await f.uids(KEEP), [BASES[2]]);
    assert.deepEqual(await f.list('cur'), [`${BASES[0]}:2,`, `${BASES[2]}:2,`]);
  });

  test('the sweep removes nothing when the lease is not confirmed, and stops once it is lost', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session(KEEP, [BASES[0] as string, BASES[1] as string]);
    const inner = new ProcessMaildropLocks();
    const lost = new AbortController();
    let confirms = 0;
    const locks: MaildropLocks = {
      acquire: async (key) => {
        const lease = await inner.acquire(key);
        return {
          lost: lost.signal,
          confirm: () => {
            confirms += 1;
            return Promise.reject(new Pop3Error('maildrop lock lost', RespCode.sysTemp));
          },
          release: () => lease.release(),
        };
      },
    };
    const late = () => T0 + 8 * DAY;
    const refused = await new MaildirStore({ root: f.root, locks, now: late }).open({ name: 'alice' });
    assert.deepEqual(
      refused.messages.map((m) => m.uid),
      [BASES[2]],
    );
    await refused.close();
    assert.equal(confirms, 1);
    assert.deepEqual(
      await f.list('cur'),
      BASES.map((b) => `${b}:2,`),
    );
    // Confirmed, but lost before the first removal.
    lost.abort();
    const lostStore = new MaildirStore({
      root: f.root,
      now: late,
      locks: {
        acquire: async (key) => ({ ...(await inner.acquire(key)), lost: lost.signal }),
      },
    });
    const drop = await lostStore.open({ name: 'alice' });
    await drop.close();
    assert.deepEqual(
      await f.list('cur'),
      BASES.map((b) => `${b}:2,`),
    );
    // And with the lease sound, swept.
    const sound = await new MaildirStore({ root: f.root, now: late }).open({ name: 'alice' });
    await sound.close();
    assert.deepEqual(await f.list('cur'), [`${BASES[2]}:2,`]);
  });
});
