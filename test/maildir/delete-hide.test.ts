// poplar_delete=hide in the Maildir store, and the `.poplar-policy` state file it keeps: the file
// stays in cur/, POP3 never lists it again; the state is keyed by base name, pruned when files go,
// hostile input when read, and costs nothing to a maildrop without one.
import assert from 'node:assert/strict';
import { readFile, rename, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { blockingFs, threadPoolFs } from '../../src/mailstore/maildir/fs.js';
import { MAX_POLICY_STATE_BYTES, POLICY_STATE_FILE } from '../../src/mailstore/maildir/policy-state.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { policyFixture } from './policy-fixture.js';

const HIDE = { delete: { mode: 'hide' } } as const;
const BASES = ['1700000001.a.host', '1700000002.b.host', '1700000003.c.host'];

describe('poplar_delete=hide', () => {
  for (const fs of [blockingFs, threadPoolFs]) {
    test(`the file stays in cur/, never listed again, recorded by base name (blockingIo ${String(fs.isBlocking)})`, async (t) => {
      const f = await policyFixture(t, BASES, { blockingIo: fs.isBlocking });
      const before = await readFile(join(f.dir, 'cur', `${BASES[1]}:2,`));
      assert.deepEqual(await f.session(HIDE, [BASES[1] as string]), { notDeleted: [] });
      assert.deepEqual(
        await f.list('cur'),
        BASES.map((b) => `${b}:2,`),
      );
      assert.deepEqual(await readFile(join(f.dir, 'cur', `${BASES[1]}:2,`)), before);
      assert.equal(await f.state(), `poplar-policy 1\nH ${BASES[1]}\n`);
      assert.deepEqual(await f.uids(HIDE), [BASES[0], BASES[2]]);
      // Whatever the policy is later: hidden stays hidden.
      assert.deepEqual(await f.uids(), [BASES[0], BASES[2]]);
      assert.deepEqual(await f.uids({ delete: { mode: 'move', folder: 'Trash' } }), [BASES[0], BASES[2]]);
    });
  }

  test('a flag change by another program (an IMAP server marking it seen) keeps it hidden', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session(HIDE, [BASES[0] as string]);
    await rename(join(f.dir, 'cur', `${BASES[0]}:2,`), join(f.dir, 'cur', `${BASES[0]}:2,RS`));
    assert.deepEqual(await f.uids(HIDE), [BASES[1], BASES[2]]);
    assert.equal(await f.state(), `poplar-policy 1\nH ${BASES[0]}\n`);
  });

  test('the entry of a hidden file removed by another program is forgotten, and an empty state file removed', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session(HIDE, [BASES[0] as string, BASES[2] as string]);
    await unlink(join(f.dir, 'cur', `${BASES[0]}:2,`));
    assert.deepEqual(await f.uids(HIDE), [BASES[1]]);
    assert.equal(await f.state(), `poplar-policy 1\nH ${BASES[2]}\n`);
    await unlink(join(f.dir, 'cur', `${BASES[2]}:2,`));
    assert.deepEqual(await f.uids(HIDE), [BASES[1]]);
    assert.equal(await f.state(), undefined);
  });

  test('the hidden messages of a session are still in its own snapshot; a later delivery is listed', async (t) => {
    const f = await policyFixture(t, BASES);
    const drop = await f.open(HIDE);
    await drop.commit({ deleted: [BASES[0] as string], retrieved: [] });
    assert.equal(drop.messages.length, 3);
    await drop.close();
    await writeFile(join(f.dir, 'new', '1700000009.z.host'), 'Subject: z\n\nz\n');
    assert.deepEqual(await f.uids(HIDE), [BASES[1], BASES[2], '1700000009.z.host']);
  });
});

describe('a maildrop without policy state', () => {
  test('expunge and EXPIRE never write no state file; the open does not even look for one', async (t) => {
    const f = await policyFixture(t, BASES);
    const reads = t.mock.method(blockingFs, 'readTextStat');
    const stats = t.mock.method(blockingFs, 'lstat');
    assert.deepEqual(await f.session({}, [BASES[0] as string], [BASES[1] as string]), { notDeleted: [] });
    assert.deepEqual(await f.uids(), [BASES[1], BASES[2]]);
    assert.equal(await f.state(), undefined);
    const policyReads = [...reads.mock.calls, ...stats.mock.calls].filter((c) =>
      String(c.arguments[0]).includes(POLICY_STATE_FILE),
    );
    assert.equal(policyReads.length, 0, 'no open or stat of .poplar-policy');
    // expunge is today's behaviour: the file is gone.
    assert.deepEqual(await f.list('cur'), [`${BASES[1]}:2,S`, `${BASES[2]}:2,`]);
  });

  test('a save cut short by a crash (.poplar-policy.<random>.tmp) is removed at the next open', async (t) => {
    const f = await policyFixture(t, BASES);
    await writeFile(join(f.dir, `${POLICY_STATE_FILE}.0123456789ab.tmp`), 'poplar-policy 1\nH x');
    assert.deepEqual(await f.uids(), BASES);
    assert.deepEqual(
      (await f.list('.')).filter((n) => n.startsWith('.poplar-policy')),
      [],
    );
  });
});

describe('a damaged state file', () => {
  const damaged: readonly [string, string | Buffer][] = [
    ['a bad header', `poplar-policy 9\nH ${BASES[0]}\n`],
    ['cut short', `poplar-policy 1\nH ${BASES[0]}\nH ${BASES[1]}`],
    ['an unknown line', `poplar-policy 1\nH ${BASES[0]}\nX ${BASES[1]}\n`],
    ['a path in a name', `poplar-policy 1\nH ${BASES[0]}\nH ../../etc/passwd\n`],
    ['a bad time', `poplar-policy 1\nH ${BASES[0]}\nK 1e9 3 ${BASES[1]}\n`],
    ['a term over a century', `poplar-policy 1\nK 0 99999 ${BASES[0]}\n`],
    ['a repeated message', `poplar-policy 1\nH ${BASES[0]}\nK 0 0 ${BASES[0]}\n`],
    ['oversized', Buffer.alloc(MAX_POLICY_STATE_BYTES + 1, 'H x\n')],
  ];
  for (const [what, content] of damaged) {
    test(`(${what}) is logged once and ignored: hidden and kept mail listed again, nothing deleted`, async (t) => {
      const logger = recordingLogger();
      const f = await policyFixture(t, BASES, { logger });
      await writeFile(join(f.dir, POLICY_STATE_FILE), content);
      // Old kept entries would be swept if they were trusted: nothing is.
      assert.deepEqual(await f.uids(), BASES);
      assert.deepEqual(await f.uids({ expire: 1 }), BASES);
      assert.deepEqual(
        await f.list('cur'),
        BASES.map((b) => `${b}:2,`),
      );
      const logged = logger.lines.filter((l) => l.includes('policy state damaged'));
      assert.equal(logged.length, 1, logged.join('\n'));
      // The next write replaces it with a sound one.
      await f.session({ delete: { mode: 'hide' } }, [BASES[2] as string]);
      assert.equal(await f.state(), `poplar-policy 1\nH ${BASES[2]}\n`);
      assert.deepEqual(await f.uids(), [BASES[0], BASES[1]]);
    });
  }

  test('a state file that is a symbolic link is not followed: logged, ignored, and replaced by a write', async (t) => {
    const logger = recordingLogger();
    const f = await policyFixture(t, BASES, { logger });
    const outside = join(f.root, 'outside');
    await writeFile(outside, `poplar-policy 1\nH ${BASES[0]}\n`);
    await symlink(outside, join(f.dir, POLICY_STATE_FILE));
    assert.deepEqual(await f.uids(), BASES);
    assert.equal(logger.lines.filter((l) => l.includes('policy state damaged')).length, 1);
    await f.session({ delete: { mode: 'hide' } }, [BASES[2] as string]);
    assert.equal(await readFile(outside, 'utf8'), `poplar-policy 1\nH ${BASES[0]}\n`);
    assert.ok((await stat(join(f.dir, POLICY_STATE_FILE))).isFile());
  });
});
