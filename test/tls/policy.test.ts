// The cleartext policy (RFC 8314 section 3, RFC 2595 section 2.4): USER/PASS and the cleartext SASL
// mechanisms are refused on connections that are neither TLS nor local, unless allowed. "Local" is
// injectable (isLocalAddress), so these tests run on loopback; one more test uses a real
// non-loopback address of this machine when it has one.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import { startServer } from '../helpers/start-server.js';
import { pair, usePki } from './certs.js';
import { cleartextSaslOf, LineClient, withoutSasl } from './tls-client.js';

const pki = await usePki();
const tls = pair(pki.localhost);
const trust = { ca: pki.ca };
const mailboxes = { alice: ['Subject: x\r\n\r\nbody\r\n'] }; // 12 + 2 + 6 = 20 octets
const notLocal = (): boolean => false;

const REFUSED_STLS =
  '-ERR [AUTH] cleartext login refused on an unencrypted connection, TLS is required: send STLS first';
const REFUSED = '-ERR [AUTH] cleartext login refused on an unencrypted connection, TLS is required';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const CLEARTEXT_MECHANISMS = ['PLAIN', 'LOGIN'];

test('not TLS, not local: CAPA lacks USER, PLAIN and LOGIN; USER, PASS and AUTH PLAIN/LOGIN say TLS is required', async (t) => {
  const { port } = await startServer(t, { tls, mailboxes, isLocalAddress: notLocal });
  const client = await LineClient.plain(port);
  t.after(() => {
    client.close();
  });
  const caps = await client.capa();
  assert.deepEqual(withoutSasl(caps), [
    'TOP',
    'UIDL',
    'STLS',
    'RESP-CODES',
    'AUTH-RESP-CODE',
    'PIPELINING',
    'UTF8 USER',
    'LANG',
    'IMPLEMENTATION Poplar',
  ]);
  assert.deepEqual(cleartextSaslOf(caps), [], 'neither PLAIN nor LOGIN offered');

  assert.equal(await client.command('USER alice'), REFUSED_STLS);
  assert.equal(await client.command('PASS pw'), REFUSED_STLS);
  assert.equal(await client.command(`AUTH PLAIN ${b64('\0alice\0pw')}`), REFUSED_STLS);
  assert.equal(await client.command('AUTH PLAIN'), REFUSED_STLS, 'refused before any challenge');
  assert.equal(await client.command('AUTH LOGIN'), REFUSED_STLS);
  const list = await client.multi('AUTH');
  for (const m of CLEARTEXT_MECHANISMS) assert.ok(!list.lines.includes(m), `bare AUTH does not list ${m}`);
  // The refusals are not failed logins: the connection is still open, and the session still usable.
  assert.equal(await client.command('NOOP'), '-ERR NOOP is not valid in the AUTHORIZATION state');
});

test('not TLS, not local, and no certificate: the refusal does not suggest STLS', async (t) => {
  const { port } = await startServer(t, { mailboxes, isLocalAddress: notLocal });
  const client = await LineClient.plain(port);
  t.after(() => {
    client.close();
  });
  const caps = await client.capa();
  assert.ok(!caps.includes('USER'));
  assert.ok(!caps.includes('STLS'));
  assert.equal(await client.command('USER alice'), REFUSED);
  assert.equal(await client.command(`AUTH PLAIN ${b64('\0alice\0pw')}`), REFUSED);
});

test('after STLS the same logins work: CAPA lists USER, PLAIN and LOGIN', async (t) => {
  const { port } = await startServer(t, { tls, mailboxes, isLocalAddress: notLocal });
  const plain = await LineClient.plain(port);
  t.after(() => {
    plain.close();
  });
  const { client } = await plain.startTls(trust);
  t.after(() => {
    client.close();
  });
  const caps = await client.capa();
  assert.ok(caps.includes('USER'));
  assert.ok(!caps.includes('STLS'));
  assert.deepEqual(cleartextSaslOf(caps), CLEARTEXT_MECHANISMS);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (20 octets)');
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (1 message left)');
  await client.closed();

  const plain2 = await LineClient.plain(port);
  t.after(() => {
    plain2.close();
  });
  const { client: sasl } = await plain2.startTls(trust);
  t.after(() => {
    sasl.close();
  });
  assert.equal(await sasl.command(`AUTH PLAIN ${b64('\0alice\0pw')}`), '+OK alice has 1 message (20 octets)');

  const plain3 = await LineClient.plain(port);
  t.after(() => {
    plain3.close();
  });
  const { client: login } = await plain3.startTls(trust);
  t.after(() => {
    login.close();
  });
  assert.equal(await login.command('AUTH LOGIN'), `+ ${b64('Username:')}`);
  assert.equal(await login.command(b64('bob')), `+ ${b64('Password:')}`);
  assert.equal(await login.command(b64('secret')), '+OK bob has 0 messages (0 octets)');
});

test('implicit TLS from a non-local address: USER/PASS allowed', async (t) => {
  const { server } = await startServer(t, { tls, mailboxes, isLocalAddress: notLocal });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0, tls: true });
  const client = await LineClient.tls(port, trust);
  t.after(() => {
    client.close();
  });
  assert.ok((await client.capa()).includes('USER'));
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (20 octets)');
});

test('allowCleartextLogin: USER/PASS and AUTH PLAIN work without TLS from a non-local address', async (t) => {
  const { port } = await startServer(t, {
    tls,
    mailboxes,
    isLocalAddress: notLocal,
    allowCleartextLogin: true,
  });
  const client = await LineClient.plain(port);
  t.after(() => {
    client.close();
  });
  const caps = await client.capa();
  assert.ok(caps.includes('USER'));
  assert.ok(caps.includes('STLS'), 'STLS is still offered');
  assert.deepEqual(cleartextSaslOf(caps), CLEARTEXT_MECHANISMS);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), '+OK alice has 1 message (20 octets)');

  const other = await LineClient.plain(port);
  t.after(() => {
    other.close();
  });
  assert.equal(
    await other.command(`AUTH PLAIN ${b64('\0bob\0secret')}`),
    '+OK bob has 0 messages (0 octets)',
  );
});

test('APOP is not a cleartext login: allowed without TLS from a non-local address', async (t) => {
  const { port } = await startServer(t, { tls, mailboxes, isLocalAddress: notLocal });
  const client = await LineClient.plain(port);
  t.after(() => {
    client.close();
  });
  const timestamp = /<[^>]+>/.exec(client.greeting)?.[0];
  assert.ok(timestamp !== undefined, `an APOP timestamp in ${client.greeting}`);
  const digest = createHash('md5').update(`${timestamp}pw`).digest('hex');
  assert.equal(await client.command(`APOP alice ${digest}`), '+OK alice has 1 message (20 octets)');
});

test('isLocalAddress is asked about the client address; the default counts loopback as local', async (t) => {
  const asked: string[] = [];
  const { port } = await startServer(t, {
    tls,
    mailboxes,
    isLocalAddress: (address) => {
      asked.push(address);
      return address === '127.0.0.1';
    },
  });
  const client = await LineClient.plain(port);
  t.after(() => {
    client.close();
  });
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.ok(asked.length > 0);
  assert.deepEqual(new Set(asked), new Set(['127.0.0.1']));

  // The default: loopback is local, so plain logins work there.
  const { port: defaultPort } = await startServer(t, { tls, mailboxes });
  const local = await LineClient.plain(defaultPort);
  t.after(() => {
    local.close();
  });
  assert.ok((await local.capa()).includes('USER'));
  assert.equal(await local.command('USER alice'), '+OK send PASS');
  assert.equal(await local.command('PASS pw'), '+OK alice has 1 message (20 octets)');
});

/** An IPv4 address of this machine that is not loopback, if it has one. */
function nonLoopbackAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('127.')) return a.address;
    }
  }
  return undefined;
}

test('a real non-loopback address (when the machine has one): the default policy refuses USER there', async (t) => {
  const address = nonLoopbackAddress();
  if (address === undefined) {
    // Some CI containers have loopback only; the isLocalAddress tests above cover the policy.
    t.skip('this machine has no IPv4 address other than loopback');
    return;
  }
  const { server } = await startServer(t, { tls, mailboxes });
  const { port } = await server.listen({ host: address, port: 0 });
  const client = await LineClient.plain(port, address);
  t.after(() => {
    client.close();
  });
  assert.ok(!(await client.capa()).includes('USER'));
  assert.equal(await client.command('USER alice'), REFUSED_STLS);
  const { client: secure } = await client.startTls({ ...trust, checkServerIdentity: () => undefined });
  t.after(() => {
    secure.close();
  });
  assert.equal(await secure.command('USER alice'), '+OK send PASS');
  assert.equal(await secure.command('PASS pw'), '+OK alice has 1 message (20 octets)');
});
