/**
 * The MailStore / Maildrop contract (src/mailstore/types.ts), run against every store
 * (MQTT.js `abstract_store.ts` style): a store file calls {@link describeMailStore} with a factory.
 *
 * Expected sizes are written by hand from the rule in src/message/octets.ts: every LF not preceded
 * by CR counts as CRLF, and a message that does not end with a line end gets one.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { MessageGoneError, Pop3Error, RespCode } from '../../src/errors.js';
import type { Maildrop, MailStore } from '../../src/mailstore/types.js';
import type { DeletePolicy } from '../../src/policy.js';
import { readContent } from '../helpers/content.js';

/** A store under test and ways to look at, and change, its mail behind its back. */
export interface MailStoreFixture {
  readonly store: MailStore;
  /** The bytes of the messages now in a user's mailbox, in delivery order. */
  readonly remaining: (user: string) => Promise<Buffer[]>;
  /** Removes a message as another program might, while a session may hold the maildrop. */
  readonly expunge: (user: string, uid: string) => Promise<void>;
  /** Delivers one more message (it goes after every message already there). */
  readonly deliver: (user: string, message: Uint8Array) => Promise<void>;
}

/**
 * Builds a store holding `mailboxes` (user name to messages, in delivery order). Everything it
 * creates is removed after `t`.
 */
export type MakeMailStoreFixture = (
  t: TestContext,
  mailboxes: Readonly<Record<string, readonly Uint8Array[]>>,
) => Promise<MailStoreFixture>;

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

/** Messages covering the ways stored bytes differ from what RETR sends, with their sizes by hand. */
export const SAMPLE = [
  // 18 stored bytes, 3 bare LF: 21.
  { bytes: bytes('Subject: a\n\nhello\n'), size: 21 },
  // Already CRLF, a line starting with a dot (no stuffing is counted): 20.
  { bytes: bytes('Subject: b\r\n\r\n.dot\r\n'), size: 20 },
  // No final newline: 22 stored, 2 bare LF, a final CRLF added: 26.
  { bytes: bytes('Subject: c\n\nno newline'), size: 26 },
  // 8-bit bytes, a NUL and a lone CR (data): 19 stored, 3 bare LF: 22.
  {
    bytes: Buffer.concat([bytes('Subject: d\n\n'), Buffer.from([0xc3, 0xa9, 0xff, 0x00, 0x0d, 0x41, 0x0a])]),
    size: 22,
  },
  // Mixed line ends, ending with a CR that only needs its LF: 16 stored, 1 bare LF, 1 added: 18.
  { bytes: bytes('Subject: e\r\n\nx\r\r'), size: 18 },
] as const;

const signal = (): AbortSignal => new AbortController().signal;

/** Every kind of delete policy. */
const DELETE_POLICIES: readonly DeletePolicy[] = [
  { mode: 'expunge' },
  { mode: 'hide' },
  { mode: 'move', folder: 'Trash' },
  { mode: 'keep-days', days: 7 },
];
const policyName = (p: DeletePolicy): string =>
  p.mode === 'move' ? `move:${p.folder}` : p.mode === 'keep-days' ? `keep-days:${p.days}` : p.mode;

/** Opens a maildrop and closes it after the test, whatever happens (close is idempotent in both stores). */
async function openFor(t: TestContext, store: MailStore, name: string): Promise<Maildrop> {
  const drop = await store.open({ name }, signal());
  t.after(() => drop.close());
  return drop;
}

async function readUid(drop: Maildrop, uid: string): Promise<Buffer> {
  return readContent(await drop.read(uid, { signal: signal() }));
}

const uidsOf = (drop: Maildrop): string[] => drop.messages.map((m) => m.uid);

function uidAt(drop: Maildrop, index: number): string {
  const message = drop.messages[index];
  assert.ok(message, `no message at index ${index}`);
  return message.uid;
}

function isInUse(error: unknown): boolean {
  assert.ok(error instanceof Pop3Error, `expected a Pop3Error, got ${String(error)}`);
  assert.equal(error.code, RespCode.inUse);
  assert.equal(error.code, 'IN-USE');
  return true;
}

export function describeMailStore(name: string, makeFixture: MakeMailStoreFixture): void {
  describe(`MailStore contract: ${name}`, () => {
    const all = SAMPLE.map((m) => m.bytes);

    test('open lists the messages in delivery order with their sizes after CRLF normalisation', async (t) => {
      const { store } = await makeFixture(t, { alice: all });
      const drop = await openFor(t, store, 'alice');
      assert.deepEqual(
        drop.messages.map((m) => m.size),
        [21, 20, 26, 22, 18],
      );
      for (const [i, sample] of SAMPLE.entries()) {
        assert.deepEqual(await readUid(drop, uidAt(drop, i)), sample.bytes, `message ${i + 1}`);
      }
    });

    test('a message bigger than chunkBytes comes whole, in chunks of at most chunkBytes', async (t) => {
      // 300 KB of LF-ended lines, with a dot-started line: read back byte for byte as stored.
      const lines = Array.from(
        { length: 4000 },
        (_, i) => `${i % 97 === 0 ? '.' : ''}line ${i} ${'x'.repeat(64)}`,
      );
      const big = bytes(`Subject: big\n\n${lines.join('\n')}\n`);
      const { store } = await makeFixture(t, { alice: [big] });
      const drop = await openFor(t, store, 'alice');
      const content = await drop.read(uidAt(drop, 0), { signal: signal(), chunkBytes: 16_384 });
      if (Buffer.isBuffer(content)) {
        assert.deepEqual(content, big);
        return;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of content) chunks.push(chunk as Buffer);
      assert.ok(chunks.length >= Math.ceil(big.length / 16_384), `${chunks.length} chunks`);
      for (const chunk of chunks) assert.ok(chunk.length <= 16_384, `a chunk of ${chunk.length} bytes`);
      assert.deepEqual(Buffer.concat(chunks), big);
    });

    test('uids are unique and 1 to 70 characters in 0x21-0x7E', async (t) => {
      const many = Array.from({ length: 12 }, (_, i) => bytes(`Subject: ${i}\n\nsame body\n`));
      const { store } = await makeFixture(t, { alice: [...many, ...many] });
      const drop = await openFor(t, store, 'alice');
      assert.equal(drop.messages.length, 24);
      const uids = uidsOf(drop);
      assert.equal(new Set(uids).size, 24);
      for (const uid of uids) assert.match(uid, /^[\x21-\x7e]{1,70}$/);
    });

    test('uids and sizes are the same when the maildrop is opened again', async (t) => {
      const { store } = await makeFixture(t, { alice: all });
      const first = await store.open({ name: 'alice' }, signal());
      const before = first.messages.map((m) => ({ ...m }));
      await first.close();
      const second = await openFor(t, store, 'alice');
      assert.deepEqual(second.messages, before);
      assert.equal(second.messages.length, 5);
    });

    test('read returns the stored bytes exactly, and can be repeated', async (t) => {
      const { store } = await makeFixture(t, { alice: all });
      const drop = await openFor(t, store, 'alice');
      const third = uidAt(drop, 2);
      const expected = bytes('Subject: c\n\nno newline');
      assert.deepEqual(await readUid(drop, third), expected);
      assert.deepEqual(await readUid(drop, third), expected);
      const fourth = await readUid(drop, uidAt(drop, 3));
      assert.deepEqual([...fourth], [...bytes('Subject: d\n\n'), 0xc3, 0xa9, 0xff, 0x00, 0x0d, 0x41, 0x0a]);
    });

    test('commit removes exactly the deleted messages', async (t) => {
      const { store, remaining } = await makeFixture(t, { alice: all });
      const drop = await store.open({ name: 'alice' }, signal());
      const uids = uidsOf(drop);
      const result = await drop.commit({ deleted: [uids[1] ?? '', uids[3] ?? ''], retrieved: [] });
      await drop.close();
      assert.deepEqual(result.notDeleted, []);
      assert.deepEqual(await remaining('alice'), [SAMPLE[0].bytes, SAMPLE[2].bytes, SAMPLE[4].bytes]);
      const again = await openFor(t, store, 'alice');
      assert.deepEqual(uidsOf(again), [uids[0], uids[2], uids[4]]);
      assert.deepEqual(
        again.messages.map((m) => m.size),
        [21, 26, 18],
      );
    });

    // What DELE means is the user's policy (src/policy.ts); under every one of them a deleted
    // message is never listed again and the others keep their uids and bytes.
    for (const policy of DELETE_POLICIES) {
      test(`under poplar_delete=${policyName(policy)}, a deleted message is never listed again`, async (t) => {
        const { store } = await makeFixture(t, { alice: all });
        const user = { name: 'alice', policy: { delete: policy } };
        const drop = await store.open(user, signal());
        const uids = uidsOf(drop);
        assert.deepEqual(await drop.commit({ deleted: [uids[1] ?? ''], retrieved: [uids[2] ?? ''] }), {
          notDeleted: [],
        });
        await drop.close();
        for (const again of [user, { name: 'alice' }]) {
          const next = await store.open(again, signal());
          try {
            assert.deepEqual(uidsOf(next), [uids[0], uids[2], uids[3], uids[4]]);
            assert.deepEqual(await readUid(next, uids[2] ?? ''), SAMPLE[2].bytes);
          } finally {
            await next.close();
          }
        }
      });
    }

    test('commit with nothing to do changes nothing', async (t) => {
      const { store, remaining } = await makeFixture(t, { alice: all });
      const drop = await store.open({ name: 'alice' }, signal());
      assert.deepEqual(await drop.commit({ deleted: [], retrieved: [] }), { notDeleted: [] });
      await drop.close();
      assert.deepEqual(await remaining('alice'), all);
    });

    test('commit keeps retrieved messages, with the same uids and bytes', async (t) => {
      const { store, remaining } = await makeFixture(t, { alice: all });
      const drop = await store.open({ name: 'alice' }, signal());
      const before = drop.messages.map((m) => ({ ...m }));
      const result = await drop.commit({ deleted: [], retrieved: [uidAt(drop, 0), uidAt(drop, 2)] });
      await drop.close();
      assert.deepEqual(result.notDeleted, []);
      assert.deepEqual(await remaining('alice'), all);
      const again = await openFor(t, store, 'alice');
      assert.deepEqual(again.messages, before);
      assert.deepEqual(await readUid(again, uidAt(again, 2)), SAMPLE[2].bytes);
    });

    test('a message both retrieved and deleted is deleted', async (t) => {
      const { store, remaining } = await makeFixture(t, { alice: all.slice(0, 2) });
      const drop = await store.open({ name: 'alice' }, signal());
      const uid = uidAt(drop, 0);
      assert.deepEqual(await drop.commit({ deleted: [uid], retrieved: [uid] }), { notDeleted: [] });
      await drop.close();
      assert.deepEqual(await remaining('alice'), [SAMPLE[1].bytes]);
    });

    test('close releases the lock: the maildrop opens again', async (t) => {
      const { store } = await makeFixture(t, { alice: all });
      for (let i = 0; i < 3; i++) {
        const drop = await store.open({ name: 'alice' }, signal());
        assert.equal(drop.messages.length, 5);
        await drop.close();
      }
    });

    test('a second open while the first is held rejects with IN-USE; the first session goes on', async (t) => {
      const { store, remaining } = await makeFixture(t, { alice: all });
      const first = await store.open({ name: 'alice' }, signal());
      await assert.rejects(store.open({ name: 'alice' }, signal()), isInUse);
      await assert.rejects(store.open({ name: 'alice' }, signal()), isInUse);
      assert.deepEqual(await readUid(first, uidAt(first, 0)), SAMPLE[0].bytes);
      await first.commit({ deleted: [uidAt(first, 0)], retrieved: [] });
      await first.close();
      const second = await openFor(t, store, 'alice');
      assert.equal(second.messages.length, 4);
      assert.deepEqual(await remaining('alice'), all.slice(1));
    });

    test("one user's lock does not block another user", async (t) => {
      const { store } = await makeFixture(t, { alice: all, bob: [SAMPLE[1].bytes] });
      const alice = await openFor(t, store, 'alice');
      const bob = await openFor(t, store, 'bob');
      assert.equal(alice.messages.length, 5);
      assert.deepEqual(
        bob.messages.map((m) => m.size),
        [20],
      );
      assert.deepEqual(await readUid(bob, uidAt(bob, 0)), SAMPLE[1].bytes);
    });

    test('a user without a mailbox gets an empty maildrop', async (t) => {
      const { store, remaining } = await makeFixture(t, { alice: all });
      const drop = await store.open({ name: 'carol' }, signal());
      assert.deepEqual(drop.messages, []);
      assert.deepEqual(await drop.commit({ deleted: [], retrieved: [] }), { notDeleted: [] });
      await drop.close();
      assert.deepEqual(await remaining('carol'), []);
      // The lock of an empty maildrop is released too.
      const again = await openFor(t, store, 'carol');
      assert.deepEqual(again.messages, []);
    });

    test('reading a message removed by another program rejects with MessageGoneError', async (t) => {
      const { store, expunge } = await makeFixture(t, { alice: all });
      const drop = await openFor(t, store, 'alice');
      const uid = uidAt(drop, 1);
      await expunge('alice', uid);
      await assert.rejects(drop.read(uid, { signal: signal() }), MessageGoneError);
      // The others are still readable.
      assert.deepEqual(await readUid(drop, uidAt(drop, 2)), SAMPLE[2].bytes);
    });

    test('deleting a message already removed by another program counts as deleted', async (t) => {
      const { store, expunge, remaining } = await makeFixture(t, { alice: all.slice(0, 3) });
      const drop = await store.open({ name: 'alice' }, signal());
      const [one, two] = [uidAt(drop, 0), uidAt(drop, 1)];
      await expunge('alice', one);
      assert.deepEqual(await drop.commit({ deleted: [one, two], retrieved: [] }), { notDeleted: [] });
      await drop.close();
      assert.deepEqual(await remaining('alice'), [SAMPLE[2].bytes]);
    });

    test('a message delivered during a session is not in its snapshot and survives its commit', async (t) => {
      const { store, deliver, remaining } = await makeFixture(t, { alice: all.slice(0, 2) });
      const drop = await store.open({ name: 'alice' }, signal());
      const late = bytes('Subject: late\n\nlate\n'); // 20 stored, 3 bare LF: 23
      await deliver('alice', late);
      assert.equal(drop.messages.length, 2);
      await drop.commit({ deleted: uidsOf(drop), retrieved: [] });
      await drop.close();
      assert.deepEqual(await remaining('alice'), [late]);
      const again = await openFor(t, store, 'alice');
      assert.deepEqual(
        again.messages.map((m) => m.size),
        [23],
      );
      assert.deepEqual(await readUid(again, uidAt(again, 0)), late);
      assert.ok(!uidsOf(drop).includes(uidAt(again, 0)), 'a new message gets a new uid');
    });
  });
}
