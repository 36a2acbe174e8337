import assert from 'node:assert/strict';
import { readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { canReadInto } from '../../src/mailstore/types.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { tempDir } from '../helpers/temp-dir.js';
import { readContent } from '../helpers/content.js';
import { describeMailStore } from './mailstore.contract.js';

/** Seconds since 1970 at the start of a Maildir name, for sorting in delivery order. */
const deliveredAt = (name: string): number => Number(/^[0-9]+/.exec(name)?.[0] ?? Infinity);

async function listMessages(dir: string): Promise<{ folder: string; name: string }[]> {
  const found: { folder: string; name: string }[] = [];
  for (const folder of ['new', 'cur']) {
    let entries;
    try {
      entries = await readdir(join(dir, folder), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    for (const e of entries) if (e.isFile() && !e.name.startsWith('.')) found.push({ folder, name: e.name });
  }
  return found.sort((a, b) => deliveredAt(a.name) - deliveredAt(b.name) || (a.name < b.name ? -1 : 1));
}

let late = 0;

// Both ways of touching files: blocking bursts (the default) and the thread pool only.
for (const blockingIo of [true, false]) {
  describeMailStore(`MaildirStore, blockingIo ${String(blockingIo)}`, async (t, mailboxes) => {
    const root = await tempDir(t);
    for (const [user, messages] of Object.entries(mailboxes)) {
      // Half the messages still in new/, half already in cur/: both are part of the maildrop.
      await buildMaildir(
        root,
        user,
        messages.map((content, i) => ({ content, folder: i % 2 === 0 ? 'new' : 'cur' })),
      );
    }
    const store = new MaildirStore({ root, blockingIo, measureConcurrency: 3 });
    return {
      store,
      remaining: async (user) => {
        const dir = join(root, user);
        const files = await listMessages(dir);
        return Promise.all(files.map((f) => readFile(join(dir, f.folder, f.name))));
      },
      expunge: async (user, uid) => {
        const dir = join(root, user);
        // Test names are valid UIDLs, so the uid is the base name (the part before ':').
        const file = (await listMessages(dir)).find((f) => f.name.split(':')[0] === uid);
        assert.ok(file, `no file for uid ${uid}`);
        await unlink(join(dir, file.folder, file.name));
      },
      deliver: async (user, message) => {
        late += 1;
        const { dir } = await buildMaildir(root, user);
        const name = `${1_800_000_000 + late}.late${late}.test`;
        await writeFile(join(dir, 'tmp', name), message);
        await rename(join(dir, 'tmp', name), join(dir, 'new', name));
      },
    };
  });
}

/** Open file descriptors of this process. */
const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;

describe('MaildirStore: message files are closed', () => {
  for (const blockingIo of [true, false]) {
    test(`after a chunked read, whole or abandoned half-way (blockingIo ${String(blockingIo)})`, async (t) => {
      const root = await tempDir(t);
      const big = Buffer.alloc(1_000_000, 'abcdefghij\n');
      await buildMaildir(root, 'alice', [{ content: big, folder: 'cur' }]);
      const store = new MaildirStore({ root, blockingIo });
      const drop = await store.open({ name: 'alice' });
      t.after(() => drop.close());
      const uid = drop.messages[0]?.uid ?? '';
      const before = await openFds();
      assert.deepEqual(
        await readContent(await drop.read(uid, { signal: new AbortController().signal, chunkBytes: 65_536 })),
        big,
      );
      assert.equal(await openFds(), before, 'a read to the end closes the file');

      const content = await drop.read(uid, { signal: new AbortController().signal, chunkBytes: 65_536 });
      assert.ok(!Buffer.isBuffer(content), 'a message of 1 MB is streamed');
      let seen = 0;
      for await (const chunk of content) {
        seen += (chunk as Buffer).length;
        if (seen >= 200_000) break; // ends the iteration: the stream is destroyed
      }
      assert.ok(content.destroyed);
      // A thread-pool stream closes its descriptor asynchronously: 'close' comes once it is closed,
      // and may have come already while the descriptors were being counted.
      if (!content.closed) await new Promise((resolve) => content.once('close', resolve));
      assert.equal(await openFds(), before, 'an abandoned read closes the file');
    });
  }
});

describe('MaildirStore: a message read into the caller’s buffer (ChunkReader)', () => {
  for (const blockingIo of [true, false]) {
    test(`reads the whole file into one buffer, 0 at the end, the file closed (blockingIo ${String(blockingIo)})`, async (t) => {
      const root = await tempDir(t);
      const big = Buffer.alloc(200_000, 'abcdefghij\n');
      await buildMaildir(root, 'alice', [{ content: big, folder: 'cur' }]);
      const drop = await new MaildirStore({ root, blockingIo }).open({ name: 'alice' });
      t.after(() => drop.close());
      const before = await openFds();
      const content = await drop.read(drop.messages[0]?.uid ?? '', {
        signal: new AbortController().signal,
        chunkBytes: 65_536,
      });
      assert.ok(!Buffer.isBuffer(content) && canReadInto(content));
      assert.equal(content.chunkBytes, 65_536);
      const buffer = Buffer.alloc(content.chunkBytes);
      const parts: Buffer[] = [];
      for (let n = await content.readInto(buffer); n > 0; n = await content.readInto(buffer)) {
        parts.push(Buffer.from(buffer.subarray(0, n)));
      }
      assert.deepEqual(Buffer.concat(parts), big);
      assert.deepEqual(
        parts.map((p) => p.length),
        [65_536, 65_536, 65_536, 3392],
      );
      assert.equal(await openFds(), before, 'the file is closed at the end');
      assert.equal(await content.readInto(buffer), 0, 'and stays at its end');
      content.destroy();
    });

    test(`a read after the session's abort rejects with the abort, and the file is closed (blockingIo ${String(blockingIo)})`, async (t) => {
      const root = await tempDir(t);
      await buildMaildir(root, 'alice', [{ content: Buffer.alloc(200_000, 'x\n'), folder: 'cur' }]);
      const drop = await new MaildirStore({ root, blockingIo }).open({ name: 'alice' });
      t.after(() => drop.close());
      const before = await openFds();
      const aborter = new AbortController();
      const content = await drop.read(drop.messages[0]?.uid ?? '', {
        signal: aborter.signal,
        chunkBytes: 4096,
      });
      assert.ok(!Buffer.isBuffer(content) && canReadInto(content));
      const buffer = Buffer.alloc(4096);
      assert.equal(await content.readInto(buffer), 4096);
      // Aborted while a read is under way: that read rejects, and so does any later one.
      const reading = content.readInto(buffer);
      aborter.abort();
      await assert.rejects(reading, { name: 'AbortError' });
      await assert.rejects(content.readInto(buffer), { name: 'AbortError' });
      // Not events.once: it would reject on the 'error' event that comes with the abort.
      if (!content.closed) await new Promise((resolve) => content.once('close', resolve));
      assert.equal(await openFds(), before, 'the file is closed');
    });
  }
});

describe('MaildirStore: which messages come whole', () => {
  for (const blockingIo of [true, false]) {
    test(`up to two chunks in one buffer, a byte more as a stream (blockingIo ${String(blockingIo)})`, async (t) => {
      const root = await tempDir(t);
      // CRLF line ends: the POP3 size is the stored size.
      const ofSize = (bytes: number): Buffer => {
        const content = Buffer.alloc(bytes, 'x');
        content.write('\r\n', bytes - 2);
        return content;
      };
      const sizes = [4_095, 5_000, 8_192, 8_193];
      await buildMaildir(
        root,
        'alice',
        sizes.map((bytes) => ({ content: ofSize(bytes), folder: 'cur' as const })),
      );
      const store = new MaildirStore({ root, blockingIo });
      const drop = await store.open({ name: 'alice' });
      t.after(() => drop.close());
      const before = await openFds();
      const byUid = new Map(drop.messages.map((m) => [m.size, m.uid]));
      for (const size of sizes) {
        const content = await drop.read(byUid.get(size) ?? '', {
          signal: new AbortController().signal,
          chunkBytes: 4_096,
        });
        assert.equal(Buffer.isBuffer(content), size <= 8_192, `a message of ${size} bytes`);
        assert.deepEqual(await readContent(content), ofSize(size));
      }
      assert.equal(await openFds(), before, 'every file is closed');
    });
  }
});
