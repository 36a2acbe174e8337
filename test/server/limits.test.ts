import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { StaticAuthenticator } from '../../src/auth/static.js';
import { ConfigError } from '../../src/errors.js';
import { MemoryStore } from '../../src/mailstore/memory.js';
import { DEFAULT_LIMITS } from '../../src/pop3/limits.js';
import { createServer, type Pop3Server } from '../../src/pop3/server.js';
import { dialog, Pop3TestClient } from '../helpers/pop3-client.js';
import { nextServerEvent, RawClient } from '../helpers/raw-client.js';
import { WaitableLogger } from '../helpers/recording-logger.js';
import { startServer } from '../helpers/start-server.js';
import { wrapStore } from '../helpers/wrap-store.js';

const MESSAGES = ['Subject: one\r\n\r\nfirst\r\n', 'Subject: two\r\n\r\nsecond\r\n']; // 23 + 24 octets

/** What the server sends after its greeting line. */
function afterGreeting(text: string): string {
  const end = text.indexOf('\r\n');
  assert.match(text.slice(0, end), /^\+OK Poplar POP3 server ready </);
  return text.slice(end + 2);
}

/**
 * A full round trip on a fresh connection: a point in the server's event loop that comes after
 * everything already queued for another connection. Used to show that a reply has NOT come.
 */
async function roundTrip(port: number): Promise<void> {
  const replies = await dialog(port, ['CAPA']);
  assert.match(replies[1] ?? '', /^\+OK Capability list follows/);
}

// ---------------------------------------------------------------------------------------------
// maxCommandBytes

test('maxCommandBytes: a line of exactly the limit is accepted, one byte more is refused, in step', async (t) => {
  const { port } = await startServer(t, { mailboxes: { alice: MESSAGES }, limits: { maxCommandBytes: 255 } });
  const exact = `USER ${'u'.repeat(250)}`; // 255 bytes
  const over = `USER ${'u'.repeat(251)}`; // 256 bytes
  const replies = await dialog(port, [
    exact,
    over,
    'USER alice',
    'PASS pw',
    `LIST${' '.repeat(250)}1`, // 255 bytes
    `LIST${' '.repeat(251)}1`, // 256 bytes
    'LIST 2',
  ]);
  assert.deepEqual(replies.slice(1), [
    '+OK send PASS',
    '-ERR line too long',
    '+OK send PASS',
    '+OK alice has 2 messages (47 octets)',
    '+OK 1 23',
    '-ERR line too long',
    '+OK 2 24',
  ]);
});

test('maxCommandBytes: the limit holds byte by byte too, and with a lone LF', async (t) => {
  const { port } = await startServer(t, { limits: { maxCommandBytes: 255 } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.writeByteByByte(
    `USER ${'u'.repeat(250)}\r\nUSER ${'u'.repeat(251)}\r\nUSER ${'u'.repeat(250)}\nUSER ${'u'.repeat(251)}\nQUIT\r\n`,
  );
  assert.equal(
    afterGreeting(await client.closed()),
    '+OK send PASS\r\n-ERR line too long\r\n+OK send PASS\r\n-ERR line too long\r\n+OK Poplar signing off\r\n',
  );
});

test('maxCommandBytes: the default is 1024 bytes', async (t) => {
  assert.equal(DEFAULT_LIMITS.maxCommandBytes, 1024);
  const { port } = await startServer(t);
  // 1024 bytes: read as a line, then refused by USER's own check; 1025 bytes: refused as a line.
  const replies = await dialog(port, [`USER ${'u'.repeat(1019)}`, `USER ${'u'.repeat(1020)}`, 'USER alice']);
  assert.deepEqual(replies.slice(1), ['-ERR user name too long', '-ERR line too long', '+OK send PASS']);
});

test('maxCommandBytes: a 1 MB line without LF is discarded and the connection stays usable', async (t) => {
  const { port } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write(Buffer.alloc(1024 * 1024, 'A'));
  client.write(Buffer.alloc(1024 * 1024, 'B'));
  assert.equal(await client.command(''), '-ERR line too long');
  assert.equal(await client.login('alice', 'pw'), '+OK alice has 2 messages (47 octets)');
  assert.equal(await client.command('STAT'), '+OK 2 47');
});

test('maxCommandBytes: a 1 MB line and then the end of the stream closes quietly', async (t) => {
  const { port, server } = await startServer(t);
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  const closed = nextServerEvent(server, 'close');
  client.socket.end(Buffer.alloc(1024 * 1024, 'A'));
  assert.equal(afterGreeting(await client.closed()), '');
  await closed;
  await roundTrip(port);
});

// ---------------------------------------------------------------------------------------------
// maxSaslLineBytes

/** A SASL PLAIN response for alice with a wrong password, as a base64 line of exactly `bytes` bytes. */
function plainResponseLine(bytes: number): string {
  assert.equal(bytes % 4, 0);
  const message = Buffer.concat([Buffer.from('\0alice\0'), Buffer.alloc((bytes / 4) * 3 - 7, 'x')]);
  return message.toString('base64');
}
const ALICE_PLAIN = Buffer.from('\0alice\0pw').toString('base64');
const TOO_LONG = '-ERR [AUTH] authentication failed: response too long';

test('maxSaslLineBytes: a continuation line of exactly the limit is read, even past maxCommandBytes; one byte more is refused, in step', async (t) => {
  const { port } = await startServer(t, {
    mailboxes: { alice: MESSAGES },
    limits: { maxCommandBytes: 255, maxSaslLineBytes: 1024 },
  });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  const exact = plainResponseLine(1024);
  assert.equal(exact.length, 1024);
  assert.equal(await client.command('AUTH PLAIN'), '+ ');
  // Read whole and checked: the password is wrong.
  assert.equal(await client.command(exact), '-ERR [AUTH] invalid user name or password');
  assert.equal(await client.command('AUTH PLAIN'), '+ ');
  assert.equal(await client.command(`${exact}A`), TOO_LONG);
  assert.equal(await client.command(`AUTH PLAIN ${ALICE_PLAIN}`), '+OK alice has 2 messages (47 octets)');
});

test('maxSaslLineBytes: the default is 8192 bytes, and a 2 MB continuation line is refused and the connection stays in step', async (t) => {
  assert.equal(DEFAULT_LIMITS.maxSaslLineBytes, 8192);
  // The line's password (6137 bytes) is checked as a password, not refused for its length.
  const { port } = await startServer(t, {
    mailboxes: { alice: MESSAGES },
    limits: { maxPasswordBytes: 8192 },
  });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('AUTH PLAIN'), '+ ');
  assert.equal(await client.command(plainResponseLine(8192)), '-ERR [AUTH] invalid user name or password');
  assert.equal(await client.command('AUTH PLAIN'), '+ ');
  // Valid base64 both: were the line read whole, it would fail as a malformed PLAIN message instead.
  client.write(Buffer.alloc(1024 * 1024, 'A'));
  client.write(Buffer.alloc(1024 * 1024, 'B'));
  assert.equal(await client.command(''), TOO_LONG);
  assert.equal(await client.command(`AUTH PLAIN ${ALICE_PLAIN}`), '+OK alice has 2 messages (47 octets)');
  assert.equal(await client.command('STAT'), '+OK 2 47');
});

// ---------------------------------------------------------------------------------------------
// maxProtocolErrors

test('maxProtocolErrors: the Nth bad command gets -ERR and then the connection closes', async (t) => {
  const { port } = await startServer(t, { limits: { maxProtocolErrors: 3, maxCommandBytes: 255 } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  // PASS without USER and an [AUTH] failure are not protocol errors; the unknown verb, the
  // wrong-state command and the overlong line are.
  client.write(`PASS x\r\nFOO\r\nUSER alice\r\nPASS wrong\r\nSTAT\r\nCAPA\r\n${'x'.repeat(300)}\r\nCAPA\r\n`);
  assert.equal(
    afterGreeting(await client.closed()),
    '-ERR send USER first\r\n' +
      '-ERR unknown command FOO\r\n' +
      '+OK send PASS\r\n' +
      '-ERR [AUTH] invalid user name or password\r\n' +
      '-ERR STAT is not valid in the AUTHORIZATION state\r\n' +
      '+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nSASL SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n' +
      'UTF8 USER\r\nLANG\r\nIMPLEMENTATION Poplar\r\n.\r\n' +
      '-ERR line too long; too many bad commands, closing\r\n',
  );
});

test('maxProtocolErrors: 1 closes on the first bad command, in TRANSACTION too', async (t) => {
  const { port, store } = await startServer(t, {
    mailboxes: { alice: MESSAGES },
    limits: { maxProtocolErrors: 1 },
  });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write('USER alice\r\nPASS pw\r\nDELE 1\r\nLIST x\r\nQUIT\r\n');
  assert.equal(
    afterGreeting(await client.closed()),
    '+OK send PASS\r\n+OK alice has 2 messages (47 octets)\r\n+OK message 1 deleted\r\n' +
      '-ERR invalid message number; too many bad commands, closing\r\n',
  );
  assert.equal(store.contents('alice').length, 2, 'closing for errors is not a QUIT');
});

test('maxProtocolErrors: the default is 10', async (t) => {
  const { port } = await startServer(t);
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write('NOPE\r\n'.repeat(11));
  assert.equal(
    afterGreeting(await client.closed()),
    `${'-ERR unknown command NOPE\r\n'.repeat(9)}-ERR unknown command NOPE; too many bad commands, closing\r\n`,
  );
});

// ---------------------------------------------------------------------------------------------
// maxAuthFailures and authFailureDelayMs

test('maxAuthFailures: the last failure gets [AUTH] and closes; USER/PASS and APOP both count', async (t) => {
  const { port } = await startServer(t, { limits: { maxAuthFailures: 3 } });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS one'), '-ERR [AUTH] invalid user name or password');
  assert.equal(
    await client.command(`APOP alice ${'0'.repeat(32)}`),
    '-ERR [AUTH] invalid user name or password',
  );
  assert.equal(await client.command('USER nobody'), '+OK send PASS');
  assert.equal(
    await client.command('PASS three'),
    '-ERR [AUTH] invalid user name or password, too many failures',
  );
  assert.equal(await client.closed(), '');
});

test('maxAuthFailures: 1 closes after the first failure, even with the right password queued', async (t) => {
  const { port } = await startServer(t, { limits: { maxAuthFailures: 1 } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write('USER alice\r\nPASS wrong\r\nUSER alice\r\nPASS pw\r\n');
  assert.equal(
    afterGreeting(await client.closed()),
    '+OK send PASS\r\n-ERR [AUTH] invalid user name or password, too many failures\r\n',
  );
});

test('authFailureDelayMs: the reply to a failed login, and the next command, wait for the delay', async (t) => {
  const logger = new WaitableLogger();
  const { port, server } = await startServer(t, { logger, limits: { authFailureDelayMs: 600_000 } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write('USER alice\r\nPASS wrong\r\nCAPA\r\n');
  await logger.logged('login failed');
  // Other connections are served meanwhile; this one has answered nothing since USER.
  await roundTrip(port);
  await roundTrip(port);
  assert.equal(afterGreeting(client.text), '+OK send PASS\r\n');
  assert.equal(server.stats.loginsFailed, 1);
  // A disconnect cancels the pending delay: the session ends now, not ten minutes later.
  const closed = await nextServerEvent(server, 'close', () => {
    client.close();
  });
  assert.equal(closed.user, undefined);
});

test('authFailureDelayMs: after the delay the failure is answered and the session goes on', async (t) => {
  const logger = new WaitableLogger();
  const { port } = await startServer(t, { logger, limits: { authFailureDelayMs: 20 } });
  const replies = await dialog(port, ['USER alice', 'PASS wrong', 'USER alice', 'PASS pw']);
  assert.deepEqual(replies.slice(1), [
    '+OK send PASS',
    '-ERR [AUTH] invalid user name or password',
    '+OK send PASS',
    '+OK alice has 0 messages (0 octets)',
  ]);
  assert.deepEqual(
    logger.messages.filter((m) => m.startsWith('login')),
    ['login failed', 'login'],
  );
});

// ---------------------------------------------------------------------------------------------
// maxConnections and maxConnectionsPerIp

test('maxConnections: the extra connection gets -ERR [SYS/TEMP] and is closed; later ones are accepted', async (t) => {
  const { port, server } = await startServer(t, { limits: { maxConnections: 2 } });
  const first = await Pop3TestClient.connect(port);
  const second = await Pop3TestClient.connect(port);
  t.after(() => {
    first.close();
    second.close();
  });
  assert.match(second.greeting, /^\+OK /);
  const extra = await RawClient.connect(port);
  t.after(() => {
    extra.close();
  });
  assert.equal(await extra.closed(), '-ERR [SYS/TEMP] too many connections\r\n');
  assert.equal(server.connectionCount, 2);
  await nextServerEvent(server, 'close', async () => {
    assert.equal(await first.command('QUIT'), '+OK Poplar signing off');
  });
  const later = await Pop3TestClient.connect(port);
  t.after(() => {
    later.close();
  });
  assert.match(later.greeting, /^\+OK Poplar POP3 server ready/);
  assert.equal(await later.command('USER alice'), '+OK send PASS');
});

test('maxConnectionsPerIp: the extra connection from one address is refused, others are not', async (t) => {
  const { port, server } = await startServer(t, { limits: { maxConnectionsPerIp: 2 } });
  const clients = [await RawClient.connect(port), await RawClient.connect(port)];
  t.after(() => {
    for (const c of clients) c.close();
  });
  for (const c of clients) await c.waitFor('\r\n');
  const extra = await RawClient.connect(port);
  clients.push(extra);
  assert.equal(await extra.closed(), '-ERR [SYS/TEMP] too many connections from your address\r\n');
  // Another loopback address has its own count.
  const other = await RawClient.connect(port, { localAddress: '127.0.0.2' });
  clients.push(other);
  assert.match(await other.waitFor('\r\n'), /^\+OK Poplar POP3 server ready/);
  await nextServerEvent(server, 'close', () => {
    clients[0]?.close();
  });
  const later = await RawClient.connect(port);
  clients.push(later);
  assert.match(await later.waitFor('\r\n'), /^\+OK Poplar POP3 server ready/);
});

/**
 * Serves `server` through a loopback listener that gives each accepted socket the next of
 * `addresses` as its remote address, as if the clients came from there (loopback has only `::1`).
 */
async function embedAs(t: TestContext, server: Pop3Server, addresses: readonly string[]): Promise<number> {
  let next = 0;
  const listener = createNetServer({ allowHalfOpen: true }, (socket) => {
    Object.defineProperty(socket, 'remoteAddress', { value: addresses[next++] });
    server.handleConnection(socket);
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.after(() => {
    listener.close();
  });
  return (listener.address() as AddressInfo).port;
}

test('maxConnectionsPerIp counts an IPv6 client by its /64 and an IPv4-mapped one as IPv4', async (t) => {
  const { server } = await startServer(t, { limits: { maxConnectionsPerIp: 2 } });
  const port = await embedAs(t, server, [
    '2001:db8:1:2::1',
    '2001:db8:1:2:ffff::7', // same /64: the second slot
    '2001:db8:1:2::abcd', // same /64: refused
    '2001:db8:1:3::1', // the next /64 has its own count
    '192.0.2.1',
    '::ffff:192.0.2.1', // the same IPv4 client through a dual-stack socket
    '::ffff:192.0.2.1', // refused
  ]);
  const clients: RawClient[] = [];
  t.after(() => {
    for (const c of clients) c.close();
  });
  const greetings: string[] = [];
  for (let i = 0; i < 7; i++) {
    const client = await RawClient.connect(port);
    clients.push(client);
    greetings.push((await client.waitFor('\r\n')).split('\r\n')[0] ?? '');
  }
  const refused = '-ERR [SYS/TEMP] too many connections from your address';
  assert.deepEqual(
    greetings.map((g) => (g === refused ? 'refused' : g.startsWith('+OK') ? 'ok' : g)),
    ['ok', 'ok', 'refused', 'ok', 'ok', 'ok', 'refused'],
  );
  assert.equal(server.connectionCount, 5);
});

// ---------------------------------------------------------------------------------------------
// loginTimeoutMs and idleTimeoutMs

test('loginTimeoutMs: a client that does not log in in time gets -ERR [SYS/TEMP] and is closed', async (t) => {
  const { port, server } = await startServer(t, { limits: { loginTimeoutMs: 30 } });
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  const closed = nextServerEvent(server, 'close');
  assert.equal(afterGreeting(await client.closed()), '-ERR [SYS/TEMP] too slow to log in\r\n');
  await closed;
});

test('loginTimeoutMs counts from the connection, not from the last command (mock timers)', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  t.after(() => {
    t.mock.timers.reset();
  });
  const { port } = await startServer(t, { limits: { loginTimeoutMs: 60_000 } });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  t.mock.timers.tick(30_000);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  t.mock.timers.tick(29_999);
  await roundTrip(port);
  assert.equal(client.isEnded, false);
  t.mock.timers.tick(1);
  assert.equal(await client.readLine(), '-ERR [SYS/TEMP] too slow to log in');
  assert.equal(await client.closed(), '');
});

test('idleTimeoutMs cannot be set below the 10 minutes of RFC 1939', () => {
  const make = (idleTimeoutMs: number) =>
    createServer({
      store: new MemoryStore(),
      authenticator: new StaticAuthenticator({}),
      limits: { idleTimeoutMs },
    });
  assert.throws(() => make(599_999), {
    name: 'ConfigError',
    message: 'limit idleTimeoutMs must be a whole number from 600000 to 9007199254740991',
  });
  assert.equal(make(600_000).limits.idleTimeoutMs, 600_000);
  assert.equal(DEFAULT_LIMITS.idleTimeoutMs, 600_000);
});

test('idleTimeoutMs: an idle logged-in session is logged out after 10 minutes, not before (mock timers)', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  t.after(() => {
    t.mock.timers.reset();
  });
  const { port, store, server } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.login('alice', 'pw');
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  t.mock.timers.tick(400_000);
  assert.equal(await client.command('NOOP'), '+OK'); // restarts the timer
  t.mock.timers.tick(599_999);
  await roundTrip(port);
  assert.equal(client.isEnded, false);
  const closed = nextServerEvent(server, 'close');
  t.mock.timers.tick(1);
  assert.equal(await client.readLine(), '-ERR [SYS/TEMP] autologout: idle for too long');
  assert.equal(await client.closed(), '');
  assert.equal((await closed).user, 'alice');
  assert.equal(store.contents('alice').length, 2, 'an autologout is not a QUIT');
});

// ---------------------------------------------------------------------------------------------
// writeStallTimeoutMs and transferChunkBytes

test('writeStallTimeoutMs: a client that stops reading during a large RETR is dropped', async (t) => {
  // 32 MiB: far more than the loopback socket buffers hold.
  const big = Buffer.alloc(32 * 1024 * 1024, 'Subject: big\r\n\r\n' + 'y'.repeat(62) + '\r\n');
  const { port, server } = await startServer(t, {
    mailboxes: { alice: [big] },
    limits: { writeStallTimeoutMs: 50 },
  });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.login('alice', 'pw');
  client.socket.pause();
  const closed = await nextServerEvent(server, 'close', () => {
    client.send('RETR 1');
  });
  assert.equal(closed.summary.retrievedMessages, 0);
  assert.equal(server.stats.messagesRetrieved, 0);
  assert.equal(server.connectionCount, 0);
});

test('transferChunkBytes is passed to the store when reading messages', async (t) => {
  for (const [limits, expected] of [
    [{ transferChunkBytes: 4096 }, 4096],
    [{}, 65_536],
  ] as const) {
    const chunkSizes: (number | undefined)[] = [];
    const store = wrapStore(new MemoryStore({ alice: MESSAGES }), {
      read(inner, uid, options) {
        chunkSizes.push(options.chunkBytes);
        return inner.read(uid, options);
      },
    });
    const { port } = await startServer(t, { store, limits });
    const replies = await dialog(port, ['USER alice', 'PASS pw', 'RETR 1', 'TOP 2 0']);
    assert.equal(replies[3], '+OK 23 octets\nSubject: one\n\nfirst');
    assert.deepEqual(chunkSizes, [expected, expected]);
  }
});

test('every limit is range-checked when the server is created', () => {
  const make = (limits: Record<string, unknown>) => () =>
    createServer({
      store: new MemoryStore(),
      authenticator: new StaticAuthenticator({}),
      limits,
    });
  const max = Number.MAX_SAFE_INTEGER;
  const cases: [key: string, value: unknown, message: string][] = [
    ['maxCommandBytes', 254, 'from 255 to 65536'],
    ['maxCommandBytes', 65_537, 'from 255 to 65536'],
    ['maxProtocolErrors', 0, `from 1 to ${max}`],
    ['authFailureDelayMs', -1, `from 0 to ${max}`],
    ['maxAuthFailures', 0, `from 1 to ${max}`],
    ['maxConnections', 0, `from 1 to ${max}`],
    ['maxConnectionsPerIp', 1.5, `from 1 to ${max}`],
    ['loginTimeoutMs', 0, `from 1 to ${max}`],
    ['writeStallTimeoutMs', '100', `from 1 to ${max}`],
    ['transferChunkBytes', 511, 'from 512 to 1048576'],
    ['transferChunkBytes', 1_048_577, 'from 512 to 1048576'],
  ];
  for (const [key, value, range] of cases) {
    assert.throws(make({ [key]: value }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.message, `limit ${key} must be a whole number ${range}`);
      return true;
    });
  }
  assert.throws(make({ maxLines: 5 }), { name: 'ConfigError', message: 'unknown limit "maxLines"' });
  assert.deepEqual(make({ maxCommandBytes: 255, transferChunkBytes: 512, authFailureDelayMs: 0 })().limits, {
    ...DEFAULT_LIMITS,
    maxCommandBytes: 255,
    transferChunkBytes: 512,
    authFailureDelayMs: 0,
  });
});

// ---------------------------------------------------------------------------------------------
// Cross-protocol

test('an HTTP request line before login gets -ERR and the connection is closed', async (t) => {
  const { port } = await startServer(t);
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write('GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: x\r\n\r\n');
  assert.equal(afterGreeting(await client.closed()), '-ERR this is a POP3 server\r\n');
});

test('a POST with a body is cut off at its request line too', async (t: TestContext) => {
  const { port } = await startServer(t);
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.write('POST /x HTTP/1.0\r\nContent-Length: 12\r\n\r\nUSER alice\r\n');
  assert.equal(afterGreeting(await client.closed()), '-ERR this is a POP3 server\r\n');
});
