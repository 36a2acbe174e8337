import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { nextServerEvent, RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/start-server.js';

const MESSAGES = [
  'Subject: one\r\n\r\nfirst\r\n', // 23 octets, m1
  'Subject: two\n\n.dot\nsecond\n', // LF ends and a dot line: 14 + 2 + 6 + 8 = 30 octets, m2
];

/** What the server sends after its greeting line. */
function afterGreeting(text: string): string {
  const end = text.indexOf('\r\n');
  assert.match(text.slice(0, end), /^\+OK Poplar POP3 server ready </);
  return text.slice(end + 2);
}

/**
 * Checks `actual` against the concatenation of `parts`, reporting the first part that differs
 * (the transcripts here are megabytes long; a whole-string diff would be unreadable).
 */
function assertTranscript(actual: string, parts: readonly string[]): void {
  let at = 0;
  for (const [i, part] of parts.entries()) {
    const got = actual.slice(at, at + part.length);
    if (got !== part) assert.equal(got.slice(0, 300), part.slice(0, 300), `reply ${i} at offset ${at}`);
    at += part.length;
  }
  assert.equal(actual.length, at, 'no bytes after the last reply');
}

const SESSION =
  'USER alice\r\nPASS pw\r\nSTAT\r\nLIST\r\nRETR 1\r\nRETR 2\r\nTOP 2 1\r\nUIDL\r\nDELE 1\r\nLIST 1\r\nRSET\r\nQUIT\r\n';
const SESSION_REPLIES = [
  '+OK send PASS\r\n',
  '+OK alice has 2 messages (53 octets)\r\n',
  '+OK 2 53\r\n',
  '+OK 2 messages (53 octets)\r\n1 23\r\n2 30\r\n.\r\n',
  '+OK 23 octets\r\nSubject: one\r\n\r\nfirst\r\n.\r\n',
  '+OK 30 octets\r\nSubject: two\r\n\r\n..dot\r\nsecond\r\n.\r\n',
  '+OK top of message follows\r\nSubject: two\r\n\r\n..dot\r\n.\r\n',
  '+OK unique-id listing follows\r\n1 m1\r\n2 m2\r\n.\r\n',
  '+OK message 1 deleted\r\n',
  '-ERR message 1 already deleted\r\n',
  '+OK maildrop has 2 messages (53 octets)\r\n',
  '+OK Poplar signing off (2 messages left)\r\n',
];

test('many commands in one write get their replies strictly in order', async (t) => {
  const { port } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write(SESSION);
  assertTranscript(afterGreeting(await client.closed()), SESSION_REPLIES);
});

test('a whole session sent one byte per write gets the same replies', async (t) => {
  const { port } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.writeByteByByte(SESSION);
  assertTranscript(afterGreeting(await client.closed()), SESSION_REPLIES);
});

test('byte by byte with LF-only line ends and commands split around the CR', async (t) => {
  const { port } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.writeByteByByte('user alice\npass pw\r\nlist 2\nRETR 1\r\nquit\n');
  assertTranscript(afterGreeting(await client.closed()), [
    '+OK send PASS\r\n',
    '+OK alice has 2 messages (53 octets)\r\n',
    '+OK 2 30\r\n',
    '+OK 23 octets\r\nSubject: one\r\n\r\nfirst\r\n.\r\n',
    '+OK Poplar signing off (2 messages left)\r\n',
  ]);
});

test('200 pipelined RETRs in one write come back complete and in order', async (t) => {
  // The fifth message is large, so the replies fill the socket buffers while commands wait.
  const big = `Subject: big\r\n\r\n${'.x'.repeat(40)}\r\n`.repeat(2500); // (16 + 82) * 2500 = 245000 octets
  const small = [1, 2, 3, 4].map((n) => `Subject: ${n}\r\n\r\n.line ${n}\n`); // 12 + 2 + 9 = 23 octets
  const { port } = await startServer(t, { mailboxes: { alice: [...small, big] } });
  const wireOf = (n: number): string =>
    n === 5
      ? `+OK 245000 octets\r\n${`Subject: big\r\n\r\n.${'.x'.repeat(40)}\r\n`.repeat(2500)}.\r\n`
      : `+OK 23 octets\r\nSubject: ${n}\r\n\r\n..line ${n}\r\n.\r\n`;
  const order = Array.from({ length: 200 }, (_, i) => ((i * 7) % 5) + 1);
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write(`USER alice\r\nPASS pw\r\n${order.map((n) => `RETR ${n}\r\n`).join('')}QUIT\r\n`);
  assertTranscript(afterGreeting(await client.closed()), [
    '+OK send PASS\r\n',
    '+OK alice has 5 messages (245092 octets)\r\n',
    ...order.map(wireOf),
    '+OK Poplar signing off (5 messages left)\r\n',
  ]);
});

test('a client that shuts down its sending side after its commands still gets every reply', async (t) => {
  const { port, store } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  // The failed login takes a timer turn (authFailureDelayMs is 0, not absent), so the server
  // reads the client's end of stream long before it has answered everything.
  client.socket.end('USER alice\r\nPASS wrong\r\nUSER alice\r\nPASS pw\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n');
  assertTranscript(afterGreeting(await client.closed()), [
    '+OK send PASS\r\n',
    '-ERR [AUTH] invalid user name or password\r\n',
    '+OK send PASS\r\n',
    '+OK alice has 2 messages (53 octets)\r\n',
    '+OK 23 octets\r\nSubject: one\r\n\r\nfirst\r\n.\r\n',
    '+OK message 1 deleted\r\n',
    '+OK Poplar signing off (1 message left)\r\n',
  ]);
  assert.deepEqual(
    store.contents('alice').map((m) => m.uid),
    ['m2'],
  );
});

test('commands pipelined after QUIT are not run', async (t) => {
  const { port, store } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write('QUIT\r\nUSER alice\r\nPASS pw\r\nDELE 1\r\nQUIT\r\n');
  assert.equal(afterGreeting(await client.closed()), '+OK Poplar signing off\r\n');
  assert.equal(store.contents('alice').length, 2);
});

test('pipelined RETRs to a client that reads nothing: the server stops at full buffers, then drops it', async (t) => {
  // 800 RETRs of a 64 KiB message: 52 MB of replies, several times what the socket buffers of
  // both ends (a few MiB each on loopback) and the replies held back for pipelining
  // (MAX_HELD_BYTES) can take.
  const message = `Subject: m\r\n\r\n${'y'.repeat(78)}\r\n`.repeat(800);
  const { server, port } = await startServer(t, {
    mailboxes: { alice: [message] },
    limits: { writeStallTimeoutMs: 200 },
  });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  assert.match(await client.login('alice', 'pw'), /^\+OK/);
  client.socket.pause();
  const closed = await nextServerEvent(server, 'close', () => {
    client.socket.write('RETR 1\r\n'.repeat(800));
  });
  const total = 800 * message.length;
  const answered = closed.summary.retrievedMessages;
  assert.ok(answered > 0 && answered < 200, `${answered} of 800 RETRs answered before the server stopped`);
  assert.ok(server.stats.bytesOut > 0, 'some replies went out');
  assert.ok(
    server.stats.bytesOut < total / 4,
    `the server stopped at ${server.stats.bytesOut} of ${total} bytes`,
  );
});
