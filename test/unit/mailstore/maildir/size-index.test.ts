import assert from 'node:assert/strict';
import { access, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { tempDir } from '../../../helpers/temp-dir.js';
import {
  INDEX_FILE,
  LISTING_SAFETY_MARGIN_MS,
  SizeIndex,
} from '../../../../src/mailstore/maildir/size-index.js';

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

describe('SizeIndex', () => {
  test('a missing file gives an empty index', async (t) => {
    const dir = await tempDir(t);
    const index = await SizeIndex.load(dir);
    assert.equal(index.get('anything'), undefined);
  });

  test('a missing directory gives an empty index', async (t) => {
    const index = await SizeIndex.load(join(await tempDir(t), 'no', 'such', 'dir'));
    assert.equal(index.get('anything'), undefined);
  });

  test('save then load: the entries come back', async (t) => {
    const dir = await tempDir(t);
    const index = await SizeIndex.load(dir);
    index.set('1700000000.M1P2.host', { size: 1234, isVerbatim: false });
    index.set('1700000001.M3P4.host,S=10,W=12', { size: 12, isVerbatim: true });
    index.set('base with spaces', { size: 0, isVerbatim: true });
    await index.save();

    const again = await SizeIndex.load(dir);
    assert.deepEqual(again.get('1700000000.M1P2.host'), { size: 1234, isVerbatim: false });
    assert.deepEqual(again.get('1700000001.M3P4.host,S=10,W=12'), { size: 12, isVerbatim: true });
    assert.deepEqual(again.get('base with spaces'), { size: 0, isVerbatim: true });
    assert.equal(again.get('1700000002.other'), undefined);
  });

  test('the file format is a header line (no listing: "- -"), then "size verbatim base" lines', async (t) => {
    const dir = await tempDir(t);
    const index = await SizeIndex.load(dir);
    index.set('a', { size: 10, isVerbatim: true });
    index.set('b', { size: 20, isVerbatim: false });
    await index.save();
    assert.equal(await readFile(join(dir, INDEX_FILE), 'utf8'), 'poplar-sizes 2 - -\n10 1 a\n20 0 b\n');
  });

  test('save() leaves no temporary file and writes the index readable by the owner only', async (t) => {
    const dir = await tempDir(t);
    const index = await SizeIndex.load(dir);
    index.set('a', { size: 1, isVerbatim: true });
    await index.save();
    assert.deepEqual(await readdir(dir), [INDEX_FILE]);
    assert.equal((await stat(join(dir, INDEX_FILE))).mode & 0o777, 0o600);
  });

  test('set() replaces an entry', async (t) => {
    const dir = await tempDir(t);
    const index = await SizeIndex.load(dir);
    index.set('a', { size: 1, isVerbatim: true });
    index.set('a', { size: 2, isVerbatim: false });
    assert.deepEqual(index.get('a'), { size: 2, isVerbatim: false });
  });

  test('a file with the wrong header is ignored', async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, INDEX_FILE), 'poplar-sizes 2\n10 1 a\n');
    assert.equal((await SizeIndex.load(dir)).get('a'), undefined);
    await writeFile(join(dir, INDEX_FILE), 'poplar-sizes 3 - -\n10 1 a\n');
    assert.equal((await SizeIndex.load(dir)).get('a'), undefined);
    await writeFile(join(dir, INDEX_FILE), 'poplar-sizes 2 1.5 7\n10 1 a\n');
    assert.equal((await SizeIndex.load(dir)).get('a'), undefined);
    await writeFile(join(dir, INDEX_FILE), Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x0a, 0x31]));
    assert.equal((await SizeIndex.load(dir)).get('1'), undefined);
    await writeFile(join(dir, INDEX_FILE), '');
    assert.equal((await SizeIndex.load(dir)).get(''), undefined);
  });

  test('damaged lines are skipped, good lines kept', async (t) => {
    const dir = await tempDir(t);
    const text = [
      'poplar-sizes 1',
      '10 1 good',
      'garbage',
      '-5 1 negative',
      'x 1 notanumber',
      '1.5 0 fraction',
      '99999999999999999999 1 huge',
      ' 1 leadingspace',
      '7 0', // no base
      '',
      '8 0 also good',
      '12 1 trunc', // a last line without newline
    ].join('\n');
    await writeFile(join(dir, INDEX_FILE), text);
    const index = await SizeIndex.load(dir);
    assert.deepEqual(index.get('good'), { size: 10, isVerbatim: true });
    assert.deepEqual(index.get('also good'), { size: 8, isVerbatim: false });
    assert.deepEqual(index.get('trunc'), { size: 12, isVerbatim: true });
    for (const base of ['negative', 'notanumber', 'fraction', 'huge', 'leadingspace', '', '0']) {
      assert.equal(index.get(base), undefined, base);
    }
  });

  test('an index path that is a directory gives an empty index, no throw', async (t) => {
    const dir = await tempDir(t);
    await rm(join(dir, INDEX_FILE), { force: true });
    await mkdir(join(dir, INDEX_FILE));
    assert.equal((await SizeIndex.load(dir)).get('a'), undefined);
  });

  test('retain() forgets messages that are gone', async (t) => {
    const dir = await tempDir(t);
    const index = await SizeIndex.load(dir);
    index.set('a', { size: 1, isVerbatim: true });
    index.set('b', { size: 2, isVerbatim: true });
    index.set('c', { size: 3, isVerbatim: false });
    await index.save();
    const loaded = await SizeIndex.load(dir);
    loaded.retain(new Set(['a', 'c', 'not indexed']));
    assert.deepEqual(loaded.get('a'), { size: 1, isVerbatim: true });
    assert.equal(loaded.get('b'), undefined);
    assert.deepEqual(loaded.get('c'), { size: 3, isVerbatim: false });
    await loaded.save();
    assert.equal(await readFile(join(dir, INDEX_FILE), 'utf8'), 'poplar-sizes 2 - -\n1 1 a\n3 0 c\n');
  });

  test('save() does nothing when nothing changed', async (t) => {
    const dir = await tempDir(t);
    const fresh = await SizeIndex.load(dir);
    await fresh.save();
    assert.equal(await exists(join(dir, INDEX_FILE)), false, 'an untouched empty index is not written');

    fresh.set('a', { size: 1, isVerbatim: true });
    await fresh.save();
    // Once saved, the index is clean again: remove the file and check that save() does not recreate it.
    await rm(join(dir, INDEX_FILE));
    await fresh.save();
    assert.equal(await exists(join(dir, INDEX_FILE)), false, 'a saved index is not written again');
  });

  test('a loaded index is clean; retain() of everything keeps it clean', async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, INDEX_FILE), 'poplar-sizes 1\n1 1 a\n2 0 b\n');
    const index = await SizeIndex.load(dir);
    index.retain(new Set(['a', 'b']));
    await rm(join(dir, INDEX_FILE));
    await index.save();
    assert.equal(await exists(join(dir, INDEX_FILE)), false);
    index.retain(new Set(['a']));
    await index.save();
    assert.equal(await readFile(join(dir, INDEX_FILE), 'utf8'), 'poplar-sizes 2 - -\n1 1 a\n');
  });

  test('a failed save() throws, leaves no temporary file, and stays dirty', async (t) => {
    const dir = await tempDir(t);
    const index = await SizeIndex.load(dir);
    index.set('a', { size: 1, isVerbatim: true });
    // Renaming a file over a non-empty directory fails.
    await mkdir(join(dir, INDEX_FILE));
    await writeFile(join(dir, INDEX_FILE, 'x'), '');
    await assert.rejects(index.save());
    assert.deepEqual(await readdir(dir), [INDEX_FILE]);
    await rm(join(dir, INDEX_FILE), { recursive: true });
    await index.save();
    assert.equal(await readFile(join(dir, INDEX_FILE), 'utf8'), 'poplar-sizes 2 - -\n1 1 a\n');
  });

  test('the sizes of a version 1 file (earlier releases) are read, with no listing', async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, INDEX_FILE), 'poplar-sizes 1\n10 1 a\n20 0 b\n');
    const index = await SizeIndex.load(dir);
    assert.deepEqual(index.get('a'), { size: 10, isVerbatim: true });
    assert.deepEqual(index.get('b'), { size: 20, isVerbatim: false });
    assert.equal(index.listingFor(0n), undefined);
  });

  test('setListing() writes the stamp and the names in order; sizes are by base', async (t) => {
    const dir = await tempDir(t);
    const index = await SizeIndex.load(dir);
    const listing = [
      { name: '2.b:2,S', size: 20, isVerbatim: false },
      { name: '1.a:2,', size: 10, isVerbatim: true },
    ];
    index.setListing(listing, { curMtimeNs: 1_700_000_000_123_456_789n, checkedAtMs: 1_700_000_005_000 });
    await index.save();
    assert.equal(
      await readFile(join(dir, INDEX_FILE), 'utf8'),
      'poplar-sizes 2 1700000000123456789 1700000005000\n20 0 2.b:2,S\n10 1 1.a:2,\n',
    );
    const loaded = await SizeIndex.load(dir);
    assert.deepEqual(loaded.get('1.a'), { size: 10, isVerbatim: true });
    assert.deepEqual(loaded.listingFor(1_700_000_000_123_456_789n), listing);
    assert.equal(loaded.listingFor(1_700_000_000_123_456_788n), undefined, 'another mtime');
  });

  test(`listingFor(): only when the mtime was older than the clock by ${LISTING_SAFETY_MARGIN_MS} ms`, async (t) => {
    const dir = await tempDir(t);
    const checkedAtMs = 1_700_000_005_000;
    const edgeNs = BigInt(checkedAtMs - LISTING_SAFETY_MARGIN_MS) * 1_000_000n;
    const listing = [{ name: '1.a:2,', size: 10, isVerbatim: true }];
    for (const [curMtimeNs, isTrusted] of [
      [edgeNs, true],
      [edgeNs + 1n, false],
      [edgeNs - 1n, true],
    ] as const) {
      const index = await SizeIndex.load(dir);
      index.setListing(listing, { curMtimeNs, checkedAtMs });
      await index.save();
      assert.equal(
        (await SizeIndex.load(dir)).listingFor(curMtimeNs) !== undefined,
        isTrusted,
        `${curMtimeNs}`,
      );
    }
  });
});
