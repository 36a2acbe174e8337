// poplar_delete=move:FOLDER in the Maildir store: the file goes to the Maildir++ folder
// `<maildir>/.FOLDER/cur/` (made when missing), by link(2) and unlink(2) on one file system, never
// over another file, and never anywhere but a valid folder of the user's maildir.
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isValidFolderName } from '../../src/mailstore/maildir/folder.js';
import { blockingFs, threadPoolFs } from '../../src/mailstore/maildir/fs.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { policyFixture } from './policy-fixture.js';

const BASES = ['1700000001.a.host', '1700000002.b.host', '1700000003.c.host'];
const move = (folder: string) => ({ delete: { mode: 'move', folder } }) as const;

describe('poplar_delete=move:FOLDER', () => {
  for (const fs of [blockingFs, threadPoolFs]) {
    test(`the file moves to .Trash/cur/ under its name, the folder made with maildirfolder (blockingIo ${String(fs.isBlocking)})`, async (t) => {
      const f = await policyFixture(t, BASES, { blockingIo: fs.isBlocking });
      const content = await readFile(join(f.dir, 'cur', `${BASES[1]}:2,`));
      assert.deepEqual(await f.session(move('Trash'), [BASES[1] as string], [BASES[1] as string]), {
        notDeleted: [],
      });
      assert.deepEqual(await f.list('cur'), [`${BASES[0]}:2,`, `${BASES[2]}:2,`]);
      assert.deepEqual(await f.list('.Trash'), ['cur', 'maildirfolder', 'new', 'tmp']);
      // Retrieved too: marked seen first, and the flag moves with it.
      assert.deepEqual(await f.list('.Trash/cur'), [`${BASES[1]}:2,S`]);
      assert.deepEqual(await readFile(join(f.dir, '.Trash', 'cur', `${BASES[1]}:2,S`)), content);
      assert.equal(await f.state(), undefined, 'no state is needed');
      assert.deepEqual(await f.uids(move('Trash')), [BASES[0], BASES[2]]);
    });
  }

  test('a nested Maildir++ folder (Archive.2026) and a folder that exists already', async (t) => {
    const f = await policyFixture(t, BASES);
    await f.session(move('Archive.2026'), [BASES[0] as string]);
    await f.session(move('Archive.2026'), [BASES[1] as string]);
    assert.deepEqual(await f.list('.Archive.2026/cur'), [`${BASES[0]}:2,`, `${BASES[1]}:2,`]);
    assert.deepEqual(await f.list('cur'), [`${BASES[2]}:2,`]);
  });

  test('a folder half made by a crash is finished; a flag renamed meanwhile moves with the file', async (t) => {
    const f = await policyFixture(t, BASES);
    await mkdir(join(f.dir, '.Trash', 'cur'), { recursive: true });
    const drop = await f.open(move('Trash'));
    // An IMAP client marks it read during the session.
    const { rename } = await import('node:fs/promises');
    await rename(join(f.dir, 'cur', `${BASES[0]}:2,`), join(f.dir, 'cur', `${BASES[0]}:2,S`));
    assert.deepEqual(await drop.commit({ deleted: [BASES[0] as string], retrieved: [] }), { notDeleted: [] });
    await drop.close();
    assert.deepEqual(await f.list('.Trash'), ['cur', 'maildirfolder', 'new', 'tmp']);
    assert.deepEqual(await f.list('.Trash/cur'), [`${BASES[0]}:2,S`]);
  });

  test('a name taken in the folder by another message is never overwritten: a fresh name', async (t) => {
    const f = await policyFixture(t, BASES);
    await mkdir(join(f.dir, '.Trash', 'cur'), { recursive: true });
    await writeFile(join(f.dir, '.Trash', 'cur', `${BASES[0]}:2,`), 'another message\n');
    assert.deepEqual(await f.session(move('Trash'), [BASES[0] as string]), { notDeleted: [] });
    const names = await f.list('.Trash/cur');
    assert.equal(names.length, 2);
    assert.equal(await readFile(join(f.dir, '.Trash', 'cur', `${BASES[0]}:2,`), 'utf8'), 'another message\n');
    const fresh = names.find((n) => n !== `${BASES[0]}:2,`) ?? '';
    assert.match(fresh, new RegExp(`^${BASES[0]?.replaceAll('.', '\\.')}-P[0-9a-f]{8}:2,$`));
    assert.equal(
      await readFile(join(f.dir, '.Trash', 'cur', fresh), 'utf8'),
      `Subject: ${BASES[0]}\n\nbody\n`,
    );
    assert.deepEqual(await f.list('cur'), [`${BASES[1]}:2,`, `${BASES[2]}:2,`]);
  });

  test('a folder that is a symbolic link is refused: nothing moved, nothing deleted', async (t) => {
    const logger = recordingLogger();
    const f = await policyFixture(t, BASES, { logger });
    const elsewhere = join(f.root, 'elsewhere');
    await mkdir(join(elsewhere, 'cur'), { recursive: true });
    await symlink(elsewhere, join(f.dir, '.Trash'));
    assert.deepEqual(await f.session(move('Trash'), [BASES[0] as string]), { notDeleted: [BASES[0]] });
    assert.deepEqual(
      await f.list('cur'),
      BASES.map((b) => `${b}:2,`),
    );
    assert.deepEqual(await f.list(join('..', 'elsewhere', 'cur')), []);
    assert.ok(logger.lines.some((l) => l.includes('cannot make the folder')));
  });

  test('an invalid folder (from a library caller) deletes nothing and creates nothing', async (t) => {
    const f = await policyFixture(t, BASES);
    for (const folder of [
      '../x',
      'a/b',
      '.Trash',
      'a..b',
      '',
      'poplar-x',
      'POPLAR-lock',
      'x'.repeat(101),
      'a b',
    ]) {
      assert.deepEqual(
        await f.session(move(folder), [BASES[0] as string]),
        { notDeleted: [BASES[0]] },
        folder,
      );
    }
    assert.deepEqual(
      await f.list('cur'),
      BASES.map((b) => `${b}:2,`),
    );
    assert.deepEqual(
      (await f.list('.')).filter((n) => !n.startsWith('.poplar-')),
      ['cur', 'new', 'tmp'],
    );
    await assert.rejects(stat(join(f.root, 'x')));
  });
});

test('isValidFolderName: Maildir++ names, one or more safe parts, not poplar-', () => {
  for (const name of ['Trash', 'Deleted_Items', 'Archive.2026', 'a-b.c_d.E9', 'x'.repeat(100)]) {
    assert.equal(isValidFolderName(name), true, name);
  }
  for (const name of [
    '',
    '.',
    '..',
    '.Trash',
    'Trash.',
    'a..b',
    '../x',
    'a/b',
    'a b',
    'poplar-x',
    'Poplar-x',
    'é',
    'x'.repeat(101),
  ]) {
    assert.equal(isValidFolderName(name), false, name);
  }
});
