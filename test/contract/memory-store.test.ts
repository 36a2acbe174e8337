import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../../src/mailstore/memory.js';
import { describeMailStore } from './mailstore.contract.js';

describeMailStore('MemoryStore', (_t, mailboxes) => {
  const store = new MemoryStore(mailboxes);
  return Promise.resolve({
    store,
    remaining: (user) => Promise.resolve(store.contents(user).map((m) => m.bytes)),
    expunge: (user, uid) => {
      store.expunge(user, uid);
      return Promise.resolve();
    },
    deliver: (user, message) => {
      store.deliver(user, message);
      return Promise.resolve();
    },
  });
});

test('MemoryStore marks retrieved messages seen, and only those', async () => {
  const store = new MemoryStore({ alice: ['a\n', 'b\n', 'c\n'] });
  const drop = await store.open({ name: 'alice' });
  const [one, , three] = drop.messages.map((m) => m.uid);
  assert.ok(one !== undefined && three !== undefined);
  await drop.commit({ deleted: [three], retrieved: [one, three] });
  await drop.close();
  assert.deepEqual(
    store.contents('alice').map((m) => [m.bytes.toString(), m.isSeen]),
    [
      ['a\n', true],
      ['b\n', false],
    ],
  );
});
