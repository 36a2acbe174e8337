// RFC 2449 EXPIRE N (days) in the Maildir store: a message's first retrieval (a RETR committed in
// UPDATE) is recorded in `.poplar-policy`; at the first login N days later the message is removed
// the way the user's poplar_delete says. `never` removes nothing and records nothing.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DAY, policyFixture, T0 } from './policy-fixture.js';

const BASES = ['1700000001.a.host', '1700000002.b.host', '1700000003.c.host'];

describe('EXPIRE N', () => {
  test('the first retrieval is recorded; the message is listed until N days after it, then unlinked', async (t) => {
    const f = await policyFixture(t, BASES);
    const policy = { expire: 30 };
    assert.deepEqual(await f.session(policy, [], [BASES[0] as string, BASES[1] as string]), {
      notDeleted: [],
    });
    assert.equal(await f.state(), `poplar-policy 1\nR ${T0} ${BASES[0]}\nR ${T0} ${BASES[1]}\n`);
    // A second retrieval does not restart the count.
    f.clock.now = T0 + 10 * DAY;
    await f.session(policy, [], [BASES[1] as string]);
    assert.equal(await f.state(), `poplar-policy 1\nR ${T0} ${BASES[0]}\nR ${T0} ${BASES[1]}\n`);
    f.clock.now = T0 + 30 * DAY - 1;
    assert.deepEqual(await f.uids(policy), BASES);
    f.clock.now = T0 + 30 * DAY;
    assert.deepEqual(await f.uids(policy), [BASES[2]]);
    assert.deepEqual(await f.list('cur'), [`${BASES[2]}:2,`]);
    assert.equal(await f.state(), undefined);
  });

  test('with move:Trash the expired message is kept in .Trash', async (t) => {
    const f = await policyFixture(t, BASES);
    const policy = { expire: 5, delete: { mode: 'move', folder: 'Trash' } } as const;
    await f.session(policy, [], [BASES[2] as string]);
    f.clock.now = T0 + 6 * DAY;
    assert.deepEqual(await f.uids(policy), [BASES[0], BASES[1]]);
    assert.deepEqual(await f.list('.Trash/cur'), [`${BASES[2]}:2,S`]);
    assert.equal(
      await readFile(join(f.dir, '.Trash', 'cur', `${BASES[2]}:2,S`), 'utf8'),
      `Subject: ${BASES[2]}\n\nbody\n`,
    );
    assert.equal(await f.state(), undefined);
  });

  test('with hide the expired message stays in cur/, hidden; with keep-days it is swept N days later', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session({ expire: 1 }, [], [BASES[0] as string, BASES[1] as string]);
    f.clock.now = T0 + DAY;
    assert.deepEqual(await f.uids({ expire: 1, delete: { mode: 'hide' } }), [BASES[2]]);
    // Both were due: both hidden under hide.
    assert.equal(await f.state(), `poplar-policy 1\nH ${BASES[0]}\nH ${BASES[1]}\n`);
    assert.deepEqual(await f.list('cur'), [`${BASES[0]}:2,S`, `${BASES[1]}:2,S`, `${BASES[2]}:2,`]);

    const g = await policyFixture(t, BASES);
    const keep = { expire: 1, delete: { mode: 'keep-days', days: 2 } } as const;
    await g.session(keep, [], [BASES[0] as string]);
    g.clock.now = T0 + DAY;
    assert.deepEqual(await g.uids(keep), [BASES[1], BASES[2]]);
    assert.equal(await g.state(), `poplar-policy 1\nK ${T0 + DAY} 2 ${BASES[0]}\n`);
    g.clock.now = T0 + 3 * DAY;
    assert.deepEqual(await g.uids(keep), [BASES[1], BASES[2]]);
    assert.deepEqual(await g.list('cur'), [`${BASES[1]}:2,`, `${BASES[2]}:2,`]);
  });

  test('EXPIRE never (and 0, which the engine applies at QUIT) records nothing', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session({ expire: 'never' }, [], [BASES[0] as string]);
    await f.session({ expire: 0 }, [], [BASES[1] as string]);
    assert.equal(await f.state(), undefined);
  });

  test('from N to never: the records are kept and nothing is removed; back to N, they count again', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session({ expire: 2 }, [], [BASES[0] as string]);
    f.clock.now = T0 + 10 * DAY;
    assert.deepEqual(await f.uids({ expire: 'never' }), BASES);
    await f.session({ expire: 'never' }, [], [BASES[1] as string]);
    assert.equal(await f.state(), `poplar-policy 1\nR ${T0} ${BASES[0]}\n`);
    assert.deepEqual(await f.uids({ expire: 2 }), [BASES[1], BASES[2]]);
  });

  test('a message deleted in the same session is not recorded as retrieved', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session(
      { expire: 3, delete: { mode: 'hide' } },
      [BASES[0] as string],
      [BASES[0] as string, BASES[1] as string],
    );
    assert.equal(await f.state(), `poplar-policy 1\nH ${BASES[0]}\nR ${T0} ${BASES[1]}\n`);
  });
});
