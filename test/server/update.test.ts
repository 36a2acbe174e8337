import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Pop3Error, RespCode } from '../../src/errors.js';
import { MemoryStore } from '../../src/mailstore/memory.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { nextServerEvent, RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/start-server.js';
import { wrapStore } from '../helpers/wrap-store.js';

const MESSAGES = [
  'Subject: one\r\n\r\nfirst\r\n', // 14 + 2 + 7 = 23 octets, uid m1
  'Subject: two\r\n\r\nsecond\r\n', // 14 + 2 + 8 = 24 octets, uid m2
  'Subject: three\r\n\r\nthird\r\n', // 16 + 2 + 7 = 25 octets, uid m3
];

const uids = (store: MemoryStore): string[] => store.contents('alice').map((m) => m.uid);
const seen = (store: MemoryStore): string[] =>
  store
    .contents('alice')
    .filter((m) => m.isSeen)
    .map((m) => m.uid);

async function loggedIn(port: number): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(port);
  await client.login('alice', 'pw');
  return client;
}

test('DELE then QUIT deletes the marked messages', async (t) => {
  const { port, store } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  assert.equal(await client.command('DELE 3'), '+OK message 3 deleted');
  assert.deepEqual(uids(store), ['m1', 'm2', 'm3'], 'nothing is deleted before QUIT');
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (1 message left)');
  assert.deepEqual(uids(store), ['m2']);
  await client.closed();
});

test('QUIT after deleting everything reports 0 messages left', async (t) => {
  const { port, store } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  for (const n of [1, 2, 3]) assert.equal(await client.command(`DELE ${n}`), `+OK message ${n} deleted`);
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (0 messages left)');
  assert.deepEqual(uids(store), []);
});

test('DELE then a dropped connection deletes nothing and releases the maildrop', async (t) => {
  const { port, store, server } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await loggedIn(port);
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  const closed = await nextServerEvent(server, 'close', () => {
    client.socket.destroy();
  });
  assert.equal(closed.summary.deletedMessages, 0);
  assert.deepEqual(uids(store), ['m1', 'm2', 'm3']);
  const again = await Pop3TestClient.connect(port);
  t.after(() => {
    again.close();
  });
  assert.equal(await again.login('alice', 'pw'), '+OK alice has 3 messages (72 octets)');
});

test('a QUIT without its line end before the client closes is not a QUIT', async (t) => {
  const { port, store, server } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  const closed = nextServerEvent(server, 'close');
  client.socket.end('USER alice\r\nPASS pw\r\nDELE 1\r\nQUIT');
  const text = await client.closed();
  assert.equal(
    text.slice(text.indexOf('\r\n') + 2),
    '+OK send PASS\r\n+OK alice has 3 messages (72 octets)\r\n+OK message 1 deleted\r\n',
  );
  await closed;
  assert.deepEqual(uids(store), ['m1', 'm2', 'm3']);
});

test('DELE then RSET then QUIT deletes nothing', async (t) => {
  const { port, store } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  assert.equal(await client.command('RSET'), '+OK maildrop has 3 messages (72 octets)');
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (3 messages left)');
  assert.deepEqual(uids(store), ['m1', 'm2', 'm3']);
});

test('retrieved messages are marked seen only after QUIT; TOP does not mark them', async (t) => {
  const { port, store } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  for (const command of ['RETR 1', 'TOP 2 0', 'RETR 3']) {
    assert.match(await client.command(command), /^\+OK /);
    await client.readBody();
  }
  assert.equal(await client.command('DELE 3'), '+OK message 3 deleted');
  assert.deepEqual(seen(store), [], 'nothing is marked before UPDATE');
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (2 messages left)');
  assert.deepEqual(seen(store), ['m1']);
  assert.deepEqual(uids(store), ['m1', 'm2']);
});

test('messages retrieved in a session that ends without QUIT stay unseen', async (t) => {
  const { port, store, server } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await loggedIn(port);
  assert.equal(await client.command('RETR 2'), '+OK 24 octets');
  await client.readBody();
  await nextServerEvent(server, 'close', () => {
    client.close();
  });
  assert.deepEqual(seen(store), []);
});

test('a store that could not delete some messages makes QUIT answer -ERR [SYS/TEMP]', async (t) => {
  const memory = new MemoryStore({ alice: MESSAGES });
  const store = wrapStore(memory, {
    async commit(inner, changes) {
      // m1 resists deletion; the rest goes through.
      const deleted = changes.deleted.filter((uid) => uid !== 'm1');
      await inner.commit({ ...changes, deleted });
      return { notDeleted: changes.deleted.filter((uid) => uid === 'm1') };
    },
  });
  const { port, server } = await startServer(t, { store });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  const closed = await nextServerEvent(server, 'close', async () => {
    assert.equal(await client.command('QUIT'), '-ERR [SYS/TEMP] 1 of 2 messages could not be deleted');
    assert.equal(await client.closed(), '');
  });
  assert.deepEqual(uids(memory), ['m1', 'm3']);
  assert.equal(closed.summary.deletedMessages, 1);
  assert.equal(closed.summary.deletedBytes, 24);
  assert.equal(closed.summary.remainingMessages, 2);
});

test('a message removed behind the session gets -ERR [SYS/TEMP] and the session goes on', async (t) => {
  const { port, store } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  store.expunge('alice', 'm1');
  assert.equal(await client.command('RETR 1'), '-ERR [SYS/TEMP] message is no longer available');
  assert.equal(await client.command('TOP 1 0'), '-ERR [SYS/TEMP] message is no longer available');
  assert.equal(await client.command('NOOP'), '+OK');
  assert.equal(await client.command('RETR 2'), '+OK 24 octets');
  assert.equal((await client.readBody()).toString(), 'Subject: two\r\n\r\nsecond\r\n');
});

test('a store whose read() fails with a Pop3Error before the body: -ERR, and the session goes on', async (t) => {
  const memory = new MemoryStore({ alice: MESSAGES });
  const store = wrapStore(memory, {
    read(inner, uid, options) {
      if (uid === 'm2') return Promise.reject(new Pop3Error('storage is busy', RespCode.sysTemp));
      return inner.read(uid, options);
    },
  });
  const { port } = await startServer(t, { store });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('RETR 2'), '-ERR [SYS/TEMP] storage is busy');
  assert.equal(await client.command('RETR 1'), '+OK 23 octets');
  assert.equal((await client.readBody()).toString(), 'Subject: one\r\n\r\nfirst\r\n');
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (3 messages left)');
});

test('a store whose read() throws another error: -ERR [SYS/TEMP] internal error, closed, no details', async (t) => {
  const memory = new MemoryStore({ alice: MESSAGES });
  const store = wrapStore(memory, {
    read() {
      return Promise.reject(new Error('EIO: /var/mail/secret/path'));
    },
  });
  const { port, server } = await startServer(t, { store });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('DELE 3'), '+OK message 3 deleted');
  const closed = nextServerEvent(server, 'close');
  assert.equal(await client.command('RETR 1'), '-ERR [SYS/TEMP] internal error');
  assert.equal(await client.closed(), '');
  await closed;
  assert.deepEqual(uids(memory), ['m1', 'm2', 'm3']);
});

test('a store stream that fails in mid-body closes the connection without a terminator', async (t) => {
  const memory = new MemoryStore({ alice: MESSAGES });
  const store = wrapStore(memory, {
    read() {
      let isFirst = true;
      return Promise.resolve(
        new Readable({
          read() {
            if (isFirst) {
              isFirst = false;
              this.push(Buffer.from('Subject: one\r\n\r\nfir'));
            } else {
              this.destroy(new Error('disk read failed'));
            }
          },
        }),
      );
    },
  });
  const { port, server } = await startServer(t, { store });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  const closed = nextServerEvent(server, 'close');
  assert.equal(await client.command('RETR 1'), '+OK 23 octets');
  // What follows is the partial body and then the end of the connection: no ".", no -ERR.
  assert.equal(await client.closed(), 'Subject: one\r\n\r\nfir');
  const info = await closed;
  assert.equal(info.summary.retrievedMessages, 0);
  assert.deepEqual(uids(memory), ['m1', 'm2', 'm3']);
  assert.deepEqual(seen(memory), []);
});

test('a store whose commit throws: -ERR [SYS/TEMP] internal error, and the maildrop is released', async (t) => {
  const memory = new MemoryStore({ alice: MESSAGES });
  let commits = 0;
  const store = wrapStore(memory, {
    commit() {
      commits += 1;
      return commits === 1 ? Promise.reject(new Error('EROFS')) : Promise.resolve({ notDeleted: [] });
    },
  });
  const { port, server } = await startServer(t, { store });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  const closed = await nextServerEvent(server, 'close', async () => {
    assert.equal(await client.command('QUIT'), '-ERR [SYS/TEMP] internal error');
    assert.equal(await client.closed(), '');
  });
  assert.equal(closed.summary.deletedMessages, 0);
  assert.equal(server.stats.messagesDeleted, 0);
  assert.deepEqual(uids(memory), ['m1', 'm2', 'm3']);
  const again = await loggedIn(port);
  t.after(() => {
    again.close();
  });
  assert.equal(await again.command('STAT'), '+OK 3 72');
});
