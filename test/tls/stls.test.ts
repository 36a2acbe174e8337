// STLS (RFC 2595 section 4) on the plain port: the upgrade, what the session forgets, CAPA after
// it, refusals, SNI, and the STARTTLS command-injection class (bytes sent after STLS are dropped).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { ClosedSessionInfo } from '../../src/pop3/connection.js';
import type { LoginInfo } from '../../src/pop3/session.js';
import { WaitableLogger } from '../helpers/recording-logger.js';
import { startServer } from '../helpers/start-server.js';
import { pair, usePki } from './certs.js';
import { cleartextSaslOf, LineClient, withoutSasl } from './tls-client.js';

const pki = await usePki();

// 28 octets (13 + 2 + 11 + 2): the size counts the CRLF line ends as stored.
const MESSAGE = 'Subject: hi\r\n\r\n.dot line\r\n\r\n';
const mailboxes = { alice: [MESSAGE] };
const tls = { ...pair(pki.localhost), sni: { 'a.test': pair(pki.a), 'b.test': pair(pki.b) } };
/** What a client trusts: the test CA, and the server by the name in its certificate. */
const trust = { ca: pki.ca };

const CAPA_PLAIN = [
  'TOP',
  'UIDL',
  'USER',
  'STLS',
  'RESP-CODES',
  'AUTH-RESP-CODE',
  'PIPELINING',
  'UTF8 USER',
  'LANG',
  'IMPLEMENTATION Poplar',
];
const CAPA_TLS = CAPA_PLAIN.filter((c) => c !== 'STLS');

test('STLS: +OK, a TLS handshake on the same connection, then CAPA without STLS; login and RETR over TLS', async (t) => {
  const { server, port } = await startServer(t, { tls, mailboxes });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  assert.match(plain.greeting, /^\+OK Poplar POP3 server ready/);
  const before = await plain.capa();
  assert.deepEqual(withoutSasl(before), CAPA_PLAIN);
  assert.deepEqual(cleartextSaslOf(before), ['PLAIN', 'LOGIN']);

  const { client, reply, leftover } = await plain.startTls(trust);
  t.after(() => {
    client.close();
  });
  assert.equal(reply, '+OK Begin TLS negotiation');
  assert.equal(leftover, '', 'nothing follows the +OK in cleartext');
  assert.ok(client.tlsSocket.authorized, 'the certificate verifies against the test CA for 127.0.0.1');
  assert.equal(client.peerCertificate.fingerprint256, pki.localhost.fingerprint256);
  assert.equal(client.peerCertificate.subject.CN, 'localhost');
  assert.equal(client.tlsSocket.getProtocol(), 'TLSv1.3');

  const after = await client.capa();
  assert.deepEqual(withoutSasl(after), CAPA_TLS);
  assert.deepEqual(cleartextSaslOf(after), ['PLAIN', 'LOGIN']);

  const login = once(server, 'login') as Promise<[LoginInfo]>;
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (28 octets)');
  const [info] = await login;
  assert.equal(info.isTls, true, 'the login is recorded as encrypted');
  assert.deepEqual(await client.multi('RETR 1'), {
    status: '+OK 28 octets',
    lines: ['Subject: hi', '', '.dot line', ''],
  });
  // CAPA in TRANSACTION: no USER, STLS or SASL (RFC 2449 section 5).
  assert.deepEqual(await client.capa(), [
    'TOP',
    'UIDL',
    'RESP-CODES',
    'AUTH-RESP-CODE',
    'PIPELINING',
    'UTF8 USER',
    'LANG',
    'IMPLEMENTATION Poplar',
  ]);
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (1 message left)');
  assert.equal(await client.closed(), '');
});

test('STLS a second time, under TLS, is refused and the session goes on', async (t) => {
  const { port } = await startServer(t, { tls, mailboxes });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  const { client } = await plain.startTls(trust);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('STLS'), '-ERR command not permitted when TLS is active');
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (28 octets)');
});

test('without a certificate the server runs, CAPA has no STLS and STLS is refused', async (t) => {
  const { port } = await startServer(t, { mailboxes });
  const client = await LineClient.plain(port);
  t.after(() => {
    client.close();
  });
  const caps = await client.capa();
  assert.deepEqual(
    withoutSasl(caps),
    CAPA_PLAIN.filter((c) => c !== 'STLS'),
  );
  assert.equal(await client.command('STLS'), '-ERR TLS is not available on this server');
  // Still cleartext, still usable (from loopback).
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (28 octets)');
});

test('STLS takes no arguments, and is not valid after login', async (t) => {
  const { port } = await startServer(t, { tls, mailboxes });
  const client = await LineClient.plain(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('STLS now'), '-ERR STLS takes no arguments');
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (28 octets)');
  assert.equal(await client.command('STLS'), '-ERR STLS is not valid in the TRANSACTION state');
  assert.equal(await client.command('STAT'), '+OK 1 28');
});

test('injection: USER and PASS sent in the same write as STLS are thrown away, not run over TLS', async (t) => {
  const { server, port } = await startServer(t, { tls, mailboxes });
  let logins = 0;
  server.on('login', () => {
    logins += 1;
  });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  const { client, leftover } = await plain.startTls(trust, 'STLS\r\nUSER alice\r\nPASS pw\r\n');
  t.after(() => {
    client.close();
  });
  assert.equal(leftover, '', 'no cleartext reply to the injected lines');
  // Had USER been kept, PASS would log in; had both run, PASS would be refused as out of state.
  assert.equal(await client.command('PASS pw'), '-ERR send USER first');
  assert.equal(logins, 0);
  // A fresh AUTHORIZATION state, now under TLS.
  assert.deepEqual(withoutSasl(await client.capa()), CAPA_TLS);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (28 octets)');
  assert.equal(logins, 1);
});

test('injection: a CAPA sent with STLS gets no reply, over TLS or before it', async (t) => {
  const { port } = await startServer(t, { tls, mailboxes });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  const { client, leftover } = await plain.startTls(trust, 'STLS\r\nCAPA\r\n');
  t.after(() => {
    client.close();
  });
  assert.equal(leftover, '');
  // The first line over TLS answers the first command sent over TLS.
  assert.equal(await client.command('USER bob'), '+OK send PASS');
  assert.equal(await client.command('PASS secret'), '+OK bob has 0 messages (0 octets)');
});

test('injection: half a line sent after STLS is dropped too, not joined to the next line', async (t) => {
  const { port } = await startServer(t, { tls, mailboxes });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  // Kept, "USER al" would become "USER alCAPA" with the next line, and that would be answered.
  const { client, leftover } = await plain.startTls(trust, 'STLS\r\nUSER al');
  t.after(() => {
    client.close();
  });
  assert.equal(leftover, '');
  assert.deepEqual(withoutSasl(await client.capa()), CAPA_TLS);
  assert.equal(await client.command('PASS pw'), '-ERR send USER first');
});

test('injection: plaintext that reaches the socket after STLS was read, before the reply, is thrown away', async (t) => {
  // The STLS line is read with the two before it, then the server waits out the failure delay of
  // PASS; the CAPA sent meanwhile lands in the socket's buffer, not in the line reader's. Fed to the
  // TLS layer, it would be taken for the start of the handshake and break it.
  const logger = new WaitableLogger();
  const { port } = await startServer(t, { tls, mailboxes, logger, limits: { authFailureDelayMs: 500 } });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  plain.write('USER alice\r\nPASS wrong\r\nSTLS\r\n');
  await logger.logged('login failed');
  plain.write('CAPA\r\n');
  assert.equal(await plain.readLine(), '+OK send PASS');
  assert.equal(await plain.readLine(), '-ERR [AUTH] invalid user name or password');
  const { client, reply, leftover } = await plain.startTls(trust, '');
  t.after(() => {
    client.close();
  });
  assert.equal(reply, '+OK Begin TLS negotiation');
  assert.equal(leftover, '', 'no cleartext reply to the CAPA');
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (28 octets)');
});

test('USER, then STLS, then PASS: the name given before TLS is forgotten', async (t) => {
  const { port } = await startServer(t, { tls, mailboxes });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  assert.equal(await plain.command('USER alice'), '+OK send PASS');
  const { client } = await plain.startTls(trust);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('PASS pw'), '-ERR send USER first');
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (28 octets)');
});

test('SNI after STLS: a.test and b.test get their certificates, other names and none get the default', async (t) => {
  const { port } = await startServer(t, { tls, mailboxes });
  const cases: { servername: string | undefined; expected: string; cn: string }[] = [
    { servername: 'a.test', expected: pki.a.fingerprint256, cn: 'a.test' },
    { servername: 'B.TEST', expected: pki.b.fingerprint256, cn: 'b.test' },
    { servername: 'c.test', expected: pki.localhost.fingerprint256, cn: 'localhost' },
    { servername: undefined, expected: pki.localhost.fingerprint256, cn: 'localhost' },
  ];
  for (const { servername, expected, cn } of cases) {
    const plain = await LineClient.plain(port);
    t.after(() => {
      plain.close();
    });
    // The unknown name gets a certificate that is not for it: accept it here, look at it below.
    const options =
      servername === undefined ? trust : { ...trust, servername, checkServerIdentity: () => undefined };
    const { client } = await plain.startTls(options);
    t.after(() => {
      client.close();
    });
    assert.equal(client.peerCertificate.fingerprint256, expected, `servername ${servername ?? '(none)'}`);
    assert.equal(client.peerCertificate.subject.CN, cn);
    assert.equal(client.tlsSocket.authorized, true);
    assert.equal(await client.command('USER alice'), '+OK send PASS');
    client.close();
  }
});

test('a failed handshake after STLS closes that connection only', async (t) => {
  const { server, port } = await startServer(t, { tls, mailboxes });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  const closed = once(server, 'close');
  plain.write('STLS\r\n');
  assert.equal(await plain.readLine(), '+OK Begin TLS negotiation');
  // Not a ClientHello: the server's TLS layer fails the handshake and drops the connection.
  plain.write('USER alice\r\n');
  await plain.closed();
  await closed;
  const other = await LineClient.plain(port);
  t.after(() => {
    other.close();
  });
  const { client } = await other.startTls(trust);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('USER alice'), '+OK send PASS');
});

test('events: connect says not TLS; login and close after STLS say TLS', async (t) => {
  const { server, port } = await startServer(t, { tls, mailboxes });
  const seen: string[] = [];
  server.on('connect', (info) => seen.push(`connect ${info.isTls}`));
  server.on('login', (info) => seen.push(`login ${info.isTls}`));
  const closed = once(server, 'close') as Promise<[ClosedSessionInfo]>;
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  const { client } = await plain.startTls(trust);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (28 octets)');
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (1 message left)');
  const [info] = await closed;
  seen.push(`close ${info.isTls}`);
  assert.deepEqual(seen, ['connect false', 'login true', 'close true']);
  assert.equal(info.user, 'alice');
});

test('commands before STLS in the same write are answered; those after it are dropped', async (t) => {
  const { port } = await startServer(t, { tls, mailboxes });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  plain.write('USER bob\r\nSTLS\r\nPASS secret\r\n');
  assert.equal(await plain.readLine(), '+OK send PASS');
  const { client, reply, leftover } = await plain.startTls(trust, '');
  t.after(() => {
    client.close();
  });
  assert.equal(reply, '+OK Begin TLS negotiation');
  assert.equal(leftover, '');
  assert.equal(await client.command('PASS secret'), '-ERR send USER first');
});

test('a client that sends STLS and then never starts the handshake is dropped within the login time', async (t) => {
  const { server, port } = await startServer(t, { tls, mailboxes, limits: { loginTimeoutMs: 2000 } });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  const closed = once(server, 'close') as Promise<[ClosedSessionInfo]>;
  plain.write('STLS\r\n');
  assert.equal(await plain.readLine(), '+OK Begin TLS negotiation');
  // No ClientHello: nothing more is sent in cleartext, and the server gives up on the handshake.
  assert.equal(await plain.closed(), '');
  const [info] = await closed;
  assert.equal(info.isTls, false);
  assert.equal(info.user, undefined);
});
