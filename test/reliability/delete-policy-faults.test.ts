// Faults in the delete policies' file calls (a full disk, an I/O error, a crash between two steps,
// simulated by failing the call that would come next): a message is listed again or stays where it
// was, never lost; no temporary file is left behind.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { blockingFs } from '../../src/mailstore/maildir/fs.js';
import { DAY, policyFixture } from '../maildir/policy-fixture.js';

const BASES = ['1700000001.a.host', '1700000002.b.host', '1700000003.c.host'];
const HIDE = { delete: { mode: 'hide' } } as const;
const KEEP = { delete: { mode: 'keep-days', days: 7 } } as const;

const failure = (code: string): Error => Object.assign(new Error(`${code}: injected`), { code });

describe('hide and keep-days: the state file cannot be written', () => {
  for (const policy of [HIDE, KEEP]) {
    for (const call of ['writeTextSynced', 'rename'] as const) {
      test(`${policy.delete.mode}, ${call} fails: nothing deleted, the message listed again, no temporary file`, async (t) => {
        const f = await policyFixture(t, BASES);
        const drop = await f.open(policy);
        t.mock.method(blockingFs, call, () => Promise.reject(failure('ENOSPC')));
        assert.deepEqual(await drop.commit({ deleted: [BASES[1] as string], retrieved: [] }), {
          notDeleted: [BASES[1]],
        });
        await drop.close();
        t.mock.restoreAll();
        // Looked at before the next open, which would remove a leftover.
        assert.deepEqual(
          (await f.list('.')).filter((n) => n.startsWith('.poplar-policy')),
          [],
        );
        assert.deepEqual(await f.uids(policy), BASES);
        assert.deepEqual(
          await f.list('cur'),
          BASES.map((b) => `${b}:2,`),
        );
      });
    }
  }

  test('a folder that cannot be fsync-ed after the rename: the deletion stands', async (t) => {
    const f = await policyFixture(t, BASES);
    t.mock.method(blockingFs, 'syncFolder', () => Promise.reject(failure('EINVAL')));
    assert.deepEqual(await f.session(HIDE, [BASES[1] as string]), { notDeleted: [] });
    t.mock.restoreAll();
    assert.deepEqual(await f.uids(HIDE), [BASES[0], BASES[2]]);
  });
});

describe('move: a crash between the link into the folder and the unlink', () => {
  test('the message is listed again, never lost; deleting it again leaves one copy in the folder', async (t) => {
    const f = await policyFixture(t, BASES);
    const policy = { delete: { mode: 'move', folder: 'Trash' } } as const;
    const drop = await f.open(policy);
    const original = blockingFs.unlink.bind(blockingFs);
    t.mock.method(blockingFs, 'unlink', (path: string) =>
      path.includes(`${join('alice', 'cur')}/`) ? Promise.reject(failure('EIO')) : original(path),
    );
    assert.deepEqual(await drop.commit({ deleted: [BASES[0] as string], retrieved: [] }), {
      notDeleted: [BASES[0]],
    });
    await drop.close();
    t.mock.restoreAll();
    // In both folders (one inode): listed again in POP3.
    assert.deepEqual(await f.list('.Trash/cur'), [`${BASES[0]}:2,`]);
    assert.deepEqual(await f.uids(policy), BASES);
    assert.deepEqual(await f.session(policy, [BASES[0] as string]), { notDeleted: [] });
    assert.deepEqual(await f.list('.Trash/cur'), [`${BASES[0]}:2,`]);
    assert.deepEqual(await f.list('cur'), [`${BASES[1]}:2,`, `${BASES[2]}:2,`]);
    assert.equal(
      await readFile(join(f.dir, '.Trash', 'cur', `${BASES[0]}:2,`), 'utf8'),
      `Subject: ${BASES[0]}\n\nbody\n`,
    );
  });

  test('a folder on another file system (EXDEV): nothing is copied, the message stays', async (t) => {
    const f = await policyFixture(t, BASES);
    const original = blockingFs.link.bind(blockingFs);
    // Only links into the folder: the lock file is taken with link(2) too.
    t.mock.method(blockingFs, 'link', (from: string, to: string) =>
      to.includes('.Trash') ? Promise.reject(failure('EXDEV')) : original(from, to),
    );
    const policy = { delete: { mode: 'move', folder: 'Trash' } } as const;
    assert.deepEqual(await f.session(policy, [BASES[0] as string]), { notDeleted: [BASES[0]] });
    t.mock.restoreAll();
    assert.deepEqual(await f.list('.Trash/cur'), []);
    assert.deepEqual(await f.uids(policy), BASES);
  });
});

describe('keep-days: a crash in the sweep between the unlinks and the state write', () => {
  test('the files are gone, their entries are forgotten at the next login, nothing else changes', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session(KEEP, [BASES[0] as string]);
    await f.session(HIDE, [BASES[1] as string]);
    f.clock.now += 8 * DAY;
    t.mock.method(blockingFs, 'writeTextSynced', () => Promise.reject(failure('EIO')));
    assert.deepEqual(await f.uids(), [BASES[2]]);
    t.mock.restoreAll();
    assert.deepEqual(await f.list('cur'), [`${BASES[1]}:2,`, `${BASES[2]}:2,`]);
    assert.equal(
      await f.state(),
      `poplar-policy 1\nK ${f.clock.now - 8 * DAY} 7 ${BASES[0]}\nH ${BASES[1]}\n`,
    );
    assert.deepEqual(await f.uids(), [BASES[2]]);
    assert.equal(await f.state(), `poplar-policy 1\nH ${BASES[1]}\n`);
  });

  test('an unlink that fails leaves the kept message hidden, swept at a later login', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session(KEEP, [BASES[0] as string]);
    f.clock.now += 8 * DAY;
    const original = blockingFs.unlink.bind(blockingFs);
    t.mock.method(blockingFs, 'unlink', (path: string) =>
      path.endsWith(`${BASES[0]}:2,`) ? Promise.reject(failure('EIO')) : original(path),
    );
    assert.deepEqual(await f.uids(), [BASES[1], BASES[2]]);
    t.mock.restoreAll();
    assert.deepEqual(
      await f.list('cur'),
      BASES.map((b) => `${b}:2,`),
    );
    assert.deepEqual(await f.uids(), [BASES[1], BASES[2]]);
    assert.deepEqual(await f.list('cur'), [`${BASES[1]}:2,`, `${BASES[2]}:2,`]);
  });
});

describe('EXPIRE: a crash between applying the delete policy and the state write', () => {
  test('move: the message is in the folder, its record forgotten at the next login', async (t) => {
    const f = await policyFixture(t, BASES);
    const policy = { expire: 2, delete: { mode: 'move', folder: 'Trash' } } as const;
    await f.session(policy, [], [BASES[0] as string]);
    f.clock.now += 3 * DAY;
    t.mock.method(blockingFs, 'writeTextSynced', () => Promise.reject(failure('EIO')));
    t.mock.method(blockingFs, 'unlink', () => Promise.reject(failure('EIO')));
    // Neither the unlink of the original nor the state write: listed again, in the folder too.
    assert.deepEqual(await f.uids(policy), BASES);
    t.mock.restoreAll();
    assert.deepEqual(await f.list('.Trash/cur'), [`${BASES[0]}:2,S`]);
    assert.deepEqual(await f.uids(policy), [BASES[1], BASES[2]]);
    assert.deepEqual(await f.list('.Trash/cur'), [`${BASES[0]}:2,S`]);
    assert.deepEqual(await f.list('cur'), [`${BASES[1]}:2,`, `${BASES[2]}:2,`]);
    assert.equal(await f.state(), undefined);
  });

  test('the first retrievals cannot be recorded: QUIT still succeeds, EXPIRE counts from a later one', async (t) => {
    const f = await policyFixture(t, BASES);
    t.mock.method(blockingFs, 'writeTextSynced', () => Promise.reject(failure('ENOSPC')));
    assert.deepEqual(await f.session({ expire: 2 }, [BASES[1] as string], [BASES[0] as string]), {
      notDeleted: [],
    });
    t.mock.restoreAll();
    assert.equal(await f.state(), undefined);
    assert.deepEqual(await f.uids({ expire: 2 }), [BASES[0], BASES[2]]);
  });
});
