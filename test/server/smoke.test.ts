import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dialog } from '../helpers/pop3-client.js';
import { startServer } from '../helpers/start-server.js';

test('a full session: login, STAT, LIST, RETR, DELE, QUIT deletes', async (t) => {
  const { port, store } = await startServer(t, {
    mailboxes: { alice: ['Subject: a\n\nhello\n', 'Subject: b\r\n\r\n.dot\r\n'] },
  });
  const replies = await dialog(port, ['USER alice', 'PASS pw', 'STAT', 'LIST', 'RETR 2', 'DELE 1', 'QUIT']);
  assert.match(replies[0] ?? '', /^\+OK Poplar POP3 server ready <.+@.+>$/);
  assert.deepEqual(replies.slice(1), [
    '+OK send PASS',
    '+OK alice has 2 messages (41 octets)',
    '+OK 2 41',
    '+OK 2 messages (41 octets)\n1 21\n2 20',
    '+OK 20 octets\nSubject: b\n\n.dot',
    '+OK message 1 deleted',
    '+OK Poplar signing off (1 message left)',
  ]);
  assert.equal(store.contents('alice').length, 1);
});
