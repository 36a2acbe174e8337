import assert from 'node:assert/strict';
import { readFile, rename, stat, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { MessageGoneError } from '../../src/errors.js';
import { blockingFs, threadPoolFs, type MaildirFs } from '../../src/mailstore/maildir/fs.js';
import { INDEX_FILE, MAX_INDEX_BYTES } from '../../src/mailstore/maildir/size-index.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import type { Maildrop } from '../../src/mailstore/types.js';
import { readContent } from '../helpers/content.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { tempDir } from '../helpers/temp-dir.js';

// The login of a maildrop whose cur/ has not changed since the index was written takes the listing
// from the index (no directory scan, no file opened); any change, or any doubt, means a scan.

const signal = (): AbortSignal => new AbortController().signal;

/** A whole second: a filesystem with 1 s timestamps records nothing finer. */
const wholeSecondsAgo = (seconds: number): number => Math.floor(Date.now() / 1000) - seconds;

interface Opened {
  readonly messages: { uid: string; size: number; isVerbatim: boolean | undefined }[];
  /** How many times cur/ was listed and message files opened during the open. */
  readonly curListings: number;
  readonly fileOpens: number;
}

/** Opens alice's maildrop, counting the store's listings of cur/ and file opens; then closes it. */
async function openCounting(
  t: TestContext,
  fs: MaildirFs,
  store: MaildirStore,
  keepOpen?: (drop: Maildrop) => Promise<void>,
): Promise<Opened> {
  const readdir = t.mock.method(fs, 'readdirEntries');
  const opens = t.mock.method(fs, 'openForReading');
  let drop: Maildrop;
  try {
    drop = await store.open({ name: 'alice' });
  } finally {
    readdir.mock.restore();
    opens.mock.restore();
  }
  try {
    await keepOpen?.(drop);
  } finally {
    await drop.close();
  }
  return {
    messages: drop.messages.map(({ uid, size, isVerbatim }) => ({ uid, size, isVerbatim })),
    curListings: readdir.mock.calls.filter((c) => c.arguments[0].endsWith('cur')).length,
    fileOpens: opens.mock.calls.length,
  };
}

/**
 * Alice's maildir with messages in cur/ (one of them twice under one base, one whose name is not a
 * valid UIDL), cur/ last changed `curAgeS` seconds ago (a whole second).
 */
async function setup(t: TestContext, curAgeS = 60) {
  const root = await tempDir(t);
  const { dir } = await buildMaildir(root, 'alice', [
    { name: '1700000001.A.host:2,', folder: 'cur', content: 'Subject: a\r\n\r\nbody\r\n' },
    { name: '1700000002.B.host:2,S', folder: 'cur', content: 'b\n' },
    { name: '1700000003.C host:2,', folder: 'cur', content: 'c\n' },
    { name: '1700000004.D.host:2,', folder: 'cur', content: 'd\n' },
    { name: '1700000004.D.host:2,T', folder: 'cur', content: 'dd\n' },
  ]);
  const cur = join(dir, 'cur');
  const curMtimeS = wholeSecondsAgo(curAgeS);
  await utimes(cur, curMtimeS, curMtimeS);
  return { root, dir, cur, curMtimeS };
}

for (const [kind, fs, blockingIo] of [
  ['blocking calls', blockingFs, true],
  ['thread pool', threadPoolFs, false],
] as const) {
  describe(`listing index (${kind})`, () => {
    const storeOf = (root: string): MaildirStore => new MaildirStore({ root, blockingIo });

    test('an unchanged maildrop is served from the index: no listing of cur/, no file opened; same uids', async (t) => {
      const { root } = await setup(t);
      const first = await openCounting(t, fs, storeOf(root));
      assert.equal(first.curListings, 1, 'the first login scans');
      assert.equal(first.fileOpens, 5, 'and measures every file');
      assert.equal(first.messages.length, 5);
      assert.equal(new Set(first.messages.map((m) => m.uid)).size, 5);
      const again = await openCounting(t, fs, storeOf(root));
      assert.deepEqual(again, { ...first, curListings: 0, fileOpens: 0 });
      // And again, by a store that shares nothing with the first (a restart).
      assert.deepEqual(await openCounting(t, fs, storeOf(root)), again);
    });

    test('a delivery into new/ is listed', async (t) => {
      const { root, dir } = await setup(t);
      const first = await openCounting(t, fs, storeOf(root));
      await writeFile(join(dir, 'new', '1700000009.N.host'), 'new\n');
      const again = await openCounting(t, fs, storeOf(root));
      assert.equal(again.curListings, 1);
      assert.deepEqual(again.messages, [
        ...first.messages,
        { uid: '1700000009.N.host', size: 5, isVerbatim: false },
      ]);
    });

    test('a removal from cur/ is seen', async (t) => {
      const { root, cur } = await setup(t);
      const first = await openCounting(t, fs, storeOf(root));
      await unlink(join(cur, '1700000002.B.host:2,S'));
      const again = await openCounting(t, fs, storeOf(root));
      assert.deepEqual(
        again.messages,
        first.messages.filter((m) => m.uid !== '1700000002.B.host'),
      );
    });

    test('a removal with cur/ left at another old mtime (a restore from a backup, say) is seen', async (t) => {
      const { root, cur } = await setup(t);
      const first = await openCounting(t, fs, storeOf(root));
      await unlink(join(cur, '1700000002.B.host:2,S'));
      await utimes(cur, wholeSecondsAgo(120), wholeSecondsAgo(120));
      const again = await openCounting(t, fs, storeOf(root));
      assert.equal(again.curListings, 1);
      assert.deepEqual(
        again.messages,
        first.messages.filter((m) => m.uid !== '1700000002.B.host'),
      );
    });

    test('a flag change by another program: same uids, and the message is read under its new name', async (t) => {
      const { root, cur } = await setup(t);
      const first = await openCounting(t, fs, storeOf(root));
      await rename(join(cur, '1700000001.A.host:2,'), join(cur, '1700000001.A.host:2,FS'));
      const again = await openCounting(t, fs, storeOf(root), async (drop) => {
        const content = await drop.read('1700000001.A.host', { signal: signal() });
        assert.equal((await readContent(content)).toString(), 'Subject: a\r\n\r\nbody\r\n');
      });
      assert.equal(again.curListings, 1);
      assert.deepEqual(again.messages, first.messages);
      // The index now names the new file: the next login is served from it and reads that file.
      await utimes(cur, wholeSecondsAgo(60), wholeSecondsAgo(60));
      await openCounting(t, fs, storeOf(root));
      const third = await openCounting(t, fs, storeOf(root), async (drop) => {
        const content = await drop.read('1700000001.A.host', { signal: signal() });
        assert.equal((await readContent(content)).length, 20);
      });
      assert.equal(third.curListings, 0);
      assert.deepEqual(third.messages, first.messages);
    });

    // A filesystem with coarse timestamps (1 s, or Linux's few-ms ticks) leaves cur/'s mtime as it
    // was after a change in the same tick: such a recent mtime never vouches for the listing.
    for (const ageS of [0, 1]) {
      test(`a file added to cur/ in the same timestamp tick (cur/ changed ${ageS} s before the index) is listed`, async (t) => {
        const { root, cur, curMtimeS } = await setup(t, ageS);
        const first = await openCounting(t, fs, storeOf(root));
        await writeFile(join(cur, '1700000008.Late.host:2,'), 'late\n');
        await utimes(cur, curMtimeS, curMtimeS);
        const again = await openCounting(t, fs, storeOf(root));
        assert.equal(again.curListings, 1, 'a scan');
        assert.deepEqual(again.messages, [
          ...first.messages.slice(0, 5),
          { uid: '1700000008.Late.host', size: 6, isVerbatim: false },
        ]);
      });
    }

    test('a file the listing names but that is gone (cur/ mtime put back) reads as gone, never as other bytes', async (t) => {
      const { root, cur, curMtimeS } = await setup(t);
      const first = await openCounting(t, fs, storeOf(root));
      await unlink(join(cur, '1700000002.B.host:2,S'));
      await utimes(cur, curMtimeS, curMtimeS);
      const again = await openCounting(t, fs, storeOf(root), async (drop) => {
        await assert.rejects(drop.read('1700000002.B.host', { signal: signal() }), MessageGoneError);
      });
      assert.equal(again.curListings, 0, 'served from the stale listing');
      assert.deepEqual(again.messages, first.messages);
    });

    const damages: [string, (text: string) => string][] = [
      ['cut short', (text) => text.slice(0, -3)],
      ['a damaged line', (text) => text.replace(/\n[0-9]+ /, '\nx ')],
      ['a name with a slash', (text) => text.replace('1700000001.A.host:2,', '../1700000001.A.host:2,')],
      ['a dotfile name', (text) => text.replace('1700000001.A.host:2,', '.1700000001.A.host:2,')],
      ['a bad stamp', (text) => text.replace(/^(poplar-sizes 2) [0-9]+/, '$1 12x')],
    ];
    for (const [what, damage] of damages) {
      test(`an index with ${what} is not trusted: a scan, the right listing`, async (t) => {
        const { root, dir } = await setup(t);
        const first = await openCounting(t, fs, storeOf(root));
        const path = join(dir, INDEX_FILE);
        const text = await readFile(path, 'utf8');
        const damaged = damage(text);
        assert.notEqual(damaged, text);
        await writeFile(path, damaged);
        const again = await openCounting(t, fs, storeOf(root));
        assert.equal(again.curListings, 1);
        assert.deepEqual(again.messages, first.messages);
        // Written again whole: the next login is served from it.
        assert.equal((await openCounting(t, fs, storeOf(root))).curListings, 0);
      });
    }

    test(`an index of more than ${MAX_INDEX_BYTES} bytes is not read: a scan, the right listing`, async (t) => {
      const { root, dir } = await setup(t);
      const first = await openCounting(t, fs, storeOf(root));
      // Sparse: the good index followed by zeros, never written out.
      await truncate(join(dir, INDEX_FILE), MAX_INDEX_BYTES + 1);
      const again = await openCounting(t, fs, storeOf(root));
      assert.equal(again.curListings, 1);
      assert.equal(again.fileOpens, 5, 'the sizes are measured again');
      assert.deepEqual(again.messages, first.messages);
      assert.ok((await stat(join(dir, INDEX_FILE))).size < 1000, 'written again');
    });
  });
}
