// A session whose maildrop lock is lost (a lease that could not be refreshed, a lock another node
// broke as stale) ends without UPDATE: the client is told, the connection closes, nothing is deleted.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { StaticAuthenticator } from '../../src/auth/static.js';
import { LOCK_FILE } from '../../src/mailstore/maildir/lock.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { MemoryStore } from '../../src/mailstore/memory.js';
import type { Maildrop, MaildropWithLoss, MailStore } from '../../src/mailstore/types.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';

const MESSAGES = ['Subject: one\r\n\r\nfirst\r\n', 'Subject: two\r\n\r\nsecond\r\n'];

/** The memory store's maildrops, each with a `lost` signal the test aborts. */
function losableStore(inner: MemoryStore): MailStore & { losses: AbortController[] } {
  const losses: AbortController[] = [];
  return {
    losses,
    async open(user): Promise<Maildrop> {
      const drop = await inner.open(user);
      const loss = new AbortController();
      losses.push(loss);
      const losable: MaildropWithLoss = {
        messages: drop.messages,
        lost: loss.signal,
        read: (uid, options) => drop.read(uid, options),
        commit: (changes) => drop.commit(changes),
        close: () => drop.close(),
      };
      return losable;
    },
  };
}

test('a lost maildrop ends an idle session at once with -ERR [SYS/TEMP], without UPDATE', async (t) => {
  const inner = new MemoryStore({ alice: MESSAGES });
  const store = losableStore(inner);
  const { port } = await startServer(t, { store });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.login('alice', 'pw');
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  store.losses[0]?.abort();
  assert.equal(await client.readLine(), '-ERR [SYS/TEMP] maildrop lock lost');
  assert.equal(await client.closed(), '');
  assert.deepEqual(
    inner.contents('alice').map((m) => m.uid),
    ['m1', 'm2'],
    'nothing deleted',
  );
  // The lock was released: the user can log in again.
  const again = await Pop3TestClient.connect(port);
  t.after(() => {
    again.close();
  });
  assert.match(await again.login('alice', 'pw'), /^\+OK alice has 2 messages/);
});

test('a maildrop lost while the login was opening it: the session ends after the login reply', async (t) => {
  const inner = new MemoryStore({ alice: MESSAGES });
  const store: MailStore = {
    async open(user) {
      const drop = await inner.open(user);
      return {
        ...drop,
        lost: AbortSignal.abort(),
        read: drop.read.bind(drop),
        commit: drop.commit.bind(drop),
        close: drop.close.bind(drop),
      };
    },
  };
  const { port } = await startServer(t, { store });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.send('USER alice');
  assert.match(await client.readLine(), /^\+OK/);
  client.send('PASS pw');
  assert.match(await client.readLine(), /^\+OK alice has 2 messages/);
  assert.equal(await client.readLine(), '-ERR [SYS/TEMP] maildrop lock lost');
  await client.closed();
});

test('Maildir: a session whose lock file another node broke ends without UPDATE; the new lock stays', async (t) => {
  const root = await tempDir(t);
  const { dir } = await buildMaildir(root, 'alice', [{ content: 'Subject: x\n\nbody\n' }]);
  const store = new MaildirStore({ root, lockTtlMs: 300 });
  const { port } = await startServer(t, {
    store,
    authenticator: new StaticAuthenticator({ alice: 'pw' }),
  });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.login('alice', 'pw');
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  const before = await readdir(join(dir, 'cur'));
  const thief = '4242 12345 other.node 0123456789abcdef\n';
  await writeFile(join(dir, LOCK_FILE), thief);
  assert.equal(await client.readLine(), '-ERR [SYS/TEMP] maildrop lock lost');
  await client.closed();
  assert.deepEqual(await readdir(join(dir, 'cur')), before);
  assert.equal(await readFile(join(dir, LOCK_FILE), 'utf8'), thief);
});
