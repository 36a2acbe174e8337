import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../../src/mailstore/memory.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { nextServerEvent, RawClient } from '../helpers/raw-client.js';
import { embed, startServer } from '../helpers/start-server.js';
import { gate, untilAborted, wrapStore } from '../helpers/wrap-store.js';

const MESSAGES = ['Subject: one\r\n\r\nfirst\r\n', 'Subject: two\r\n\r\nsecond\r\n']; // 23 + 24 octets

const uids = (store: MemoryStore, user = 'alice'): string[] => store.contents(user).map((m) => m.uid);

/** A store whose RETR waits until the test opens the gate (or the session is aborted). */
function slowStore(memory: MemoryStore) {
  const released = gate();
  const readStarted = gate();
  let closes = 0;
  const store = wrapStore(memory, {
    async read(inner, uid, options) {
      readStarted.open();
      await untilAborted(released.promise, options.signal);
      return inner.read(uid, options);
    },
    close(inner) {
      closes += 1;
      return inner.close();
    },
  });
  return { store, release: released.open, readStarted: readStarted.promise, closes: () => closes };
}

test('close(): an idle logged-in session is told and closed, and its DELEs are not applied', async (t) => {
  const { port, server, store } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await Pop3TestClient.connect(port);
  const waiting = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
    waiting.close();
  });
  await client.login('alice', 'pw');
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  const closed = nextServerEvent(server, 'close');
  await server.close({ graceMs: 60_000 });
  assert.equal(await client.readLine(), '-ERR [SYS/TEMP] server shutting down');
  assert.equal(await client.closed(), '');
  assert.equal(await waiting.readLine(), '-ERR [SYS/TEMP] server shutting down');
  assert.equal(await waiting.closed(), '');
  assert.equal((await closed).summary.deletedMessages, 0);
  assert.deepEqual(uids(store), ['m1', 'm2']);
  assert.equal(server.connectionCount, 0);
  assert.equal(server.stats.connectionsOpen, 0);
});

test('close() with no connections resolves, twice, and listen() afterwards is refused', async (t) => {
  const { server } = await startServer(t);
  await server.close({ graceMs: 0 });
  await server.close({ graceMs: 0 });
  await assert.rejects(server.listen({ host: '127.0.0.1', port: 0 }), { message: 'server is closing' });
});

test('close() lets a running command finish, then says goodbye; new connections are refused', async (t) => {
  const memory = new MemoryStore({ alice: MESSAGES });
  const slow = slowStore(memory);
  const { port, server } = await startServer(t, { store: slow.store });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.login('alice', 'pw');
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  client.send('RETR 1');
  await slow.readStarted;

  let isClosed = false;
  const closing = server.close({ graceMs: 600_000 }).then(() => {
    isClosed = true;
  });
  // The listener is closed at once: a new connection is refused by the system.
  await assert.rejects(Pop3TestClient.connect(port), { code: 'ECONNREFUSED' });
  assert.equal(isClosed, false);
  assert.equal(client.isEnded, false);

  slow.release();
  assert.equal(await client.readLine(), '+OK 23 octets');
  assert.equal((await client.readBody()).toString(), 'Subject: one\r\n\r\nfirst\r\n');
  assert.equal(await client.readLine(), '-ERR [SYS/TEMP] server shutting down');
  assert.equal(await client.closed(), '');
  await closing;
  assert.deepEqual(uids(memory), ['m1', 'm2']);
  assert.deepEqual(
    memory.contents('alice').map((m) => m.isSeen),
    [false, false],
  );
  assert.equal(slow.closes(), 1);
});

test('close() drops a session whose command outlasts graceMs, and releases its maildrop', async (t) => {
  const memory = new MemoryStore({ alice: MESSAGES });
  const slow = slowStore(memory);
  const { port, server } = await startServer(t, { store: slow.store });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.login('alice', 'pw');
  client.send('RETR 1');
  await slow.readStarted;
  const closed = nextServerEvent(server, 'close');
  await server.close({ graceMs: 10 }); // the store never answers: only the grace period ends this
  assert.equal(await client.closed(), '');
  assert.equal((await closed).summary.retrievedMessages, 0);
  assert.equal(slow.closes(), 1);
  assert.equal(server.connectionCount, 0);
});

test('a connection handed to handleConnection() after close() started is refused with -ERR', async (t) => {
  const { server } = await startServer(t);
  const address = await embed(t, server);
  await server.close({ graceMs: 0 });
  const refused = nextServerEvent(server, 'refuse');
  const client = await RawClient.connect(address.port);
  t.after(() => {
    client.close();
  });
  assert.deepEqual(await refused, { remoteAddress: '127.0.0.1', reason: 'server shutting down' });
  assert.equal(await client.closed(), '-ERR [SYS/TEMP] server shutting down\r\n');
});

test('endSessionsOf(user) ends that user’s sessions only, without UPDATE', async (t) => {
  const { port, server, store } = await startServer(t, { mailboxes: { alice: MESSAGES, bob: MESSAGES } });
  const alice = await Pop3TestClient.connect(port);
  const bob = await Pop3TestClient.connect(port);
  const pending = await Pop3TestClient.connect(port);
  t.after(() => {
    alice.close();
    bob.close();
    pending.close();
  });
  await alice.login('alice', 'pw');
  await bob.login('bob', 'secret');
  assert.equal(await pending.command('USER alice'), '+OK send PASS');
  assert.equal(await alice.command('DELE 1'), '+OK message 1 deleted');
  assert.equal(await bob.command('DELE 1'), '+OK message 1 deleted');

  assert.equal(server.endSessionsOf('nobody'), 0);
  const closed = nextServerEvent(server, 'close');
  assert.equal(server.endSessionsOf('alice'), 1);
  assert.equal(await alice.readLine(), '-ERR [SYS/TEMP] session ended by the administrator');
  assert.equal(await alice.closed(), '');
  assert.equal((await closed).user, 'alice');
  assert.deepEqual(uids(store, 'alice'), ['m1', 'm2']);

  // The others go on; the one that only sent USER alice was not logged in as alice.
  assert.equal(await bob.command('NOOP'), '+OK');
  assert.equal(await pending.command('PASS pw'), '+OK alice has 2 messages (47 octets)');
  assert.equal(server.endSessionsOf('bob', 'your password was changed'), 1);
  assert.equal(await bob.readLine(), '-ERR [SYS/TEMP] your password was changed');
  assert.equal(await bob.closed(), '');
  assert.deepEqual(uids(store, 'bob'), ['m3', 'm4']);
  assert.equal(await pending.command('STAT'), '+OK 2 47');
});

test('endSessionsOf() during a running command ends the session after the command', async (t) => {
  const memory = new MemoryStore({ alice: MESSAGES });
  const slow = slowStore(memory);
  const { port, server } = await startServer(t, { store: slow.store });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.login('alice', 'pw');
  client.send('RETR 2');
  await slow.readStarted;
  assert.equal(server.endSessionsOf('alice'), 1);
  slow.release();
  assert.equal(await client.readLine(), '+OK 24 octets');
  assert.equal((await client.readBody()).toString(), 'Subject: two\r\n\r\nsecond\r\n');
  assert.equal(await client.readLine(), '-ERR [SYS/TEMP] session ended by the administrator');
  assert.equal(await client.closed(), '');
});
