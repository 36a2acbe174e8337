import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { apopDigest } from '../../src/auth/digests.js';
import { StaticAuthenticator } from '../../src/auth/static.js';
import { dialog, Pop3TestClient } from '../helpers/pop3-client.js';
import { nextServerEvent, RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/start-server.js';

// Sizes are counted by hand: every line end as CRLF, a missing final line end added.
const ALICE = [
  // 21 + 14 + 2 + 3 * 8 = 61 octets
  'From: a@example.org\r\nSubject: one\r\n\r\nline 1\r\nline 2\r\nline 3\r\n',
  // LF line ends, lines starting with dots, no final line end: 14 + 2 + 9 + 7 + 3 + 5 = 40 octets
  'Subject: two\n\n.hidden\n..two\n.\nend',
  // All header, no blank line, no final line end: 16 + 13 = 29 octets
  'Subject: three\r\nX-Flag: yes',
];
const BOB = [
  // Empty: 0 octets
  '',
  // A dot on the very first line and a lone CR, which is data: 18 + 9 = 27 octets
  '.starts with dot\r\nlone\rCR\r\n',
];
const MAILBOXES = { alice: ALICE, bob: BOB };

const GREETING = /^\+OK Poplar POP3 server ready (<[0-9a-f]{24}\.\d+@pop\.test>)$/;

async function start(t: Parameters<typeof startServer>[0], limits = {}) {
  return startServer(t, { mailboxes: MAILBOXES, hostname: 'pop.test', limits });
}

/** Sends one command and returns its whole reply as sent on the wire: stuffed, with CRLFs. */
async function wire(client: Pop3TestClient, command: string, isMultiline: boolean): Promise<string> {
  const status = await client.command(command);
  let out = `${status}\r\n`;
  if (!isMultiline || !status.startsWith('+OK')) return out;
  for (;;) {
    const line = await client.readLine();
    out += `${line}\r\n`;
    if (line === '.') return out;
  }
}

async function loggedIn(port: number, user = 'alice', password = 'pw'): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(port);
  await client.login(user, password);
  return client;
}

test('USER then PASS with the right password logs in and reports the maildrop', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, ['USER alice', 'PASS pw']);
  assert.match(replies[0] ?? '', GREETING);
  assert.deepEqual(replies.slice(1), ['+OK send PASS', '+OK alice has 3 messages (130 octets)']);
});

test('a wrong password and an unknown user get the same [AUTH] reply; USER is always +OK', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, [
    'USER alice',
    'PASS nope',
    'USER nobody',
    'PASS pw',
    'USER bob',
    'PASS secret',
  ]);
  assert.deepEqual(replies.slice(1), [
    '+OK send PASS',
    '-ERR [AUTH] invalid user name or password',
    '+OK send PASS',
    '-ERR [AUTH] invalid user name or password',
    '+OK send PASS',
    '+OK bob has 2 messages (27 octets)',
  ]);
});

test('PASS without USER, and PASS again after a failed PASS, is refused', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, [
    'PASS pw',
    'USER alice',
    'PASS bad',
    'PASS pw',
    'USER alice',
    'PASS',
    'PASS pw',
  ]);
  assert.deepEqual(replies.slice(1), [
    '-ERR send USER first',
    '+OK send PASS',
    '-ERR [AUTH] invalid user name or password',
    '-ERR send USER first',
    '+OK send PASS',
    '-ERR PASS needs a password',
    '-ERR send USER first',
  ]);
});

test('the last USER counts, and the rest of the PASS line, spaces included, is the password', async (t) => {
  const { port } = await startServer(t, {
    authenticator: new StaticAuthenticator({ carol: ' two  words ' }),
    mailboxes: { carol: ['x\r\n'] },
  });
  const replies = await dialog(port, [
    'USER nobody',
    'USER carol',
    'PASS two  words',
    'USER carol',
    'PASS  two  words ',
  ]);
  assert.deepEqual(replies.slice(1), [
    '+OK send PASS',
    '+OK send PASS',
    '-ERR [AUTH] invalid user name or password',
    '+OK send PASS',
    '+OK carol has 1 message (3 octets)',
  ]);
});

test('USER argument checks', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, ['USER', `USER ${'u'.repeat(256)}`, `USER ${'u'.repeat(255)}`]);
  assert.deepEqual(replies.slice(1), ['-ERR USER needs a name', '-ERR user name too long', '+OK send PASS']);
});

test('QUIT in the AUTHORIZATION state signs off and closes', async (t) => {
  const { port } = await start(t);
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off');
  assert.equal(await client.closed(), '');
});

test('QUIT in the TRANSACTION state signs off with the count left and closes', async (t) => {
  const { port } = await start(t);
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (3 messages left)');
  assert.equal(await client.closed(), '');
});

test('STAT, LIST and LIST n', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, ['USER alice', 'PASS pw', 'STAT', 'LIST', 'LIST 1', 'LIST 2', 'LIST 3']);
  assert.deepEqual(replies.slice(3), [
    '+OK 3 130',
    '+OK 3 messages (130 octets)\n1 61\n2 40\n3 29',
    '+OK 1 61',
    '+OK 2 40',
    '+OK 3 29',
  ]);
});

test('STAT and LIST of an empty maildrop', async (t) => {
  const { port } = await startServer(t, { mailboxes: {} });
  const replies = await dialog(port, ['USER alice', 'PASS pw', 'STAT', 'LIST', 'UIDL', 'LIST 1']);
  assert.deepEqual(replies.slice(2), [
    '+OK alice has 0 messages (0 octets)',
    '+OK 0 0',
    '+OK 0 messages (0 octets)',
    '+OK unique-id listing follows',
    '-ERR no such message, only 0 in maildrop',
  ]);
});

test('RETR sends the message byte-stuffed, with CRLF line ends, its size in CRLF octets', async (t) => {
  const { port } = await start(t);
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  assert.equal(
    await wire(client, 'RETR 1', true),
    '+OK 61 octets\r\nFrom: a@example.org\r\nSubject: one\r\n\r\nline 1\r\nline 2\r\nline 3\r\n.\r\n',
  );
  assert.equal(
    await wire(client, 'RETR 2', true),
    '+OK 40 octets\r\nSubject: two\r\n\r\n..hidden\r\n...two\r\n..\r\nend\r\n.\r\n',
  );
  assert.equal(await wire(client, 'RETR 3', true), '+OK 29 octets\r\nSubject: three\r\nX-Flag: yes\r\n.\r\n');
});

test('the size RETR announces is the length of the un-stuffed body', async (t) => {
  const { port } = await start(t);
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  for (const n of [1, 2, 3]) {
    const listed = await client.command(`LIST ${n}`);
    const status = await client.command(`RETR ${n}`);
    const body = await client.readBody();
    assert.equal(listed, `+OK ${n} ${body.length}`);
    assert.equal(status, `+OK ${body.length} octets`);
  }
});

test('RETR of an empty message, and of one starting with a dot and holding a lone CR', async (t) => {
  const { port } = await start(t);
  const client = await loggedIn(port, 'bob', 'secret');
  t.after(() => {
    client.close();
  });
  assert.equal(await wire(client, 'RETR 1', true), '+OK 0 octets\r\n.\r\n');
  assert.equal(await wire(client, 'RETR 2', true), '+OK 27 octets\r\n..starts with dot\r\nlone\rCR\r\n.\r\n');
  assert.equal(await wire(client, 'TOP 1 0', true), '+OK top of message follows\r\n.\r\n');
});

test('RETR of messages of 64 bytes or more whose first line starts with a dot (the WebAssembly stuffing path)', async (t) => {
  const messages = [
    // 59 + 2 + 12 + 5 = 78 octets
    '.dot-led first line, long enough for the WebAssembly path\r\n\r\n..two dots\r\nend\r\n',
    // 72 bytes stored; as sent, every LF a CRLF: 67 + 3 + 5 = 75 octets
    '.dot-led first line with bare LF ends, stored as 64 bytes or more\n.\nend\n',
  ];
  // The stuffer takes chunks of 64 bytes or more to WebAssembly; the store hands each message over whole.
  for (const message of messages) assert.ok(Buffer.byteLength(message) >= 64);
  const { port } = await startServer(t, { mailboxes: { alice: messages } });
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  assert.equal(
    await wire(client, 'RETR 1', true),
    '+OK 78 octets\r\n..dot-led first line, long enough for the WebAssembly path\r\n\r\n...two dots\r\nend\r\n.\r\n',
  );
  assert.equal(
    await wire(client, 'RETR 2', true),
    '+OK 75 octets\r\n..dot-led first line with bare LF ends, stored as 64 bytes or more\r\n..\r\nend\r\n.\r\n',
  );
});

test('DELE marks a message: it vanishes from STAT, LIST and UIDL, numbers do not shift', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, [
    'USER alice',
    'PASS pw',
    'DELE 1',
    'STAT',
    'LIST',
    'UIDL',
    'LIST 3',
    'UIDL 3',
    'RETR 2',
  ]);
  assert.deepEqual(replies.slice(3), [
    '+OK message 1 deleted',
    '+OK 2 69',
    '+OK 2 messages (69 octets)\n2 40\n3 29',
    '+OK unique-id listing follows\n2 m2\n3 m3',
    '+OK 3 29',
    '+OK 3 m3',
    '+OK 40 octets\nSubject: two\n\n.hidden\n..two\n.\nend',
  ]);
});

test('LIST n, UIDL n, RETR, TOP and DELE on a deleted message are refused', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, [
    'USER alice',
    'PASS pw',
    'DELE 2',
    'LIST 2',
    'UIDL 2',
    'RETR 2',
    'TOP 2 0',
    'DELE 2',
  ]);
  assert.deepEqual(replies.slice(4), [
    '-ERR message 2 already deleted',
    '-ERR message 2 already deleted',
    '-ERR message 2 already deleted',
    '-ERR message 2 already deleted',
    '-ERR message 2 already deleted',
  ]);
});

test('NOOP, and RSET undeletes and reports the counts', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, [
    'USER alice',
    'PASS pw',
    'NOOP',
    'DELE 1',
    'DELE 3',
    'STAT',
    'RSET',
    'STAT',
    'LIST 1',
    'RSET',
  ]);
  assert.deepEqual(replies.slice(3), [
    '+OK',
    '+OK message 1 deleted',
    '+OK message 3 deleted',
    '+OK 1 40',
    '+OK maildrop has 3 messages (130 octets)',
    '+OK 3 130',
    '+OK 1 61',
    '+OK maildrop has 3 messages (130 octets)',
  ]);
});

test('TOP n 0, TOP n k, and k larger than the body', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, ['USER alice', 'PASS pw', 'TOP 1 0', 'TOP 1 2', 'TOP 1 100', 'TOP 1 3']);
  const head = '+OK top of message follows\nFrom: a@example.org\nSubject: one\n';
  assert.deepEqual(replies.slice(3), [
    head,
    `${head}\nline 1\nline 2`,
    `${head}\nline 1\nline 2\nline 3`,
    `${head}\nline 1\nline 2\nline 3`,
  ]);
});

test('TOP of a message without a blank line sends the whole header; TOP stuffs and ends lines', async (t) => {
  const { port } = await start(t);
  const client = await loggedIn(port);
  t.after(() => {
    client.close();
  });
  const allHeader = '+OK top of message follows\r\nSubject: three\r\nX-Flag: yes\r\n.\r\n';
  assert.equal(await wire(client, 'TOP 3 0', true), allHeader);
  assert.equal(await wire(client, 'TOP 3 5', true), allHeader);
  assert.equal(
    await wire(client, 'TOP 2 0', true),
    '+OK top of message follows\r\nSubject: two\r\n\r\n.\r\n',
  );
  assert.equal(
    await wire(client, 'TOP 2 3', true),
    '+OK top of message follows\r\nSubject: two\r\n\r\n..hidden\r\n...two\r\n..\r\n.\r\n',
  );
  // The last body line has no line end in the store: TOP adds one.
  assert.equal(
    await wire(client, 'TOP 2 9', true),
    '+OK top of message follows\r\nSubject: two\r\n\r\n..hidden\r\n...two\r\n..\r\nend\r\n.\r\n',
  );
});

test('UIDL and UIDL n', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, ['USER alice', 'PASS pw', 'UIDL', 'UIDL 1', 'UIDL 3']);
  assert.deepEqual(replies.slice(3), [
    '+OK unique-id listing follows\n1 m1\n2 m2\n3 m3',
    '+OK 1 m1',
    '+OK 3 m3',
  ]);
});

test('CAPA lists exactly what works, with USER only before login', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, ['CAPA', 'USER alice', 'PASS pw', 'CAPA', 'CAPA now']);
  assert.deepEqual(replies.slice(1), [
    [
      '+OK Capability list follows',
      'TOP',
      'UIDL',
      'USER',
      'SASL SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'PIPELINING',
      'UTF8 USER',
      'LANG',
      'IMPLEMENTATION Poplar',
    ].join('\n'),
    '+OK send PASS',
    '+OK alice has 3 messages (130 octets)',
    [
      '+OK Capability list follows',
      'TOP',
      'UIDL',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'PIPELINING',
      'UTF8 USER',
      'LANG',
      'IMPLEMENTATION Poplar',
    ].join('\n'),
    '-ERR CAPA takes no arguments',
  ]);
});

test('CAPA IMPLEMENTATION carries the configured text', async (t) => {
  const { port } = await startServer(t, { implementation: 'Poplar-test 9.9' });
  const replies = await dialog(port, ['CAPA']);
  assert.equal(replies[1]?.split('\n').at(-1), 'IMPLEMENTATION Poplar-test 9.9');
});

test('keywords are case-insensitive', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, [
    'user alice',
    'pAsS pw',
    'Stat',
    'list 2',
    'retr 3',
    'Uidl 1',
    'dele 1',
    'quit',
  ]);
  assert.deepEqual(replies.slice(1), [
    '+OK send PASS',
    '+OK alice has 3 messages (130 octets)',
    '+OK 3 130',
    '+OK 2 40',
    '+OK 29 octets\nSubject: three\nX-Flag: yes',
    '+OK 1 m1',
    '+OK message 1 deleted',
    '+OK Poplar signing off (2 messages left)',
  ]);
});

test('a lone LF ends a command line as CRLF does', async (t) => {
  const { port } = await start(t);
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write('USER alice\nPASS pw\r\nSTAT\nLIST 2\nQUIT\n');
  const text = await client.closed();
  assert.equal(
    text.slice(text.indexOf('\r\n') + 2),
    '+OK send PASS\r\n+OK alice has 3 messages (130 octets)\r\n+OK 3 130\r\n+OK 2 40\r\n' +
      '+OK Poplar signing off (3 messages left)\r\n',
  );
});

test('message-number and argument checks', async (t) => {
  const { port } = await start(t, { maxProtocolErrors: 1000 });
  const cases: [command: string, reply: string][] = [
    ['LIST x', '-ERR invalid message number'],
    ['LIST 1x', '-ERR invalid message number'],
    ['LIST -1', '-ERR invalid message number'],
    ['LIST +1', '-ERR invalid message number'],
    ['LIST 0', '-ERR no such message, only 3 in maildrop'],
    ['LIST 4', '-ERR no such message, only 3 in maildrop'],
    ['LIST 4294967297', '-ERR no such message, only 3 in maildrop'],
    ['LIST 99999999999', '-ERR invalid message number'],
    ['LIST 1 2', '-ERR too many arguments'],
    ['LIST 01', '+OK 1 61'],
    ['LIST  2 ', '+OK 2 40'],
    ['UIDL x', '-ERR invalid message number'],
    ['UIDL 0', '-ERR no such message, only 3 in maildrop'],
    ['UIDL 1 2', '-ERR too many arguments'],
    ['RETR', '-ERR message number required'],
    ['RETR x', '-ERR invalid message number'],
    ['RETR 0', '-ERR no such message, only 3 in maildrop'],
    ['RETR 4', '-ERR no such message, only 3 in maildrop'],
    ['RETR -2', '-ERR invalid message number'],
    ['RETR 1 2', '-ERR RETR takes one message number'],
    ['RETR 1 2 3', '-ERR too many arguments'],
    ['DELE', '-ERR message number required'],
    ['DELE y', '-ERR invalid message number'],
    ['DELE 0', '-ERR no such message, only 3 in maildrop'],
    ['DELE 9', '-ERR no such message, only 3 in maildrop'],
    ['DELE 1 1', '-ERR DELE takes one message number'],
    ['TOP', '-ERR usage: TOP msg n'],
    ['TOP 1', '-ERR usage: TOP msg n'],
    ['TOP x 1', '-ERR invalid message number'],
    ['TOP 0 1', '-ERR no such message, only 3 in maildrop'],
    ['TOP 4 1', '-ERR no such message, only 3 in maildrop'],
    ['TOP 1 -1', '-ERR line count must be a non-negative number'],
    ['TOP 1 x', '-ERR line count must be a non-negative number'],
    ['TOP 1 1 1', '-ERR too many arguments'],
    ['STAT 1', '-ERR STAT takes no arguments'],
    ['NOOP x', '-ERR NOOP takes no arguments'],
    ['RSET x', '-ERR RSET takes no arguments'],
    ['QUIT now', '-ERR QUIT takes no arguments'],
  ];
  const replies = await dialog(port, ['USER alice', 'PASS pw', ...cases.map(([c]) => c), 'STAT']);
  assert.deepEqual(
    replies.slice(3).map((r, i) => [cases[i]?.[0] ?? 'STAT', r]),
    [...cases, ['STAT', '+OK 3 130']],
  );
});

test('unknown, empty and malformed commands get -ERR in both states', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, [
    'FOO',
    'XTND XMIT',
    '',
    '123',
    'USER alice',
    'PASS pw',
    'FOO bar',
    'STAT',
  ]);
  assert.deepEqual(replies.slice(1), [
    '-ERR unknown command FOO',
    '-ERR unknown command XTND',
    '-ERR empty command',
    '-ERR invalid command',
    '+OK send PASS',
    '+OK alice has 3 messages (130 octets)',
    '-ERR unknown command FOO',
    '+OK 3 130',
  ]);
});

test('commands with invalid bytes get -ERR', async (t) => {
  const { port } = await start(t);
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write(
    Buffer.concat([Buffer.from('USER \xff\xfe\r\n', 'latin1'), Buffer.from('USER a\x01b\r\nQUIT\r\n')]),
  );
  const text = await client.closed();
  assert.equal(
    text.slice(text.indexOf('\r\n') + 2),
    '-ERR command is not valid UTF-8\r\n-ERR control characters in command\r\n+OK Poplar signing off\r\n',
  );
});

test('commands in the wrong state are refused', async (t) => {
  const { port } = await start(t, { maxProtocolErrors: 100 });
  const before = ['STAT', 'LIST', 'RETR 1', 'DELE 1', 'NOOP', 'RSET', 'TOP 1 0', 'UIDL'];
  const after = ['USER bob', 'PASS pw', 'APOP bob 0123456789abcdef0123456789abcdef'];
  const replies = await dialog(port, [...before, 'USER alice', 'PASS pw', ...after, 'NOOP']);
  assert.deepEqual(replies.slice(1), [
    ...before.map((c) => `-ERR ${c.split(' ')[0] ?? ''} is not valid in the AUTHORIZATION state`),
    '+OK send PASS',
    '+OK alice has 3 messages (130 octets)',
    ...after.map((c) => `-ERR ${c.split(' ')[0] ?? ''} is not valid in the TRANSACTION state`),
    '+OK',
  ]);
});

test('APOP with the digest of the greeting timestamp logs in; a wrong digest gets [AUTH]', async (t) => {
  const { port } = await start(t);
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  const stamp = GREETING.exec(client.greeting)?.[1];
  assert.ok(stamp !== undefined, client.greeting);
  assert.equal(
    await client.command(`APOP alice ${apopDigest(stamp, 'wrong')}`),
    '-ERR [AUTH] invalid user name or password',
  );
  assert.equal(
    await client.command(`APOP nobody ${apopDigest(stamp, 'pw')}`),
    '-ERR [AUTH] invalid user name or password',
  );
  assert.equal(await client.command('APOP alice nothex'), '-ERR usage: APOP name digest');
  assert.equal(await client.command('APOP alice'), '-ERR usage: APOP name digest');
  assert.equal(
    await client.command(`APOP alice ${apopDigest(stamp, 'pw').toUpperCase()}`),
    '+OK alice has 3 messages (130 octets)',
  );
  assert.equal(await client.command('STAT'), '+OK 3 130');
});

test('greeting timestamps differ between connections, and a digest for one fails on another', async (t) => {
  const { port } = await start(t);
  const first = await Pop3TestClient.connect(port);
  const second = await Pop3TestClient.connect(port);
  t.after(() => {
    first.close();
    second.close();
  });
  const stamp1 = GREETING.exec(first.greeting)?.[1];
  const stamp2 = GREETING.exec(second.greeting)?.[1];
  assert.ok(stamp1 !== undefined && stamp2 !== undefined);
  assert.notEqual(stamp1, stamp2);
  assert.equal(
    await second.command(`APOP alice ${apopDigest(stamp1, 'pw')}`),
    '-ERR [AUTH] invalid user name or password',
  );
  assert.equal(
    await first.command(`APOP alice ${apopDigest(stamp1, 'pw')}`),
    '+OK alice has 3 messages (130 octets)',
  );
});

test('a maildrop open in another session gets [IN-USE]; the second session can retry after QUIT', async (t) => {
  const { port, server } = await start(t);
  const first = await loggedIn(port);
  const second = await Pop3TestClient.connect(port);
  t.after(() => {
    first.close();
    second.close();
  });
  assert.equal(await second.command('USER alice'), '+OK send PASS');
  assert.equal(await second.command('PASS pw'), '-ERR [IN-USE] maildrop is in use by another session');
  const stamp = GREETING.exec(second.greeting)?.[1] ?? '';
  assert.equal(
    await second.command(`APOP alice ${apopDigest(stamp, 'pw')}`),
    '-ERR [IN-USE] maildrop is in use by another session',
  );
  // Still in AUTHORIZATION, and a lock conflict is not an authentication failure.
  assert.equal(await second.command('STAT'), '-ERR STAT is not valid in the AUTHORIZATION state');
  assert.equal(await first.command('DELE 1'), '+OK message 1 deleted');
  const closed = await nextServerEvent(server, 'close', async () => {
    assert.equal(await first.command('QUIT'), '+OK Poplar signing off (2 messages left)');
  });
  assert.equal(closed.user, 'alice');
  assert.equal(await second.command('USER alice'), '+OK send PASS');
  assert.equal(await second.command('PASS pw'), '+OK alice has 2 messages (69 octets)');
});

test('the APOP timestamp shows no pid, connection counter or host name: random hex, seconds, @poplar', async (t) => {
  const { port } = await startServer(t, { mailboxes: MAILBOXES });
  const stamps: string[] = [];
  for (let i = 0; i < 3; i++) {
    const client = await Pop3TestClient.connect(port);
    client.close();
    const m = /^\+OK Poplar POP3 server ready <([0-9a-f]{24})\.(\d+)@poplar>$/.exec(client.greeting);
    assert.ok(m !== null, client.greeting);
    const [, random = '', seconds = ''] = m;
    assert.ok(Math.abs(Number(seconds) - Date.now() / 1000) < 60, client.greeting);
    assert.ok(!client.greeting.includes(hostname()), client.greeting);
    assert.ok(!new RegExp(`\\b${process.pid}\\b`).test(client.greeting), client.greeting);
    stamps.push(random);
  }
  assert.equal(new Set(stamps).size, 3);
});

test('without an APOP-capable authenticator the greeting has no timestamp and APOP is refused', async (t) => {
  const { port } = await startServer(t, {
    authenticator: {
      authenticate: (request) =>
        Promise.resolve(
          request.username === 'alice' && request.password === 'pw'
            ? { ok: true, user: { name: 'alice' } }
            : { ok: false, reason: 'invalid' },
        ),
    },
  });
  const replies = await dialog(port, [`APOP alice ${'0'.repeat(32)}`, 'USER alice', 'PASS pw']);
  assert.deepEqual(replies, [
    '+OK Poplar POP3 server ready',
    '-ERR APOP is not available',
    '+OK send PASS',
    '+OK alice has 0 messages (0 octets)',
  ]);
});

test('an authenticator that cannot decide now gives -ERR [SYS/TEMP], not [AUTH]', async (t) => {
  const { port } = await startServer(t, {
    authenticator: { authenticate: () => Promise.resolve({ ok: false, reason: 'temporary' }) },
  });
  const replies = await dialog(port, ['USER alice', 'PASS pw', 'USER alice']);
  assert.deepEqual(replies.slice(1), [
    '+OK send PASS',
    '-ERR [SYS/TEMP] authentication is temporarily unavailable, try again later',
    '+OK send PASS',
  ]);
});
