import { UIDL_HISTORY_FILE } from '../../src/mailstore/maildir/uidl-history.js';
import assert from 'node:assert/strict';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { blockingFs } from '../../src/mailstore/maildir/fs.js';
import { INDEX_FILE } from '../../src/mailstore/maildir/size-index.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { MAX_UIDL_MAP_BYTES, UIDL_MAP_FILE } from '../../src/mailstore/maildir/uidl-map.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { tempDir } from '../helpers/temp-dir.js';

// The Maildir store serves a maildrop another server served with that server's UIDLs: converted
// once from dovecot-uidlist into .poplar-uidl, kept across flag renames, unique whatever the files say.

const A = '1700000001.M1P1.host';
const B = '1700000002.M2P1.host';
const C = '1700000003.M3P1.host';
const UIDLIST = `3 V1796672350 N4 Gfeed\n1 W3 :${A}\n2 PUID7-99 :${B}:2,S\n`;

async function setup(t: TestContext, uidlist: string | null = UIDLIST) {
  const root = await tempDir(t);
  const { dir } = await buildMaildir(root, 'alice', [
    { name: `${A}:2,`, folder: 'cur', content: 'a\n' },
    { name: `${B}:2,S`, folder: 'cur', content: 'b\n' },
    { name: C, folder: 'new', content: 'c\n' },
  ]);
  if (uidlist !== null) await writeFile(join(dir, 'dovecot-uidlist'), uidlist);
  const log = recordingLogger();
  const store = new MaildirStore({ root, logger: log });
  const uids = async (): Promise<string[]> => {
    const drop = await store.open({ name: 'alice' });
    await drop.close();
    return drop.messages.map((m) => m.uid);
  };
  return { dir, log, store, uids };
}

test('dovecot-uidlist: its UIDLs (the P field first), new mail its own; converted once, then .poplar-uidl alone', async (t) => {
  const { dir, log, uids } = await setup(t);
  const expected = ['000000016b170b5e', 'UID7-99', C];
  assert.deepEqual(await uids(), expected);
  assert.equal(
    await readFile(join(dir, UIDL_MAP_FILE), 'utf8'),
    `poplar-uidl 1\ndovecot 000000016b170b5e ${A}\ndovecot UID7-99 ${B}\n`,
  );
  assert.equal(log.lines.filter((l) => l.includes('UIDLs kept from dovecot-uidlist')).length, 1);
  // Dovecot's file is no longer read: changed or gone, nothing changes.
  await writeFile(join(dir, 'dovecot-uidlist'), '3 V5 N9\n1 :x\n');
  assert.deepEqual(await uids(), expected);
  await unlink(join(dir, 'dovecot-uidlist'));
  assert.deepEqual(await uids(), expected);
  // A flag change renames the file; the base, and so the UIDL, stays.
  await rename(join(dir, 'cur', `${A}:2,`), join(dir, 'cur', `${A}:2,FS`));
  assert.deepEqual(await uids(), expected);
  assert.equal(log.lines.filter((l) => l.includes('UIDLs kept from dovecot-uidlist')).length, 1);
});

test('a maildrop Poplar served before (it has a size index) is not converted: its UIDLs stay Poplar own', async (t) => {
  const { dir, uids } = await setup(t, null);
  assert.deepEqual(await uids(), [A, B, C]);
  await writeFile(join(dir, 'dovecot-uidlist'), UIDLIST);
  assert.deepEqual(await uids(), [A, B, C]);
});

test('a maildrop without .poplar-uidl costs one failed open of it, and no look for dovecot-uidlist, once Poplar has served it (and the UIDL history one read at logout)', async (t) => {
  const { dir, uids } = await setup(t, null);
  await uids();
  const reads = t.mock.method(blockingFs, 'readText');
  await uids();
  const names = reads.mock.calls.map((c) => c.arguments[0].slice(dir.length + 1));
  reads.mock.restore();
  assert.deepEqual(names.sort(), [INDEX_FILE, UIDL_MAP_FILE, UIDL_HISTORY_FILE]);
});

for (const [what, text] of [
  ['a damaged header', 'garbage\n1 :x\n'],
  ['uids out of order', `3 V1 N9\n2 :${A}\n1 :${B}\n`],
  ['a file over the size limit', `3 V1 N9\n${'#'.repeat(MAX_UIDL_MAP_BYTES)}\n`],
] as const) {
  test(`a dovecot-uidlist with ${what} is logged once, saying clients may download again, and ignored`, async (t) => {
    const { dir, log, uids } = await setup(t, text);
    assert.deepEqual(await uids(), [A, B, C]);
    await unlink(join(dir, INDEX_FILE)); // as if never opened: it would be read again
    assert.deepEqual(await uids(), [A, B, C]);
    const warned = log.lines.filter((l) => l.includes('dovecot-uidlist'));
    assert.equal(warned.length, 1, warned.join('\n'));
    assert.match(warned[0] ?? '', /download again/);
  });
}

test('a damaged .poplar-uidl is logged once and ignored: Poplar own UIDLs', async (t) => {
  const { dir, log, uids } = await setup(t, null);
  for (const text of [
    'poplar-uidl 1\ndovecot bad uidl\n',
    `poplar-uidl 1\nother X ${A}\n`,
    'poplar-uidl 1\ndovecot X A',
  ]) {
    await writeFile(join(dir, UIDL_MAP_FILE), text);
    assert.deepEqual(await uids(), [A, B, C]);
    assert.deepEqual(await uids(), [A, B, C]);
  }
  const warned = log.lines.filter((l) => l.includes('UIDL map damaged'));
  assert.equal(warned.length, 1, 'the same file, logged once');
  assert.match(warned[0] ?? '', /download again/);
});

test('clashes: a kept UIDL wins over a new message own one; one kept UIDL twice is served once', async (t) => {
  const { dir, log, uids } = await setup(t, null);
  // A's kept UIDL is C's own; B's kept UIDL is A's kept one.
  await writeFile(join(dir, UIDL_MAP_FILE), `poplar-uidl 1\nimported ${C} ${A}\nimported ${C} ${B}\n`);
  const served = await uids();
  assert.equal(served[0], C);
  assert.equal(new Set(served).size, 3, `unique: ${served.join(' ')}`);
  assert.notEqual(served[1], C);
  assert.notEqual(served[2], C);
  assert.equal(log.lines.filter((l) => l.includes('UIDL clash')).length, 1);
});

test('courierpop3dsizelist: its UIDLs, converted once; a Dovecot list next to it wins (Dovecot served it later)', async (t) => {
  const sizelist = `/3 4 1796673584\n${A}:2, 2 1:1796673584:0\n${B}:2,S 2 0:0:0\n`;
  const courier = await setup(t, null);
  await courier.uids();
  await writeFile(join(courier.dir, 'courierpop3dsizelist'), sizelist);
  assert.deepEqual(await courier.uids(), [A, B, C], 'served by Poplar before: not converted');
  const fresh = await setup(t, null);
  await writeFile(join(fresh.dir, 'courierpop3dsizelist'), sizelist);
  assert.deepEqual(await fresh.uids(), ['UID1-1796673584', B, C]);
  assert.match(await readFile(join(fresh.dir, UIDL_MAP_FILE), 'utf8'), /^courier UID1-1796673584 /m);
  const both = await setup(t);
  await writeFile(join(both.dir, 'courierpop3dsizelist'), sizelist);
  assert.deepEqual(await both.uids(), ['000000016b170b5e', 'UID7-99', C]);
});
