import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticAuthenticator } from '../../src/auth/static.js';
import type { Authenticator } from '../../src/auth/types.js';
import { Pop3Error, RespCode } from '../../src/errors.js';
import { MemoryStore } from '../../src/mailstore/memory.js';
import { en } from '../../src/pop3/text/en.js';
import { es } from '../../src/pop3/text/es.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { startServer } from '../helpers/start-server.js';

// RFC 6856 section 3: LANG lists the languages and switches a session's texts; codes never change.

const MESSAGES = ['Subject: uno\r\n\r\nhola\r\n', 'Subject: dos\r\n\r\nadiós\r\n'];
const BYTES = MESSAGES.reduce((sum, m) => sum + Buffer.byteLength(m), 0);

/** The client reads latin1; replies in Spanish are UTF-8. */
const utf8 = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('utf8');

async function es_(client: Pop3TestClient, line: string): Promise<string> {
  return utf8(await client.command(line));
}

async function multi(client: Pop3TestClient, line: string): Promise<string[]> {
  const { status, lines } = await client.multi(line);
  return [utf8(status), ...lines.map(utf8)];
}

test('CAPA announces LANG before and after login', async (t) => {
  const { port } = await startServer(t, { mailboxes: { alice: [] } });
  const client = await Pop3TestClient.connect(port);
  assert.ok((await client.multi('CAPA')).lines.includes('LANG'));
  await client.login('alice', 'pw');
  assert.ok((await client.multi('CAPA')).lines.includes('LANG'));
  client.close();
});

test('LANG lists en, es and i-default; ranges find a language by RFC 4647 lookup; the rest is refused', async (t) => {
  const { port } = await startServer(t, { mailboxes: { alice: [] } });
  const client = await Pop3TestClient.connect(port);
  assert.deepEqual(await multi(client, 'LANG'), [
    '+OK language listing follows',
    'en English',
    'es Español',
    'i-default Default language',
  ]);
  assert.equal(await es_(client, 'LANG es-MX'), `+OK ${es.languageChanged('es')}`);
  assert.equal(await es_(client, 'LANG'), `+OK ${es.languages()}`);
  assert.deepEqual(await client.readLines(), [
    'en English',
    'es Espa\u00c3\u00b1ol',
    'i-default Default language',
  ]);
  // A range that finds nothing: -ERR in the current language, which stays.
  assert.equal(await es_(client, 'LANG fr'), `-ERR ${es.unknownLanguage('fr')}`);
  assert.equal(await es_(client, 'LANG sv-SE'), `-ERR ${es.unknownLanguage('sv-SE')}`);
  assert.equal(await es_(client, 'NOOP'), `-ERR ${es.wrongState('NOOP', 'AUTHORIZATION')}`);
  // Not a language range at all: a protocol error.
  assert.equal(await es_(client, 'LANG e$'), `-ERR ${es.usage('LANG [language-range]')}`);
  assert.equal(await es_(client, 'LANG EN'), `+OK ${en.languageChanged('en')}`);
  assert.equal(await es_(client, 'LANG ES'), `+OK ${es.languageChanged('es')}`);
  assert.equal(await es_(client, 'LANG *'), `+OK ${en.languageChanged('i-default')}`);
  assert.equal(await es_(client, 'LANG i-default'), `+OK ${en.languageChanged('i-default')}`);
  assert.equal(await es_(client, 'LANG es-x-private'), `+OK ${es.languageChanged('es')}`);
  client.close();
});

test('a session in es: every reply text is the Spanish catalogue text, every code and protocol line unchanged', async (t) => {
  const { port } = await startServer(t, {
    mailboxes: { alice: MESSAGES, bob: [] },
    limits: { maxProtocolErrors: 100, maxAuthFailures: 100, maxPasswordBytes: 64 },
  });
  const c = await Pop3TestClient.connect(port);
  const sizes = MESSAGES.map((m) => Buffer.byteLength(m));
  const expected: [string, string][] = [
    ['LANG es', `+OK ${es.languageChanged('es')}`],
    ['CAPA', `+OK ${es.capabilities()}`],
    ['AUTH', `+OK ${es.methodsSupported()}`],
    ['AUTH FOO', `-ERR ${es.unsupportedMechanism('FOO')}`],
    ['AUTH PLAIN a b', `-ERR ${es.usage('AUTH mechanism [initial-response]')}`],
    ['AUTH PLAIN !!!!', `-ERR [AUTH] ${es.authFailed(es.saslInvalidBase64())}`],
    ['AUTH PLAIN AGFsaWNl', `-ERR [AUTH] ${es.authFailed(es.saslMalformed('plainMessage'))}`],
    ['AUTH PLAIN AABwdw==', `-ERR [AUTH] ${es.authFailed(es.saslEmptyUserOrPassword())}`],
    ['AUTH PLAIN wAB4AHB3', `-ERR [AUTH] ${es.authFailed(es.saslNotUtf8('authzid'))}`],
    ['AUTH CRAM-MD5 eA==', `-ERR [AUTH] ${es.authFailed(es.saslNoInitialResponse('CRAM-MD5'))}`],
    ['STAT', `-ERR ${es.wrongState('STAT', 'AUTHORIZATION')}`],
    ['FOO', `-ERR ${es.unknownCommand('FOO')}`],
    ['123', `-ERR ${es.invalidCommand()}`],
    ['', `-ERR ${es.emptyCommand()}`],
    ['PASS x', `-ERR ${es.sendUserFirst()}`],
    ['USER', `-ERR ${es.userNeedsName()}`],
    [`USER ${'x'.repeat(300)}`, `-ERR ${es.userNameTooLong()}`],
    ['APOP alice', `-ERR ${es.usage('APOP name digest')}`],
    ['STLS', `-ERR ${es.tlsUnavailable()}`],
    ['CAPA x', `-ERR ${es.takesNoArguments('CAPA')}`],
    ['UTF8', `+OK ${es.utf8Enabled()}`],
    ['UTF8', `+OK ${es.utf8Again()}`],
    ['USER alice', `+OK ${es.sendPass()}`],
    ['PASS', `-ERR ${es.passNeedsPassword()}`],
    ['USER alice', `+OK ${es.sendPass()}`],
    [`PASS ${'p'.repeat(100)}`, `-ERR [AUTH] ${es.passwordTooLong(64)}`],
    ['USER alice', `+OK ${es.sendPass()}`],
    ['PASS wrong', `-ERR [AUTH] ${es.invalidLogin()}`],
    ['USER alice', `+OK ${es.sendPass()}`],
    ['PASS pw', `+OK ${es.loggedIn('alice', 2, BYTES)}`],
    ['STAT', `+OK 2 ${BYTES}`],
    ['LIST', `+OK ${es.scanListing(2, BYTES)}`],
    ['LIST 1', `+OK 1 ${sizes[0]}`],
    ['LIST 9', `-ERR ${es.noSuchMessage(2)}`],
    ['LIST x', `-ERR ${es.invalidMessageNumber()}`],
    ['LIST 1 2', `-ERR ${es.tooManyArguments()}`],
    ['UIDL', `+OK ${es.uidListing()}`],
    ['RETR 1', `+OK ${es.octets(sizes[0] ?? 0)}`],
    ['RETR', `-ERR ${es.messageNumberRequired()}`],
    ['RETR 1 2', `-ERR ${es.takesOneMessageNumber('RETR')}`],
    ['TOP 1', `-ERR ${es.usage('TOP msg n')}`],
    ['TOP 1 x', `-ERR ${es.invalidLineCount()}`],
    ['TOP 1 0', `+OK ${es.topFollows()}`],
    ['DELE 1', `+OK ${es.deleted(1)}`],
    ['DELE 1', `-ERR ${es.alreadyDeleted(1)}`],
    ['DELE 1 2', `-ERR ${es.takesOneMessageNumber('DELE')}`],
    ['RSET', `+OK ${es.maildropHas(2, BYTES)}`],
    ['NOOP', '+OK'],
    ['NOOP x', `-ERR ${es.takesNoArguments('NOOP')}`],
    ['USER bob', `-ERR ${es.wrongState('USER', 'TRANSACTION')}`],
    ['UTF8', `+OK ${es.utf8AfterLogin()}`],
    ['LANG xx', `-ERR ${es.unknownLanguage('xx')}`],
    ['LANG', `+OK ${es.languages()}`],
    ['DELE 2', `+OK ${es.deleted(2)}`],
    ['QUIT', `+OK ${es.signingOffLeft(1)}`],
  ];
  for (const [line, reply] of expected) {
    const got = ['CAPA', 'AUTH', 'LIST', 'UIDL', 'RETR 1', 'TOP 1 0', 'LANG'].includes(line)
      ? ((await multi(c, line))[0] ?? '')
      : await es_(c, line);
    assert.equal(got, reply, line);
  }
  c.close();
  // Every text above is Spanish: none is its English counterpart.
  for (const [line, reply] of expected) {
    const text = reply.replace(/^[+-](OK|ERR)( \[[A-Z/-]+\])? ?/, '');
    if (/^[0-9 ]*$/.test(text)) continue; // protocol lines: STAT, LIST n
    assert.ok(!Object.values(en).some((f) => f.length === 0 && (f as () => string)() === text), line);
  }
});

test('in es: QUIT before login, too many failures, too many bad commands, IN-USE, a kick', async (t) => {
  const { port, server } = await startServer(t, {
    mailboxes: { alice: MESSAGES },
    limits: { maxProtocolErrors: 2, maxAuthFailures: 2 },
  });
  const quit = await Pop3TestClient.connect(port);
  await quit.command('LANG es');
  assert.equal(await es_(quit, 'QUIT'), `+OK ${es.signingOff()}`);
  quit.close();

  const failures = await Pop3TestClient.connect(port);
  await failures.command('LANG es');
  assert.equal(
    await es_(failures, 'AUTH PLAIN !!!!'),
    `-ERR [AUTH] ${es.authFailed(es.saslInvalidBase64())}`,
  );
  await failures.command('USER alice');
  assert.equal(await es_(failures, 'PASS no'), `-ERR [AUTH] ${es.tooManyFailures(es.invalidLogin())}`);
  await failures.closed();

  const bad = await Pop3TestClient.connect(port);
  await bad.command('LANG es');
  await bad.command('FOO');
  assert.equal(await es_(bad, 'BAR'), `-ERR ${es.tooManyBadCommands(es.unknownCommand('BAR'))}`);
  await bad.closed();

  const first = await Pop3TestClient.connect(port);
  await first.login('alice', 'pw');
  const second = await Pop3TestClient.connect(port);
  await second.command('LANG es');
  await second.command('USER alice');
  assert.equal(await es_(second, 'PASS pw'), `-ERR [IN-USE] ${es.inUse()}`);
  second.close();

  await first.command('LANG es');
  server.endSessionsOf('alice');
  assert.equal(utf8(await first.readLine()), `-ERR [SYS/TEMP] ${es.endedByAdministrator()}`);
  await first.closed();
  // A library's own words (not a text of the catalogue) are sent as they are.
  const third = await Pop3TestClient.connect(port);
  await third.login('alice', 'pw');
  await third.command('LANG es');
  server.endSessionsOf('alice', 'maintenance at 22:00');
  assert.equal(await third.readLine(), '-ERR [SYS/TEMP] maintenance at 22:00');
  third.close();
});

test('in es: texts of the backends (SYS/TEMP) and of internal errors; a hook error keeps its own words', async (t) => {
  const down: Authenticator = { authenticate: () => Promise.resolve({ ok: false, reason: 'temporary' }) };
  const { port } = await startServer(t, { authenticator: down });
  const c = await Pop3TestClient.connect(port);
  await c.command('LANG es');
  await c.command('USER alice');
  assert.equal(await es_(c, 'PASS pw'), `-ERR [SYS/TEMP] ${es.authUnavailable()}`);
  c.close();

  const broken = new MemoryStore({});
  broken.open = () => Promise.reject(new Error('disk on fire'));
  const { port: brokenPort } = await startServer(t, {
    store: broken,
    authenticator: new StaticAuthenticator({ alice: 'pw' }),
  });
  const d = await Pop3TestClient.connect(brokenPort);
  await d.command('LANG es');
  await d.command('USER alice');
  assert.equal(await es_(d, 'PASS pw'), `-ERR [SYS/TEMP] ${es.internalError()}`);
  d.close();

  const gone = new MemoryStore({});
  gone.open = () =>
    Promise.reject(
      new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, { text: 'mailboxUnavailable' }),
    );
  const { port: gonePort } = await startServer(t, {
    store: gone,
    authenticator: new StaticAuthenticator({ alice: 'pw' }),
  });
  const e = await Pop3TestClient.connect(gonePort);
  await e.command('LANG es');
  await e.command('USER alice');
  assert.equal(await es_(e, 'PASS pw'), `-ERR [SYS/TEMP] ${es.mailboxUnavailable()}`);
  e.close();

  const hooked = new MemoryStore({});
  hooked.open = () => Promise.reject(new Pop3Error('closed for the holidays', RespCode.sysPerm));
  const { port: hookedPort } = await startServer(t, {
    store: hooked,
    authenticator: new StaticAuthenticator({ alice: 'pw' }),
  });
  const f = await Pop3TestClient.connect(hookedPort);
  await f.command('LANG es');
  await f.command('USER alice');
  assert.equal(await f.command('PASS pw'), '-ERR [SYS/PERM] closed for the holidays');
  f.close();
});
