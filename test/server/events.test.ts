import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClosedSessionInfo } from '../../src/pop3/connection.js';
import type { Pop3Server } from '../../src/pop3/server.js';
import type { ConnectionInfo, LoginInfo } from '../../src/pop3/session.js';
import { dialog, Pop3TestClient } from '../helpers/pop3-client.js';
import { nextServerEvent, RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/start-server.js';

const MESSAGES = [
  'Subject: one\r\n\r\nfirst\r\n', // 23 octets
  'Subject: two\r\n\r\nsecond\r\n', // 24 octets
  'Subject: three\r\n\r\nthird\r\n', // 25 octets
];

const ZERO_SUMMARY = {
  retrievedMessages: 0,
  retrievedBytes: 0,
  topCount: 0,
  deletedMessages: 0,
  deletedBytes: 0,
  remainingMessages: 0,
  remainingBytes: 0,
};

type Recorded =
  | { event: 'connect'; info: ConnectionInfo }
  | { event: 'login'; info: LoginInfo }
  | { event: 'close'; info: ClosedSessionInfo }
  | { event: 'refuse'; info: { remoteAddress: string; reason: string } };

function record(server: Pop3Server): Recorded[] {
  const events: Recorded[] = [];
  server.on('connect', (info) => events.push({ event: 'connect', info }));
  server.on('login', (info) => events.push({ event: 'login', info }));
  server.on('close', (info) => events.push({ event: 'close', info }));
  server.on('refuse', (info) => events.push({ event: 'refuse', info }));
  return events;
}

test('connect, login and close events, with the session summary and a duration the session bounds', async (t) => {
  // A failed login makes the session last at least this long, with no sleep in the test.
  const authFailureDelayMs = 100;
  const { port, server } = await startServer(t, {
    mailboxes: { alice: MESSAGES },
    limits: { authFailureDelayMs },
  });
  const events = record(server);
  const startedAt = Date.now();
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.tryLogin('alice', 'wrong'), '-ERR [AUTH] invalid user name or password');
  await client.login('alice', 'pw');
  for (const command of ['RETR 1', 'RETR 1', 'TOP 2 0', 'TOP 3 1', 'RETR 3']) {
    assert.match(await client.command(command), /^\+OK/);
    await client.readBody();
  }
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  assert.equal(await client.command('RETR 5'), '-ERR no such message, only 3 in maildrop');
  await nextServerEvent(server, 'close', async () => {
    assert.equal(await client.command('QUIT'), '+OK Poplar signing off (2 messages left)');
  });
  const wallMs = Date.now() - startedAt;

  const connected = events[0];
  assert.ok(connected?.event === 'connect');
  const connection = {
    id: connected.info.id,
    remoteAddress: '127.0.0.1',
    remotePort: client.socket.localPort,
    isTls: false,
  };
  assert.match(connection.id, /^[0-9a-z]+-[0-9a-z]+-[0-9a-f]{6}$/);
  const closed = events[2]?.info as ClosedSessionInfo;
  // Within the failure delay the server waited and the time the test saw the session last (minus
  // 1 ms: the delay's timer and Date.now() round to milliseconds apart).
  assert.ok(closed.durationMs >= authFailureDelayMs - 1, `durationMs ${closed.durationMs}`);
  assert.ok(closed.durationMs <= wallMs, `durationMs ${closed.durationMs}, measured ${wallMs}`);
  assert.deepEqual(events, [
    { event: 'connect', info: connection },
    { event: 'login', info: { ...connection, user: 'alice' } },
    {
      event: 'close',
      info: {
        ...connection,
        user: 'alice',
        reason: 'quit',
        durationMs: closed.durationMs,
        summary: {
          retrievedMessages: 3,
          retrievedBytes: 23 + 23 + 25,
          topCount: 2,
          deletedMessages: 1,
          deletedBytes: 24,
          remainingMessages: 2,
          remainingBytes: 23 + 25,
        },
      },
    },
  ]);
});

test('the close summary of a dropped session deletes nothing; one that never logged in is empty', async (t) => {
  const { port, server } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const events = record(server);
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.login('alice', 'pw');
  assert.equal(await client.command('RETR 2'), '+OK 24 octets');
  await client.readBody();
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  const dropped = await nextServerEvent(server, 'close', () => {
    client.close();
  });
  assert.equal(dropped.user, 'alice');
  assert.deepEqual(dropped.summary, {
    ...ZERO_SUMMARY,
    retrievedMessages: 1,
    retrievedBytes: 24,
    remainingMessages: 3,
    remainingBytes: 72,
  });

  const anonymous = await Pop3TestClient.connect(port);
  t.after(() => {
    anonymous.close();
  });
  assert.equal(await anonymous.command('USER alice'), '+OK send PASS');
  assert.equal(await anonymous.command('PASS wrong'), '-ERR [AUTH] invalid user name or password');
  const closed = await nextServerEvent(server, 'close', async () => {
    assert.equal(await anonymous.command('QUIT'), '+OK Poplar signing off');
  });
  assert.equal(closed.user, undefined);
  assert.deepEqual(closed.summary, ZERO_SUMMARY);
  assert.deepEqual(
    events.map((e) => e.event),
    ['connect', 'login', 'close', 'connect', 'close'],
  );
});

test('refuse events name the address and the reason; refused connections get no connect event', async (t) => {
  const { port, server } = await startServer(t, { limits: { maxConnections: 2, maxConnectionsPerIp: 1 } });
  const events = record(server);
  const first = await RawClient.connect(port);
  t.after(() => {
    first.close();
  });
  await first.waitFor('\r\n');
  const second = await RawClient.connect(port);
  t.after(() => {
    second.close();
  });
  assert.equal(await second.closed(), '-ERR [SYS/TEMP] too many connections from your address\r\n');
  const other = await RawClient.connect(port, { localAddress: '127.0.0.2' });
  t.after(() => {
    other.close();
  });
  await other.waitFor('\r\n');
  const third = await RawClient.connect(port, { localAddress: '127.0.0.3' });
  t.after(() => {
    third.close();
  });
  assert.equal(await third.closed(), '-ERR [SYS/TEMP] too many connections\r\n');
  assert.deepEqual(
    events.map((e) => (e.event === 'refuse' ? e.info : e.event)),
    [
      'connect',
      { remoteAddress: '127.0.0.1', reason: 'too many connections from your address' },
      'connect',
      { remoteAddress: '127.0.0.3', reason: 'too many connections' },
    ],
  );
  assert.equal(server.stats.connectionsTotal, 2);
  assert.equal(server.stats.connectionsOpen, 2);
});

test('server.stats counts connections, logins, messages and bytes', async (t) => {
  const { port, server } = await startServer(t, { mailboxes: { alice: MESSAGES } });
  const { stats } = server;
  assert.deepEqual(
    [stats.connectionsTotal, stats.connectionsOpen, stats.loginsSucceeded, stats.loginsFailed],
    [0, 0, 0, 0],
  );

  const first = await Pop3TestClient.connect(port);
  const second = await Pop3TestClient.connect(port);
  t.after(() => {
    first.close();
    second.close();
  });
  assert.equal(stats.connectionsTotal, 2);
  assert.equal(stats.connectionsOpen, 2);
  assert.equal(await second.command('USER alice'), '+OK send PASS');
  assert.equal(await second.command('PASS wrong'), '-ERR [AUTH] invalid user name or password');
  assert.equal(await second.command('USER bob'), '+OK send PASS');
  assert.equal(await second.command('PASS pw'), '-ERR [AUTH] invalid user name or password');
  await first.login('alice', 'pw');
  assert.equal(stats.loginsSucceeded, 1);
  assert.equal(stats.loginsFailed, 2);
  assert.equal(stats.sessionsAuthenticated, 1);

  for (const n of [1, 2, 1]) {
    assert.match(await first.command(`RETR ${n}`), /^\+OK/);
    await first.readBody();
  }
  assert.match(await first.command('TOP 3 0'), /^\+OK/);
  await first.readBody();
  assert.equal(stats.messagesRetrieved, 3);
  assert.equal(await first.command('DELE 1'), '+OK message 1 deleted');
  assert.equal(await first.command('DELE 3'), '+OK message 3 deleted');
  assert.equal(stats.messagesDeleted, 0, 'deletions count when they are applied, at QUIT');
  await nextServerEvent(server, 'close', async () => {
    assert.equal(await first.command('QUIT'), '+OK Poplar signing off (1 message left)');
  });
  assert.equal(stats.messagesDeleted, 2);
  assert.equal(stats.connectionsOpen, 1);
  assert.equal(stats.sessionsAuthenticated, 0);
  // Bytes are counted as they move, so the second, still open, connection counts too.
  assert.equal(stats.bytesIn, first.socket.bytesWritten + second.socket.bytesWritten);
  assert.equal(stats.bytesOut, first.socket.bytesRead + second.socket.bytesRead);
  assert.ok(stats.bytesIn > 0 && stats.bytesOut > 0);

  await nextServerEvent(server, 'close', async () => {
    assert.equal(await second.command('QUIT'), '+OK Poplar signing off');
  });
  assert.equal(stats.connectionsTotal, 2);
  assert.equal(stats.connectionsOpen, 0);
  assert.equal(stats.bytesIn, first.socket.bytesWritten + second.socket.bytesWritten);
  assert.equal(stats.bytesOut, first.socket.bytesRead + second.socket.bytesRead);
});

test('a client that disconnects before reading the greeting still gives connect and close', async (t) => {
  const { port, server } = await startServer(t);
  const events = record(server);
  const closed = nextServerEvent(server, 'close');
  const client = await RawClient.connect(port);
  t.after(() => {
    client.close();
  });
  client.socket.resetAndDestroy();
  assert.equal((await closed).user, undefined);
  assert.deepEqual(
    events.map((e) => e.event),
    ['connect', 'close'],
  );
  assert.equal(server.stats.connectionsOpen, 0);
  const replies = await dialog(port, ['CAPA']);
  assert.match(replies[0] ?? '', /^\+OK Poplar POP3 server ready/);
});
