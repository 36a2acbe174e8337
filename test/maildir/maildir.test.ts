import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { MessageGoneError, Pop3Error, RespCode } from '../../src/errors.js';
import { blockingFs, threadPoolFs } from '../../src/mailstore/maildir/fs.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import type { Maildrop, MailStore } from '../../src/mailstore/types.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { tempDir } from '../helpers/temp-dir.js';
import { readContent } from '../helpers/content.js';
import { recordingLogger } from '../helpers/recording-logger.js';

const signal = (): AbortSignal => new AbortController().signal;

/** Opens through the MailStore interface, which takes the signal. */
const open = (store: MailStore, name = 'alice'): Promise<Maildrop> => store.open({ name }, signal());

async function readUid(drop: Maildrop, uid: string): Promise<string> {
  return (await readContent(await drop.read(uid, { signal: signal() }))).toString('latin1');
}

async function openFor(t: TestContext, store: MaildirStore, user = 'alice'): Promise<Maildrop> {
  const drop = await open(store, user);
  t.after(() => drop.close());
  return drop;
}

const uidsAndSizes = (drop: Maildrop): { uid: string; size: number }[] =>
  drop.messages.map(({ uid, size }) => ({ uid, size }));

/** Opens, copies the snapshot, closes. */
async function snapshot(store: MaildirStore, user = 'alice'): Promise<{ uid: string; size: number }[]> {
  const drop = await open(store, user);
  try {
    return uidsAndSizes(drop);
  } finally {
    await drop.close();
  }
}

const list = async (dir: string): Promise<string[]> => (await readdir(dir)).sort();

function uidAt(drop: Maildrop, index: number): string {
  const message = drop.messages[index];
  assert.ok(message, `no message at index ${index}`);
  return message.uid;
}

/** A maildir for alice under a fresh root; the store reads that root. */
async function setup(
  t: TestContext,
  messages: Parameters<typeof buildMaildir>[2] = [],
): Promise<{ root: string; dir: string; names: string[]; store: MaildirStore }> {
  const root = await tempDir(t);
  const { dir, names } = await buildMaildir(root, 'alice', messages);
  return { root, dir, names, store: new MaildirStore({ root }) };
}

describe('new/ and cur/', () => {
  test('open moves messages from new/ to cur/ with ":2," appended, and leaves cur/ names alone', async (t) => {
    const { dir, store } = await setup(t, [
      { name: '1700000001.A.host', content: 'Subject: 1\n\none\n' },
      { name: '1700000002.B.host', folder: 'cur', content: 'Subject: 2\n\ntwo\n' },
      { name: '1700000003.C.host:2,S', folder: 'cur', content: 'Subject: 3\n\nthree\n' },
      { name: '1700000004.D.host', content: 'Subject: 4\n\nfour\n' },
    ]);
    const drop = await openFor(t, store);
    assert.deepEqual(await list(join(dir, 'new')), []);
    assert.deepEqual(await list(join(dir, 'cur')), [
      '1700000001.A.host:2,',
      '1700000002.B.host',
      '1700000003.C.host:2,S',
      '1700000004.D.host:2,',
    ]);
    assert.deepEqual(uidsOf(drop), [
      '1700000001.A.host',
      '1700000002.B.host',
      '1700000003.C.host',
      '1700000004.D.host',
    ]);
    assert.equal(await readUid(drop, '1700000004.D.host'), 'Subject: 4\n\nfour\n');
  });

  test('messages are in order of the delivery time in the name, then of the name', async (t) => {
    const { store } = await setup(t, [
      { name: '1700000100.b.host', content: 'third' },
      { name: 'no-time.host', content: 'last' },
      { name: '1700000100.a.host', folder: 'cur', content: 'second' },
      // Fewer digits: earlier in time although later as a string.
      { name: '999999999.z.host', content: 'first' },
      { name: '1700000200.a.host:2,S', folder: 'cur', content: 'fourth' },
    ]);
    const drop = await openFor(t, store);
    const contents: string[] = [];
    for (const m of drop.messages) contents.push(await readUid(drop, m.uid));
    assert.deepEqual(contents, ['first', 'second', 'third', 'fourth', 'last']);
  });

  test('the same base in new/ and cur/ gives two distinct, valid uids, each with its own size', async (t) => {
    const { root, store } = await setup(t, [
      { name: '1700000001.twice.host:2,S', folder: 'cur', content: 'old\n' },
      { name: '1700000001.twice.host', content: 'a longer new copy\n' },
    ]);
    // Sizes by hand: 'old\n' is 5 octets, 'a longer new copy\n' 19. The second open uses the size index.
    for (const s of [store, store, new MaildirStore({ root })]) {
      const drop = await open(s);
      try {
        const uids = uidsOf(drop);
        assert.equal(uids.length, 2);
        assert.equal(new Set(uids).size, 2);
        assert.ok(uids.includes('1700000001.twice.host'));
        for (const uid of uids) assert.match(uid, /^[\x21-\x7e]{1,70}$/);
        const found = await Promise.all(drop.messages.map(async (m) => [await readUid(drop, m.uid), m.size]));
        assert.deepEqual(found.sort(), [
          ['a longer new copy\n', 19],
          ['old\n', 5],
        ]);
      } finally {
        await drop.close();
      }
    }
  });

  test('marking one of two files with the same base seen does not overwrite the other', async (t) => {
    const { dir, store } = await setup(t, [
      { name: '1700000001.twice.host:2,S', folder: 'cur', content: 'old copy\n' },
      { name: '1700000001.twice.host', content: 'new copy\n' },
    ]);
    const drop = await open(store);
    assert.deepEqual(await drop.commit({ deleted: [], retrieved: uidsOf(drop) }), { notDeleted: [] });
    await drop.close();
    const cur = join(dir, 'cur');
    const names = await list(cur);
    assert.deepEqual(names, ['1700000001.twice.host:2,', '1700000001.twice.host:2,S']);
    const bodies = await Promise.all(names.map((n) => readFile(join(cur, n), 'latin1')));
    assert.deepEqual(bodies, ['new copy\n', 'old copy\n']);
    assert.equal((await snapshot(store)).length, 2);
  });
});

function uidsOf(drop: Maildrop): string[] {
  return drop.messages.map((m) => m.uid);
}

describe('UIDL', () => {
  test('uids stay the same across sessions, a new store instance, a flag change and a lost index', async (t) => {
    const { root, dir, store } = await setup(t, [
      { name: '1700000001.A.host', content: 'a\n' },
      { name: '1700000002.B.host', content: 'b\n' },
    ]);
    const first = await snapshot(store);
    assert.deepEqual(first, [
      { uid: '1700000001.A.host', size: 3 },
      { uid: '1700000002.B.host', size: 3 },
    ]);
    assert.deepEqual(await snapshot(store), first);
    // A restart.
    assert.deepEqual(await snapshot(new MaildirStore({ root })), first);
    // Another program (a mail reader) flags a message between sessions.
    await rename(join(dir, 'cur', '1700000001.A.host:2,'), join(dir, 'cur', '1700000001.A.host:2,FR'));
    assert.deepEqual(await snapshot(new MaildirStore({ root })), first);
    // The size index is a cache: without it, nothing changes.
    await rm(join(dir, '.poplar-sizes'));
    assert.deepEqual(await snapshot(new MaildirStore({ root })), first);
  });

  test('a name that is not a valid UIDL gets a valid uid that is stable', async (t) => {
    const long = `1700000001.${'x'.repeat(80)}`;
    const { root, store } = await setup(t, [
      { name: long, content: 'long\n' },
      { name: '1700000002.with space', content: 'space\n' },
      { name: '1700000003.caf\u00e9', content: 'utf8\n' },
      { name: '~1700000004.tilde', content: 'tilde\n' },
    ]);
    const drop = await open(store);
    const uids = uidsOf(drop);
    await drop.close();
    assert.equal(uids.length, 4);
    assert.equal(new Set(uids).size, 4);
    for (const uid of uids) {
      assert.match(uid, /^[\x21-\x7e]{1,70}$/);
      assert.ok(uid.startsWith('~'), `${uid} should be a digest`);
    }
    assert.deepEqual(uidsOf(await openFor(t, new MaildirStore({ root }))), uids);
  });
});

describe('sizes', () => {
  test('",W=" in the name is the size, and the file is not read to find it', async (t) => {
    // 4 bytes on disk, 5 with CRLF; the name says 999, which proves the name was used.
    const { store } = await setup(t, [
      { name: '1700000001.M1P1.host,S=4,W=999', content: 'abc\n' },
      { name: '1700000002.M2P2.host,W=12:2,S', folder: 'cur', content: 'x\n' },
      // Not a W= field: ",W=" must be followed by digits up to a comma or the end of the base.
      { name: '1700000003.M3P3.host,W=12x', content: 'y\n' },
    ]);
    const drop = await openFor(t, store);
    assert.deepEqual(
      drop.messages.map((m) => m.size),
      [999, 12, 3],
    );
    assert.equal(await readUid(drop, uidAt(drop, 0)), 'abc\n');
  });

  test('sizes are cached in .poplar-sizes: a second open does not read the file again', async (t) => {
    const { root, dir, store } = await setup(t, [
      { name: '1700000001.A.host', content: 'hello\n' },
      { name: '1700000002.B.host', content: 'Subject: b\r\n\r\nbody\r\n' },
    ]);
    assert.deepEqual(
      (await snapshot(store)).map((m) => m.size),
      [7, 20],
    );
    const index = await readFile(join(dir, '.poplar-sizes'), 'utf8');
    assert.match(index, /1700000001\.A\.host/);
    assert.match(index, /1700000002\.B\.host/);
    // Same name, other content (a Maildir file never changes, so the cache may trust its name).
    await writeFile(join(dir, 'cur', '1700000001.A.host:2,'), 'a much longer body\n');
    assert.deepEqual(
      (await snapshot(new MaildirStore({ root }))).map((m) => m.size),
      [7, 20],
    );
    // Without the cache, the file is measured again.
    await rm(join(dir, '.poplar-sizes'));
    assert.deepEqual(
      (await snapshot(store)).map((m) => m.size),
      [20, 20],
    );
  });

  test('isVerbatim: true only for CRLF messages without dot-led lines, also once cached', async (t) => {
    const { root, store } = await setup(t, [
      { name: '1700000001.A.host', content: 'Subject: a\r\n\r\nbody\r\n' },
      { name: '1700000002.B.host', content: 'Subject: b\n\nbody\n' },
      { name: '1700000003.C.host', content: 'Subject: c\r\n\r\n.dot\r\n' },
      { name: '1700000004.D.host', content: 'Subject: d\r\n\r\nno final line end' },
    ]);
    const flags = async (from: MaildirStore): Promise<(boolean | undefined)[]> => {
      const drop = await open(from);
      await drop.close();
      return drop.messages.map((m) => m.isVerbatim);
    };
    assert.deepEqual(await flags(store), [true, false, false, false]);
    // The second time from the size index, not from reading the files.
    assert.deepEqual(await flags(new MaildirStore({ root })), [true, false, false, false]);
  });

  test('the size index forgets deleted messages', async (t) => {
    const { dir, store } = await setup(t, [
      { name: '1700000001.A.host', content: 'hello\n' },
      { name: '1700000002.B.host', content: 'bye\n' },
    ]);
    const drop = await open(store);
    assert.deepEqual(await drop.commit({ deleted: ['1700000001.A.host'], retrieved: [] }), {
      notDeleted: [],
    });
    await drop.close();
    assert.deepEqual(await snapshot(store), [{ uid: '1700000002.B.host', size: 5 }]);
    const index = await readFile(join(dir, '.poplar-sizes'), 'utf8');
    assert.doesNotMatch(index, /1700000001\.A\.host/);
    assert.match(index, /1700000002\.B\.host/);
    // A file that comes back under the old name is measured, not given the old size.
    await writeFile(join(dir, 'cur', '1700000001.A.host:2,'), 'a new body\n');
    assert.deepEqual(await snapshot(store), [
      { uid: '1700000001.A.host', size: 12 },
      { uid: '1700000002.B.host', size: 5 },
    ]);
  });

  test('a damaged size index is ignored', async (t) => {
    const { dir, store } = await setup(t, [{ name: '1700000001.A.host', content: 'hello\n' }]);
    await writeFile(join(dir, '.poplar-sizes'), 'not an index\n5 1 1700000001.A.host\n');
    assert.deepEqual(await snapshot(store), [{ uid: '1700000001.A.host', size: 7 }]);
    await writeFile(join(dir, '.poplar-sizes'), 'poplar-sizes 1\nx 1 1700000001.A.host\n-3 0\n\n');
    await rm(join(dir, 'cur', '1700000001.A.host:2,'));
    await writeFile(join(dir, 'cur', '1700000001.A.host:2,'), 'hi\n');
    assert.deepEqual(await snapshot(store), [{ uid: '1700000001.A.host', size: 4 }]);
  });
});

describe('junk in the maildir', () => {
  test('dotfiles, folders, symlinks, FIFOs and names with control characters are skipped', async (t) => {
    const { root, dir, store } = await setup(t, [
      { name: '1700000001.A.host', content: 'a\n' },
      { name: '1700000002.B.host:2,', folder: 'cur', content: 'b\n' },
    ]);
    const outside = join(root, 'outside-message');
    await writeFile(outside, 'secret\n');
    for (const folder of ['cur', 'new']) {
      const d = join(dir, folder);
      await writeFile(join(d, '.1700000003.hidden'), 'hidden\n');
      await mkdir(join(d, '1700000004.folder'));
      await writeFile(join(d, '1700000004.folder', 'inner'), 'inner\n');
      await symlink(outside, join(d, '1700000005.link'));
      await symlink(join(root, 'nowhere'), join(d, '1700000006.dangling'));
      await promisify(execFile)('mkfifo', [join(d, '1700000007.fifo')]);
      await writeFile(join(d, '1700000008.new\nline'), 'newline\n');
      await writeFile(join(d, '1700000009.tab\tname'), 'tab\n');
    }
    await writeFile(join(dir, 'tmp', '1700000010.in-delivery'), 'partial');
    const junk = [
      '.1700000003.hidden',
      '1700000004.folder',
      '1700000005.link',
      '1700000006.dangling',
      '1700000007.fifo',
      '1700000008.new\nline',
      '1700000009.tab\tname',
    ].sort();

    const drop = await open(store);
    assert.deepEqual(uidsAndSizes(drop), [
      { uid: '1700000001.A.host', size: 3 },
      { uid: '1700000002.B.host', size: 3 },
    ]);
    assert.equal(await readUid(drop, '1700000001.A.host'), 'a\n');
    await drop.commit({ deleted: uidsOf(drop), retrieved: [] });
    await drop.close();
    // Junk in new/ stays there; only the junk is left in cur/.
    assert.deepEqual(await list(join(dir, 'new')), junk);
    assert.deepEqual(await list(join(dir, 'cur')), junk);
    assert.equal(await readFile(outside, 'utf8'), 'secret\n');
    assert.deepEqual(await snapshot(store), []);
  });
});

describe('unreadable messages', () => {
  // Root reads any file whatever its mode, so the fault is injected in the store's file calls.
  for (const fs of [blockingFs, threadPoolFs]) {
    test(`a message that cannot be read at login is skipped, with a warning (blockingIo ${String(fs.isBlocking)})`, async (t) => {
      const root = await tempDir(t);
      await buildMaildir(root, 'alice', [
        { content: 'Subject: 1\n\none\n', name: '1000000001.a.host', folder: 'cur' },
        { content: 'Subject: 2\n\ntwo\n', name: '1000000002.b.host', folder: 'cur' },
        { content: 'Subject: 3\n\nthree\n', name: '1000000003.c.host', folder: 'cur' },
      ]);
      const original = fs.openForReading.bind(fs);
      t.mock.method(fs, 'openForReading', (path: string) =>
        path.includes('1000000002.b.host')
          ? Promise.reject(Object.assign(new Error(`EIO: i/o error, open '${path}'`), { code: 'EIO' }))
          : original(path),
      );
      const logger = recordingLogger();
      const drop = await openFor(t, new MaildirStore({ root, logger, blockingIo: fs.isBlocking }));
      assert.deepEqual(
        drop.messages.map((m) => m.uid),
        ['1000000001.a.host', '1000000003.c.host'],
      );
      assert.equal(await readUid(drop, '1000000003.c.host'), 'Subject: 3\n\nthree\n');
      const warnings = logger.lines.filter((l) => l.includes('message skipped: unreadable'));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? '', /1000000002\.b\.host/);
    });
  }
});

describe('a maildrop that cannot be opened', () => {
  test('rejects with SYS/TEMP and releases its lock', async (t) => {
    const { dir, store } = await setup(t, [{ name: '1700000001.A.host', content: 'a\n' }]);
    // rename(2) of a file over a directory fails even for root: the move to cur/ fails.
    await mkdir(join(dir, 'cur', '1700000001.A.host:2,'));
    await assert.rejects(open(store), (error) => {
      assert.ok(error instanceof Pop3Error);
      assert.equal(error.code, RespCode.sysTemp);
      return true;
    });
    await rm(join(dir, 'cur', '1700000001.A.host:2,'), { recursive: true });
    const drop = await openFor(t, store);
    assert.deepEqual(uidsAndSizes(drop), [{ uid: '1700000001.A.host', size: 3 }]);
  });
});

describe('user names and maildir creation', () => {
  test('a valid user without a maildir gets an empty one with cur/, new/ and tmp/', async (t) => {
    const root = join(await tempDir(t), 'mail');
    const store = new MaildirStore({ root });
    const drop = await openFor(t, store, 'carol');
    assert.deepEqual(uidsAndSizes(drop), []);
    for (const sub of ['cur', 'new', 'tmp']) {
      assert.ok((await stat(join(root, 'carol', sub))).isDirectory(), sub);
      assert.deepEqual(await list(join(root, 'carol', sub)), []);
    }
  });

  test('an invalid user name is refused and nothing is created', async (t) => {
    const base = await tempDir(t);
    const root = join(base, 'mail');
    await mkdir(root);
    const store = new MaildirStore({ root });
    for (const name of [
      '../etc',
      '..',
      '.',
      '.x',
      '',
      'a/b',
      'a\\b',
      '/abs',
      'x\0y',
      'x'.repeat(65),
      'a b',
    ]) {
      await assert.rejects(open(store, name), (error) => error instanceof Pop3Error, JSON.stringify(name));
      assert.throws(() => store.maildirOf(name), Pop3Error);
    }
    assert.deepEqual(await list(base), ['mail']);
    assert.deepEqual(await list(root), []);
  });
});

describe('commit', () => {
  test('with blocking calls, a long commit lets other work run between bursts (blockingBurstMs)', async (t) => {
    const messages = Array.from({ length: 100 }, (_, i) => ({
      name: `${1_700_000_000 + i}.M${i}.host`,
      folder: 'cur' as const,
      content: `Subject: ${i}\n\nbody\n`,
    }));
    const root = await tempDir(t);
    const { dir } = await buildMaildir(root, 'alice', messages);
    // A burst of 0 ms: a pause before every call, so the check below cannot depend on timing.
    const drop = await new MaildirStore({ root, blockingBurstMs: 0 }).open({ name: 'alice' });
    t.after(() => drop.close());
    const uids = uidsOf(drop);
    let turns = 0;
    const count = (): void => {
      turns += 1;
      if (turns < 1000) setImmediate(count);
    };
    setImmediate(count);
    assert.deepEqual(await drop.commit({ deleted: uids.slice(50), retrieved: uids.slice(0, 50) }), {
      notDeleted: [],
    });
    const seen = turns;
    turns = 1000; // stop counting
    // Blocking calls with no pause would run all 100 without one turn of the event loop.
    assert.ok(seen >= 50, `${seen} event-loop turns during the commit`);
    assert.equal((await readdir(join(dir, 'cur'))).filter((n) => n.endsWith(',S')).length, 50);
    assert.equal((await readdir(join(dir, 'cur'))).length, 50);
  });

  test('retrieved messages get the S flag; flags already there are kept, sorted', async (t) => {
    const { dir, store } = await setup(t, [
      { name: '1700000001.A.host', content: 'a\n' },
      { name: '1700000002.B.host:2,FR', folder: 'cur', content: 'b\n' },
      { name: '1700000003.C.host:2,T', folder: 'cur', content: 'c\n' },
      { name: '1700000004.D.host:2,S', folder: 'cur', content: 'd\n' },
      { name: '1700000005.E.host:2,', folder: 'cur', content: 'e\n' },
      { name: '1700000006.F.host:2,', folder: 'cur', content: 'f\n' },
    ]);
    const drop = await open(store);
    const result = await drop.commit({
      deleted: ['1700000006.F.host'],
      retrieved: [
        '1700000001.A.host',
        '1700000002.B.host',
        '1700000003.C.host',
        '1700000004.D.host',
        '1700000006.F.host',
      ],
    });
    await drop.close();
    assert.deepEqual(result, { notDeleted: [] });
    assert.deepEqual(await list(join(dir, 'cur')), [
      '1700000001.A.host:2,S',
      '1700000002.B.host:2,FRS',
      '1700000003.C.host:2,ST',
      '1700000004.D.host:2,S',
      '1700000005.E.host:2,',
    ]);
    assert.equal(await readFile(join(dir, 'cur', '1700000002.B.host:2,FRS'), 'utf8'), 'b\n');
    assert.deepEqual(uidsOf(await openFor(t, store)), [
      '1700000001.A.host',
      '1700000002.B.host',
      '1700000003.C.host',
      '1700000004.D.host',
      '1700000005.E.host',
    ]);
  });

  test('a message another program renamed (new flags) after open can still be read, marked and deleted', async (t) => {
    const { dir, store } = await setup(t, [
      { name: '1700000001.A.host', content: 'a\n' },
      { name: '1700000002.B.host', content: 'b\n' },
    ]);
    const drop = await open(store);
    const cur = join(dir, 'cur');
    await rename(join(cur, '1700000001.A.host:2,'), join(cur, '1700000001.A.host:2,F'));
    await rename(join(cur, '1700000002.B.host:2,'), join(cur, '1700000002.B.host:2,R'));
    assert.equal(await readUid(drop, '1700000001.A.host'), 'a\n');
    assert.equal(await readUid(drop, '1700000002.B.host'), 'b\n');
    // Renamed once more, after the read.
    await rename(join(cur, '1700000002.B.host:2,R'), join(cur, '1700000002.B.host:2,RT'));
    const result = await drop.commit({ deleted: ['1700000001.A.host'], retrieved: ['1700000002.B.host'] });
    await drop.close();
    assert.deepEqual(result, { notDeleted: [] });
    assert.deepEqual(await list(cur), ['1700000002.B.host:2,RST']);
  });

  test('a message another program deleted after open: read rejects MessageGoneError, commit counts it deleted', async (t) => {
    const { dir, store } = await setup(t, [
      { name: '1700000001.A.host', content: 'a\n' },
      { name: '1700000002.B.host', content: 'b\n' },
    ]);
    const drop = await open(store);
    await unlink(join(dir, 'cur', '1700000001.A.host:2,'));
    await assert.rejects(drop.read('1700000001.A.host', { signal: signal() }), MessageGoneError);
    const result = await drop.commit({
      deleted: ['1700000001.A.host'],
      retrieved: ['1700000001.A.host', '1700000002.B.host'],
    });
    await drop.close();
    assert.deepEqual(result, { notDeleted: [] });
    assert.deepEqual(await list(join(dir, 'cur')), ['1700000002.B.host:2,S']);
  });

  test('a message that cannot be unlinked is reported in notDeleted; the others are deleted', async (t) => {
    const { dir, store } = await setup(t, [
      { name: '1700000001.A.host', content: 'a\n' },
      { name: '1700000002.B.host', content: 'b\n' },
      { name: '1700000003.C.host', content: 'c\n' },
    ]);
    const drop = await open(store);
    // unlink(2) fails on a directory even for root (EISDIR), unlike permission tricks.
    const blocked = join(dir, 'cur', '1700000002.B.host:2,');
    await unlink(blocked);
    await mkdir(blocked);
    const result = await drop.commit({
      deleted: ['1700000001.A.host', '1700000002.B.host', '1700000003.C.host'],
      retrieved: [],
    });
    await drop.close();
    assert.deepEqual(result, { notDeleted: ['1700000002.B.host'] });
    assert.deepEqual(await list(join(dir, 'cur')), ['1700000002.B.host:2,']);
  });
});

describe('root', () => {
  test('changing root affects only maildrops opened afterwards', async (t) => {
    const base = await tempDir(t);
    const rootA = join(base, 'a');
    const rootB = join(base, 'b');
    const a = await buildMaildir(rootA, 'alice', [{ name: '1700000001.A.host', content: 'from a\n' }]);
    const b = await buildMaildir(rootB, 'alice', [{ name: '1700000002.B.host', content: 'from b\n' }]);
    const store = new MaildirStore({ root: rootA });
    assert.equal(store.root, rootA);
    const before = await open(store);
    store.root = join(rootB, 'x', '..');
    assert.equal(store.root, rootB);
    assert.deepEqual(uidsOf(before), ['1700000001.A.host']);
    assert.equal(await readUid(before, '1700000001.A.host'), 'from a\n');
    // The new root's maildrop has its own lock.
    const after = await openFor(t, store);
    assert.deepEqual(uidsOf(after), ['1700000002.B.host']);
    assert.equal(await readUid(after, '1700000002.B.host'), 'from b\n');
    await before.commit({ deleted: ['1700000001.A.host'], retrieved: [] });
    await before.close();
    assert.deepEqual(await list(join(a.dir, 'cur')), []);
    assert.deepEqual(await list(join(b.dir, 'cur')), ['1700000002.B.host:2,']);
  });
});
