// Connection floods and slow clients: hundreds of connections that never send, or send one byte
// now and then, fill the server up to its limits; what is over a limit is refused at once, honest
// clients meanwhile get full sessions, and loginTimeoutMs drops every flooder.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import { test } from 'node:test';
import { StaticAuthenticator } from '../../src/auth/static.js';
import type { Pop3Server } from '../../src/pop3/server.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/start-server.js';
import { CapturingLogger } from '../monitor/setup.js';
import { connectFrom } from './clients.js';

const MESSAGES = ['Subject: one\r\n\r\nfirst\r\n', 'Subject: two\r\n\r\nsecond\r\n']; // 23 + 24 octets
const PER_IP = 100;
const SILENT = 2 * PER_IP; // from 127.0.0.2 and 127.0.0.3
const SLOW = 50; // from 127.0.0.4
const FLOOD = SILENT + SLOW;
const FILLERS = 10;
const MAX_CONNECTIONS = FLOOD + FILLERS;
const HONEST = 5;
/** Long enough for the honest sessions to run while the flood is connected, short for the test. */
const LOGIN_TIMEOUT_MS = 4000;
const GREETING = '+OK Poplar POP3 server ready';

/** `count` connections from `localAddress`, opened concurrently; each has had its greeting. */
async function openMany(port: number, localAddress: string, count: number): Promise<RawClient[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const client = await RawClient.connect(port, { localAddress });
      await client.waitFor(GREETING);
      return client;
    }),
  );
}

/** Resolves after the server has emitted `count` more `close` events (registered now). */
function closes(server: Pop3Server, count: number): Promise<void> {
  return new Promise((resolve) => {
    let left = count;
    const onClose = (): void => {
      left -= 1;
      if (left === 0) {
        server.off('close', onClose);
        resolve();
      }
    };
    server.on('close', onClose);
  });
}

/** One full session: login, STAT, LIST, RETR, QUIT; returns every reply. */
async function honestSession(port: number, user: string): Promise<string[]> {
  const client = await connectFrom(port, '127.0.0.9');
  try {
    const replies = [await client.command(`USER ${user}`), await client.command(`PASS ${user}-pw`)];
    replies.push(await client.command('STAT'));
    const list = await client.multi('LIST');
    replies.push([list.status, ...list.lines].join('|'));
    const retr = await client.multi('RETR 2');
    replies.push([retr.status, ...retr.lines].join('|'));
    replies.push(await client.command('QUIT'));
    assert.equal(await client.closed(), '');
    return replies;
  } finally {
    client.close();
  }
}

test('a flood of silent and slow connections: limits refuse at once, honest sessions go on, loginTimeoutMs drops the flood', async (t) => {
  const users = Object.fromEntries(Array.from({ length: HONEST }, (_, i) => [`honest${i}`, `honest${i}-pw`]));
  const logger = new CapturingLogger();
  const { server, port } = await startServer(t, {
    authenticator: new StaticAuthenticator(users),
    mailboxes: Object.fromEntries(Object.keys(users).map((u) => [u, MESSAGES])),
    logger,
    limits: {
      maxConnections: MAX_CONNECTIONS,
      maxConnectionsPerIp: PER_IP,
      loginTimeoutMs: LOGIN_TIMEOUT_MS,
    },
  });
  const opened: RawClient[] = [];
  t.after(() => {
    for (const c of opened) c.close();
  });
  const track = (clients: RawClient[]): RawClient[] => {
    opened.push(...clients);
    return clients;
  };

  const floodStartedAt = performance.now();
  // The flood: connections that never send, and connections that trickle a command, one byte
  // every 50 ms, never ending the line.
  const silent = track([
    ...(await openMany(port, '127.0.0.2', PER_IP)),
    ...(await openMany(port, '127.0.0.3', PER_IP)),
  ]);
  const slow = track(await openMany(port, '127.0.0.4', SLOW));
  const trickle = Buffer.from('USER slowpoke-and-more-and-more');
  let sent = 0;
  const timer = setInterval(() => {
    const byte = trickle.subarray(sent % trickle.length, (sent % trickle.length) + 1);
    sent += 1;
    for (const c of slow) if (!c.isClosed) c.write(byte);
  }, 50);
  t.after(() => {
    clearInterval(timer);
  });
  const flood = [...silent, ...slow];
  assert.equal(server.connectionCount, FLOOD);

  // Over the per-address limit: refused at once, no greeting.
  const overIp = track([await RawClient.connect(port, { localAddress: '127.0.0.2' })]);
  assert.equal(await overIp[0]?.closed(), '-ERR [SYS/TEMP] too many connections from your address\r\n');
  // Up to the total limit from elsewhere, then one more: refused at once too.
  const fillers = track(await openMany(port, '127.0.0.5', FILLERS));
  assert.equal(server.connectionCount, MAX_CONNECTIONS);
  const overAll = track([await RawClient.connect(port, { localAddress: '127.0.0.6' })]);
  assert.equal(await overAll[0]?.closed(), '-ERR [SYS/TEMP] too many connections\r\n');
  assert.equal(server.stats.connectionsRefused, 2);

  // Room for the honest clients: the fillers leave; the flood stays.
  const fillersGone = closes(server, FILLERS);
  for (const c of fillers) c.close();
  await fillersGone;

  const sessions = await Promise.all(Object.keys(users).map((user) => honestSession(port, user)));
  for (const [i, replies] of sessions.entries()) {
    assert.deepEqual(replies, [
      '+OK send PASS',
      `+OK honest${i} has 2 messages (47 octets)`,
      '+OK 2 47',
      '+OK 2 messages (47 octets)|1 23|2 24',
      '+OK 24 octets|Subject: two||second',
      '+OK Poplar signing off (2 messages left)',
    ]);
  }
  t.diagnostic(
    `honest sessions done ${Math.round(performance.now() - floodStartedAt)} ms after the flood began ` +
      `(loginTimeoutMs ${LOGIN_TIMEOUT_MS})`,
  );
  // They really ran during the flood: it was all still connected.
  assert.equal(
    flood.filter((c) => c.isClosed).length,
    0,
    'the flood was dropped before the honest sessions ended',
  );
  assert.equal(server.stats.loginsSucceeded, HONEST);

  // loginTimeoutMs ends every flood connection, silent and slow alike, with a reason.
  const texts = await Promise.all(flood.map((c) => c.closed()));
  for (const text of texts) {
    assert.match(
      text,
      /^\+OK Poplar POP3 server ready[^\r\n]*\r\n-ERR \[SYS\/TEMP\] too slow to log in\r\n$/,
    );
  }
  assert.ok(sent > 0, 'the slow clients sent something');
  await (server.connectionCount === 0 ? Promise.resolve() : closes(server, server.connectionCount));
  assert.equal(server.connectionCount, 0);
  assert.deepEqual(server.sessions(), []);
  assert.equal(logger.find('timeout').length, FLOOD);
  assert.equal(server.stats.connectionsTotal, FLOOD + FILLERS + HONEST);
  assert.equal(server.stats.connectionsRefused, 2);
});
