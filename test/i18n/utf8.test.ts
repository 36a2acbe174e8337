import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { StaticAuthenticator } from '../../src/auth/static.js';
import type { Authenticator } from '../../src/auth/types.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { dialog, Pop3TestClient } from '../helpers/pop3-client.js';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';

// RFC 6856 UTF8 and UTF-8 user names and passwords, against the engine on a loopback port.

const NFC = 'jöhn'; // U+00F6
const NFD = 'jo\u0308hn'; // o + COMBINING DIAERESIS
const PASSWORD_NFC = 'pässwörd';
const PASSWORD_NFD = 'pa\u0308sswo\u0308rd';
const MESSAGE = 'Subject: hola\r\n\r\nbody\r\n'; // 23 octets

/** The test client reads lines as latin1; a UTF-8 reply is read back as UTF-8. */
const utf8 = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('utf8');

async function start(t: Parameters<typeof startServer>[0], limits = {}) {
  return startServer(t, {
    mailboxes: { [NFC]: [MESSAGE], ñandú: [], alice: [] },
    authenticator: new StaticAuthenticator({ [NFC]: PASSWORD_NFC, ñandú: 'secreto', alice: 'pw' }),
    limits,
  });
}

const plain = (authzid: string, authcid: string, password: string): string =>
  Buffer.from(`${authzid}\0${authcid}\0${password}`, 'utf8').toString('base64');

test('CAPA announces UTF8 with its USER argument, before and after login', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, ['CAPA', 'USER alice', 'PASS pw', 'CAPA']);
  for (const capa of [replies[1], replies[4]]) {
    assert.ok(capa?.split('\n').includes('UTF8 USER'), capa);
  }
});

test('UTF8 in AUTHORIZATION: +OK, again +OK, refused with an argument', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, ['UTF8', 'utf8', 'UTF8 now']);
  assert.deepEqual(replies.slice(1), [
    '+OK UTF-8 mode, user names and passwords may be UTF-8',
    '+OK already in UTF-8 mode',
    '-ERR UTF8 takes no arguments',
  ]);
});

test('UTF8 after PASS (Outlook) is +OK and never counts towards maxProtocolErrors', async (t) => {
  const { port } = await start(t, { maxProtocolErrors: 2 });
  const client = await Pop3TestClient.connect(port);
  await client.login('alice', 'pw');
  for (let i = 0; i < 5; i++)
    assert.equal(await client.command('UTF8'), '+OK UTF8 changes nothing after login');
  // One real protocol error is still the first of two: the connection stays open.
  assert.equal(await client.command('BOGUS'), '-ERR unknown command BOGUS');
  assert.equal(await client.command('NOOP'), '+OK');
  assert.match(await client.command('QUIT'), /^\+OK /);
  client.close();
});

test('a UTF-8 user logs in with UTF8, USER and PASS, and gets its maildrop', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, ['UTF8', `USER ${NFC}`, `PASS ${PASSWORD_NFC}`, 'STAT']);
  assert.equal(replies[3] !== undefined && utf8(replies[3]), `+OK ${NFC} has 1 message (23 octets)`);
  assert.equal(replies[4], '+OK 1 23');
});

test('composed or decomposed, the name and the password are one user and one maildrop', async (t) => {
  const { port } = await start(t);
  for (const [name, password] of [
    [NFD, PASSWORD_NFD],
    [NFD, PASSWORD_NFC],
    [NFC, PASSWORD_NFD],
  ] as const) {
    const replies = await dialog(port, ['UTF8', `USER ${name}`, `PASS ${password}`]);
    assert.equal(utf8(replies[3] ?? ''), `+OK ${NFC} has 1 message (23 octets)`, `${name} ${password}`);
  }
  // Without UTF8 first too: clients such as Thunderbird send UTF-8 names without asking.
  const replies = await dialog(port, [`USER ${NFD}`, `PASS ${PASSWORD_NFD}`]);
  assert.equal(utf8(replies[2] ?? ''), `+OK ${NFC} has 1 message (23 octets)`);
});

test('SASL PLAIN with a UTF-8 name and password, composed or decomposed (RFC 4616 SASLprep)', async (t) => {
  const { port } = await start(t);
  for (const [authzid, name, password] of [
    ['', NFC, PASSWORD_NFC],
    ['', NFD, PASSWORD_NFD],
    [NFC, NFD, PASSWORD_NFC],
  ] as const) {
    const replies = await dialog(port, [`AUTH PLAIN ${plain(authzid, name, password)}`]);
    assert.equal(utf8(replies[1] ?? ''), `+OK ${NFC} has 1 message (23 octets)`);
  }
  // A no-break space is a space to SASLprep, and a soft hyphen nothing: still one password.
  const replies = await dialog(port, [`AUTH PLAIN ${plain('', 'ñandú', 'se\u00adcreto')}`]);
  assert.equal(utf8(replies[1] ?? ''), '+OK ñandú has 0 messages (0 octets)');
});

test('a wrong UTF-8 password, and one SASLprep refuses, fail like any other', async (t) => {
  const { port } = await start(t);
  const replies = await dialog(port, [
    'UTF8',
    `USER ${NFC}`,
    'PASS pässwörd!',
    `USER ${NFC}`,
    'PASS pässwörd\u202e',
  ]);
  assert.equal(replies[3], '-ERR [AUTH] invalid user name or password');
  assert.equal(replies[5], '-ERR [AUTH] invalid user name or password');
});

const HOSTILE = [
  '../alice',
  '..',
  '.',
  '.hidden',
  'a/b',
  'a\\b',
  'a\uff0fb', // FULLWIDTH SOLIDUS: "/" once prepared
  '\u2024\u2024', // ONE DOT LEADER x2: ".." once prepared
  'é'.repeat(33), // 66 bytes
  'a\u202eb', // RIGHT-TO-LEFT OVERRIDE
  'a\u200fb', // RIGHT-TO-LEFT MARK
  '\u05d0a', // Hebrew mixed with Latin
  'a\u0001b',
  'a\u0085b', // NEL, a C1 control
  'alice\ufeff', // BOM: not alice
  'alice\u200b', // zero-width space: not alice
  '\u0430lice', // Cyrillic a: not a look-alike second alice
  'a\u0338lice', // combining long solidus overlay
  '🔑',
];

test('hostile names never log in, by USER/PASS or SASL PLAIN, even if the backend holds them', async (t) => {
  // The StaticAuthenticator drops invalid names as the users file does; this backend does not.
  const seen: string[] = [];
  const permissive: Authenticator = {
    authenticate(request) {
      seen.push(request.username);
      return Promise.resolve({ ok: true, user: { name: request.username } });
    },
  };
  const root = await tempDir(t);
  const { port } = await startServer(t, { authenticator: permissive, store: new MaildirStore({ root }) });
  for (const name of HOSTILE) {
    const viaSasl = await dialog(port, [`AUTH PLAIN ${plain('', name, 'pw')}`]);
    assert.match(viaSasl[1] ?? '', /^-ERR \[SYS\/PERM\] invalid user name$/, JSON.stringify(name));
    // eslint-disable-next-line no-control-regex -- C0 and C1 controls
    if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) continue; // not a command line at all
    const viaUser = await dialog(port, ['UTF8', `USER ${name}`, 'PASS pw']);
    assert.match(viaUser[3] ?? '', /^-ERR /, JSON.stringify(name));
  }
  // The names reached the backend prepared (a fullwidth solidus as "/"), and the store refused every one.
  assert.ok(seen.includes('a/b'));
  assert.deepEqual(readdirSync(root), []);
});

test('hostile names in a users list are dropped: no login', async (t) => {
  const users = Object.fromEntries(HOSTILE.map((name) => [name, 'pw']));
  const { port } = await startServer(t, { authenticator: new StaticAuthenticator(users) });
  for (const name of HOSTILE) {
    const replies = await dialog(port, [`AUTH PLAIN ${plain('', name, 'pw')}`]);
    assert.equal(replies[1], '-ERR [AUTH] invalid user name or password', JSON.stringify(name));
  }
});

test('the Maildir folder of a UTF-8 user is its name in UTF-8, composed, whichever form was typed', async (t) => {
  const root = await tempDir(t);
  const { port } = await startServer(t, {
    authenticator: new StaticAuthenticator({ [NFC]: PASSWORD_NFC, 用户: 'pw' }),
    store: new MaildirStore({ root }),
  });
  const replies = await dialog(port, ['UTF8', `USER ${NFD}`, `PASS ${PASSWORD_NFD}`, 'QUIT']);
  assert.equal(utf8(replies[3] ?? ''), `+OK ${NFC} has 0 messages (0 octets)`);
  await dialog(port, [`AUTH PLAIN ${plain('', '用户', 'pw')}`, 'QUIT']);
  assert.deepEqual(readdirSync(root).sort(), [NFC, '用户'].sort());
  assert.ok(existsSync(join(root, NFC, 'cur')));
  assert.ok(!existsSync(join(root, NFD)));
});
