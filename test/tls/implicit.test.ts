// Implicit TLS (RFC 8314, POP3S) with listen({ tls: true }); SNI; TLS 1.2 as the floor; certificate
// reloads with setTls() on both kinds of listener.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { connect as connectTcp } from 'node:net';
import { createServer as createTlsServer, type ConnectionOptions } from 'node:tls';
import { StaticAuthenticator } from '../../src/auth/static.js';
import { MemoryStore } from '../../src/mailstore/memory.js';
import { createServer } from '../../src/pop3/server.js';
import type { Pop3TlsOptions } from '../../src/pop3/tls.js';
import { startServer } from '../helpers/start-server.js';
import { pair, usePki } from './certs.js';
import { cleartextSaslOf, LineClient, withoutSasl } from './tls-client.js';

const pki = await usePki();

// 28 octets: 13 + 2 + 11 + 2.
const MESSAGE = 'Subject: hi\r\n\r\n.dot line\r\n\r\n';
const mailboxes = { alice: [MESSAGE] };
const sni = { 'a.test': pair(pki.a), 'b.test': pair(pki.b), '*.wild.test': pair(pki.wild) };
const tls: Pop3TlsOptions = { ...pair(pki.localhost), sni };
const trust = { ca: pki.ca };

/** A server with both listeners: plain (STLS) and implicit TLS. */
async function startBoth(t: TestContext, options: Parameters<typeof startServer>[1] = {}) {
  const started = await startServer(t, { tls, mailboxes, ...options });
  const { port: tlsPort } = await started.server.listen({ host: '127.0.0.1', port: 0, tls: true });
  return { ...started, tlsPort };
}

/** Connects with TLS, reads the greeting, and closes the connection after the test. */
async function pop3s(t: TestContext, port: number, options: ConnectionOptions = trust): Promise<LineClient> {
  const client = await LineClient.tls(port, options);
  t.after(() => {
    client.close();
  });
  return client;
}

/** The fingerprint of the certificate a TLS handshake on `port` presents (the connection is then closed). */
async function certificateOn(port: number, options: ConnectionOptions = {}): Promise<string> {
  const client = await LineClient.tls(port, { ...trust, ...options });
  try {
    return client.peerCertificate.fingerprint256;
  } finally {
    client.close();
  }
}

/** Same, after STLS on the plain port. */
async function certificateAfterStls(port: number, options: ConnectionOptions = {}): Promise<string> {
  const plain = await LineClient.plain(port);
  try {
    const { client } = await plain.startTls({ ...trust, ...options });
    const fingerprint = client.peerCertificate.fingerprint256;
    client.close();
    return fingerprint;
  } finally {
    plain.close();
  }
}

/** Accept whatever certificate comes (the test compares it itself). */
const anyName = { checkServerIdentity: () => undefined };

test('implicit TLS: handshake first, then the greeting; CAPA has USER and no STLS; login and RETR', async (t) => {
  const { tlsPort } = await startBoth(t);
  const client = await pop3s(t, tlsPort);
  assert.match(client.greeting, /^\+OK Poplar POP3 server ready/);
  assert.equal(client.tlsSocket.authorized, true);
  assert.equal(client.peerCertificate.fingerprint256, pki.localhost.fingerprint256);
  const caps = await client.capa();
  assert.deepEqual(withoutSasl(caps), [
    'TOP',
    'UIDL',
    'USER',
    'RESP-CODES',
    'AUTH-RESP-CODE',
    'PIPELINING',
    'UTF8 USER',
    'LANG',
    'IMPLEMENTATION Poplar',
  ]);
  assert.deepEqual(cleartextSaslOf(caps), ['PLAIN', 'LOGIN']);
  assert.equal(await client.command('STLS'), '-ERR command not permitted when TLS is active');
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (28 octets)');
  assert.deepEqual(await client.multi('RETR 1'), {
    status: '+OK 28 octets',
    lines: ['Subject: hi', '', '.dot line', ''],
  });
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (1 message left)');
  assert.equal(await client.closed(), '');
});

test('implicit TLS: the connect event and the login say tls', async (t) => {
  const { server, tlsPort } = await startBoth(t);
  const connects: boolean[] = [];
  server.on('connect', (info) => connects.push(info.isTls));
  const logins: boolean[] = [];
  server.on('login', (info) => logins.push(info.isTls));
  const client = await pop3s(t, tlsPort);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (28 octets)');
  assert.deepEqual(connects, [true]);
  assert.deepEqual(logins, [true]);
});

test('listen({ tls: true }) without the tls option is refused', async (t) => {
  const server = createServer({ store: new MemoryStore({}), authenticator: new StaticAuthenticator({}) });
  t.after(() => server.close({ graceMs: 0 }));
  await assert.rejects(server.listen({ host: '127.0.0.1', port: 0, tls: true }), {
    message: 'implicit TLS needs the tls option (a certificate and key)',
  });
  assert.deepEqual(server.addresses(), []);
});

test('SNI on the implicit TLS port: exact names, a wildcard, and the default for other names', async (t) => {
  const { tlsPort } = await startBoth(t);
  const cases: { servername: string | undefined; expected: string; cn: string }[] = [
    { servername: 'a.test', expected: pki.a.fingerprint256, cn: 'a.test' },
    { servername: 'b.test', expected: pki.b.fingerprint256, cn: 'b.test' },
    { servername: 'mail.wild.test', expected: pki.wild.fingerprint256, cn: '*.wild.test' },
    // One level only: a.b.wild.test is not *.wild.test.
    { servername: 'a.b.wild.test', expected: pki.localhost.fingerprint256, cn: 'localhost' },
    { servername: 'unknown.test', expected: pki.localhost.fingerprint256, cn: 'localhost' },
    { servername: undefined, expected: pki.localhost.fingerprint256, cn: 'localhost' },
  ];
  for (const { servername, expected, cn } of cases) {
    const options = servername === undefined ? trust : { ...trust, ...anyName, servername };
    const client = await pop3s(t, tlsPort, options);
    const label = `servername ${servername ?? '(none)'}`;
    assert.equal(client.peerCertificate.fingerprint256, expected, label);
    assert.equal(client.peerCertificate.subject.CN, cn, label);
    assert.equal(client.tlsSocket.authorized, true, label);
    client.close();
  }
  // With hostname checking on, a name the server has a certificate for verifies.
  const strict = await pop3s(t, tlsPort, { ...trust, servername: 'a.test' });
  assert.equal(strict.tlsSocket.authorized, true);
  assert.equal(await strict.command('USER alice'), '+OK send PASS');
});

test('TLS 1.1 is refused with a protocol_version alert, on both ports; TLS 1.2 is accepted', async (t) => {
  const { port, tlsPort } = await startBoth(t);
  // The client is made willing to speak 1.0 and 1.1 (OpenSSL 3 would not otherwise), so that the
  // refusal is the server's.
  const old = {
    ...trust,
    minVersion: 'TLSv1',
    maxVersion: 'TLSv1.1',
    ciphers: 'DEFAULT:@SECLEVEL=0',
  } as const;
  await assert.rejects(LineClient.tls(tlsPort, old), { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  await assert.rejects(plain.startTls(old), { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });

  const tls12 = { ...trust, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;
  const implicit = await pop3s(t, tlsPort, tls12);
  assert.equal(implicit.tlsSocket.getProtocol(), 'TLSv1.2');
  assert.equal(await implicit.command('USER alice'), '+OK send PASS');
  const plain2 = await LineClient.plain(port);
  t.after(() => {
    plain2.close();
  });
  const { client } = await plain2.startTls(tls12);
  t.after(() => {
    client.close();
  });
  assert.equal(client.tlsSocket.getProtocol(), 'TLSv1.2');
  assert.equal(await client.command('USER alice'), '+OK send PASS');
});

test('setTls(): new handshakes get the new certificate, sessions opened before go on', async (t) => {
  const { server, port, tlsPort } = await startBoth(t);
  // Two sessions encrypted with the old certificate, logged in by different users.
  const implicit = await pop3s(t, tlsPort);
  assert.equal(implicit.peerCertificate.fingerprint256, pki.localhost.fingerprint256);
  assert.equal(await implicit.command('USER alice'), '+OK send PASS');
  assert.equal(await implicit.command('PASS pw'), '+OK alice has 1 message (28 octets)');
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  const { client: upgraded } = await plain.startTls(trust);
  t.after(() => {
    upgraded.close();
  });
  assert.equal(await upgraded.command('USER bob'), '+OK send PASS');

  server.setTls({ ...pair(pki.renewed), sni: { 'a.test': pair(pki.b) } });

  assert.equal(await certificateOn(tlsPort), pki.renewed.fingerprint256);
  assert.equal(await certificateAfterStls(port), pki.renewed.fingerprint256);
  // The SNI table is replaced too: a.test now gets b's certificate, b.test the default.
  assert.equal(await certificateOn(tlsPort, { servername: 'a.test', ...anyName }), pki.b.fingerprint256);
  assert.equal(
    await certificateOn(tlsPort, { servername: 'b.test', ...anyName }),
    pki.renewed.fingerprint256,
  );
  assert.equal(await certificateAfterStls(port, { servername: 'a.test', ...anyName }), pki.b.fingerprint256);

  // The old sessions are still there, on the old keys.
  assert.equal(await implicit.command('STAT'), '+OK 1 28');
  assert.deepEqual(await implicit.multi('RETR 1'), {
    status: '+OK 28 octets',
    lines: ['Subject: hi', '', '.dot line', ''],
  });
  assert.equal(await upgraded.command('PASS secret'), '+OK bob has 0 messages (0 octets)');
  assert.equal(await upgraded.command('NOOP'), '+OK');
});

test('setTls() with an unusable key or certificate throws and the old certificates stay', async (t) => {
  const { server, port, tlsPort } = await startBoth(t);
  const garbage = Buffer.from('-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  assert.throws(() => {
    server.setTls({ cert: garbage, key: pki.renewed.key });
  });
  // A certificate with another certificate's key.
  assert.throws(() => {
    server.setTls({ cert: pki.renewed.cert, key: pki.a.key });
  });
  // A good default, but one bad SNI entry: nothing changes at all.
  assert.throws(() => {
    server.setTls({ ...pair(pki.renewed), sni: { 'a.test': { cert: garbage, key: pki.a.key } } });
  });
  assert.equal(await certificateOn(tlsPort), pki.localhost.fingerprint256);
  assert.equal(await certificateAfterStls(port), pki.localhost.fingerprint256);
  assert.equal(await certificateOn(tlsPort, { servername: 'a.test' }), pki.a.fingerprint256);
  assert.equal(await certificateAfterStls(port, { servername: 'b.test' }), pki.b.fingerprint256);
});

test('setTls() on a server made without TLS throws', async (t) => {
  const { server } = await startServer(t, {});
  assert.throws(
    () => {
      server.setTls(pair(pki.localhost));
    },
    { message: 'the server was created without TLS' },
  );
});

test('a client that is not TLS on the implicit port gets no greeting and is dropped; the port keeps serving', async (t) => {
  const { tlsPort } = await startBoth(t);
  const socket = connectTcp({ port: tlsPort, host: '127.0.0.1' });
  t.after(() => socket.destroy());
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write('USER alice\r\n');
  await new Promise<void>((resolve) =>
    socket.once('close', () => {
      resolve();
    }),
  );
  // Whatever came back (a TLS alert, or nothing) is not a POP3 reply.
  assert.ok(!Buffer.concat(received).toString('latin1').includes('+OK'));
  const client = await pop3s(t, tlsPort);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
});

test('a TLS socket the host accepted itself is served through handleConnection(socket, true)', async (t) => {
  const { server } = await startServer(t, { tls, mailboxes });
  const host = createTlsServer({ ...pair(pki.localhost), allowHalfOpen: true }, (socket) => {
    server.handleConnection(socket, true);
  });
  await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) =>
        host.close(() => {
          resolve();
        }),
      ),
  );
  const { port } = host.address() as { port: number };
  const client = await pop3s(t, port);
  const caps = await client.capa();
  assert.ok(!caps.includes('STLS'), 'no STLS on a connection that is already TLS');
  assert.equal(await client.command('STLS'), '-ERR command not permitted when TLS is active');
});
