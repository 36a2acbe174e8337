// The engine's per-user policy with the MemoryStore and a MemoryUserLedger (docs/policy.md): the
// effective policy handed to the store, CAPA's EXPIRE and LOGIN-DELAY before and after login,
// EXPIRE 0 at QUIT, LOGIN-DELAY (a ledger pre-filled with a recent start, never a wait),
// maxSessions, the daily download limit, and the access record the ledger keeps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticAuthenticator } from '../../src/auth/static.js';
import { MemoryUserLedger, utcDay, type LedgerState } from '../../src/mailstore/ledger.js';
import { MemoryStore } from '../../src/mailstore/memory.js';
import type { MailStore } from '../../src/mailstore/types.js';
import type { UserPolicyOverrides } from '../../src/policy.js';
import type { MailUser } from '../../src/user.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { startServer } from '../helpers/start-server.js';

const MAIL = [
  'Subject: one\r\n\r\nfirst\r\n',
  'Subject: two\r\n\r\nsecond\r\n',
  'Subject: three\r\n\r\nthird\r\n',
];
const [S0 = 0, S1 = 0] = MAIL.map((m) => Buffer.byteLength(m));

function authenticator(policies: Record<string, UserPolicyOverrides>): StaticAuthenticator {
  return new StaticAuthenticator({ alice: 'pw', bob: 'secret' }, { policies });
}

const ledgerWith = (user: string, state: Partial<LedgerState>): MemoryUserLedger =>
  new MemoryUserLedger({
    [user]: { lastStart: undefined, day: undefined, dayBytes: 0, sessions: [], ...state },
  });

async function login(port: number, user = 'alice', password = 'pw'): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(port);
  assert.match(await client.command(`USER ${user}`), /^\+OK/);
  const reply = await client.command(`PASS ${password}`);
  assert.match(reply, /^\+OK/, reply);
  return client;
}

const capa = async (client: Pop3TestClient): Promise<string[]> => (await client.multi('CAPA')).lines;

test('CAPA: without a policy option and a user without own values, neither EXPIRE nor LOGIN-DELAY', async (t) => {
  const { port } = await startServer(t, { mailboxes: { alice: MAIL } });
  const client = await Pop3TestClient.connect(port);
  assert.ok(!(await capa(client)).some((c) => /^(EXPIRE|LOGIN-DELAY)/.test(c)));
  client.close();
  const user = await login(port);
  assert.ok(!(await capa(user)).some((c) => /^(EXPIRE|LOGIN-DELAY)/.test(c)));
  user.close();
});

test('CAPA: the server-wide values with USER before login, the user’s own after (RFC 2449 6.7, 6.8)', async (t) => {
  const { port } = await startServer(t, {
    policy: { expire: 30, loginDelaySeconds: 0 },
    authenticator: authenticator({ alice: { expire: 0, loginDelaySeconds: 900 } }),
    mailboxes: { alice: MAIL },
  });
  const before = await Pop3TestClient.connect(port);
  const caps = await capa(before);
  assert.ok(caps.includes('EXPIRE 30 USER'), caps.join('|'));
  assert.ok(caps.includes('LOGIN-DELAY 0 USER'), caps.join('|'));
  before.close();
  const alice = await login(port);
  const own = await capa(alice);
  assert.ok(own.includes('EXPIRE 0'), own.join('|'));
  assert.ok(own.includes('LOGIN-DELAY 900'), own.join('|'));
  alice.close();
  const bob = await login(port, 'bob', 'secret');
  const defaults = await capa(bob);
  assert.ok(defaults.includes('EXPIRE 30') && defaults.includes('LOGIN-DELAY 0'), defaults.join('|'));
  bob.close();
});

test('the store is handed the effective policy: the user’s own values over the server-wide ones', async (t) => {
  const opened: MailUser[] = [];
  const memory = new MemoryStore({ alice: MAIL });
  const store: MailStore = {
    open: (user) => {
      opened.push(user);
      return memory.open(user);
    },
  };
  const { port } = await startServer(t, {
    store,
    policy: { delete: { mode: 'hide' }, expire: 7 },
    authenticator: authenticator({ alice: { expire: 'never', downloadPerDay: 1000 } }),
  });
  const client = await login(port);
  client.close();
  assert.deepEqual(opened[0]?.policy, {
    delete: { mode: 'hide' },
    expire: 'never',
    loginDelaySeconds: 0,
    maxSessions: undefined,
    downloadPerDay: 1000,
    appPasswordsOnly: false,
  });
});

test('EXPIRE 0: at QUIT the retrieved messages are deleted too; TOP is not a retrieval', async (t) => {
  const { port, store } = await startServer(t, {
    authenticator: authenticator({ alice: { expire: 0 } }),
    mailboxes: { alice: MAIL },
  });
  const client = await login(port);
  assert.match((await client.multi('RETR 1')).status, /^\+OK/);
  assert.match((await client.multi('TOP 2 0')).status, /^\+OK/);
  assert.equal(await client.command('DELE 3'), '+OK message 3 deleted');
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (1 message left)');
  client.close();
  assert.deepEqual(
    store.contents('alice').map((m) => m.bytes.toString()),
    [MAIL[1]],
  );
});

test('EXPIRE 0 applies only at QUIT: a session that ends otherwise deletes nothing', async (t) => {
  const { port, store, server } = await startServer(t, {
    authenticator: authenticator({ alice: { expire: 0 } }),
    mailboxes: { alice: MAIL },
  });
  const client = await login(port);
  await client.multi('RETR 1');
  const closed = new Promise((resolve) => server.once('close', resolve));
  client.socket.destroy();
  await closed;
  assert.equal(store.contents('alice').length, 3);
});

test('LOGIN-DELAY: a login within the delay of the last session start is refused; after it, allowed', async (t) => {
  const now = Date.now();
  const ledger = ledgerWith('alice', { lastStart: now - 60_000 });
  const { port } = await startServer(t, {
    ledger,
    authenticator: authenticator({ alice: { loginDelaySeconds: 300 } }),
    mailboxes: { alice: MAIL },
  });
  const client = await Pop3TestClient.connect(port);
  await client.command('USER alice');
  const refused = await client.command('PASS pw');
  assert.match(refused, /^-ERR \[LOGIN-DELAY\] logged in too recently: wait (23\d|240) more seconds/);
  // The connection stays: another user may log in.
  await client.command('USER bob');
  assert.match(await client.command('PASS secret'), /^\+OK/);
  client.close();
  // A start more than the delay ago: allowed, and this session's start is recorded.
  await ledger.update('alice', (s) => ({ ...s, lastStart: now - 301_000 }));
  const again = await login(port);
  assert.ok(((await ledger.read('alice')).lastStart ?? 0) >= now);
  again.close();
  // So the next one, at once, is refused.
  const third = await Pop3TestClient.connect(port);
  await third.command('USER alice');
  assert.match(await third.command('PASS pw'), /^-ERR \[LOGIN-DELAY\]/);
  third.close();
});

test('LOGIN-DELAY counts session starts, not attempts: a refused login records nothing', async (t) => {
  const ledger = ledgerWith('alice', { lastStart: Date.now() - 10_000 });
  const { port } = await startServer(t, {
    ledger,
    policy: { loginDelaySeconds: 30 },
    mailboxes: { alice: MAIL },
  });
  const client = await Pop3TestClient.connect(port);
  await client.command('USER alice');
  assert.match(await client.command('PASS pw'), /^-ERR \[LOGIN-DELAY\]/);
  client.close();
  const state = await ledger.read('alice');
  assert.equal(state.sessions.length, 0);
});

test('maxSessions 0 refuses every login of the user with [AUTH], after the password was checked', async (t) => {
  const { port } = await startServer(t, {
    authenticator: authenticator({ alice: { maxSessions: 0 } }),
    mailboxes: { alice: MAIL },
  });
  const client = await Pop3TestClient.connect(port);
  await client.command('USER alice');
  assert.equal(await client.command('PASS pw'), '-ERR [AUTH] POP3 access is disabled for this user');
  await client.command('USER alice');
  assert.equal(await client.command('PASS wrong'), '-ERR [AUTH] invalid user name or password');
  client.close();
});

test('maxSessions N: the second session while one is open gets [IN-USE] naming the limit', async (t) => {
  const { port } = await startServer(t, {
    authenticator: authenticator({ alice: { maxSessions: 1 } }),
    mailboxes: { alice: MAIL, bob: MAIL },
  });
  const first = await login(port);
  const second = await Pop3TestClient.connect(port);
  await second.command('USER alice');
  assert.equal(
    await second.command('PASS pw'),
    '-ERR [IN-USE] this user already has a session open (the most allowed)',
  );
  // Another user without the setting gets the lock's own words.
  const bob1 = await login(port, 'bob', 'secret');
  const bob2 = await Pop3TestClient.connect(port);
  await bob2.command('USER bob');
  assert.equal(await bob2.command('PASS secret'), '-ERR [IN-USE] maildrop is in use by another session');
  for (const c of [first, second, bob1, bob2]) c.close();
});

test('downloadPerDay: RETR and TOP are refused once the day’s total reaches it; the crossing message goes whole', async (t) => {
  const today = utcDay(Date.now());
  const limit = 1000;
  const ledger = ledgerWith('alice', { day: today, dayBytes: limit - 1 });
  const { port } = await startServer(t, {
    ledger,
    authenticator: authenticator({ alice: { downloadPerDay: limit } }),
    mailboxes: { alice: MAIL },
  });
  const client = await login(port);
  // 1 octet left: message 1 is sent whole, and crosses the limit.
  const first = await client.multi('RETR 1');
  assert.match(first.status, /^\+OK/);
  assert.equal(`${first.lines.join('\r\n')}\r\n`, MAIL[0]);
  const refused = `-ERR [SYS/TEMP] daily download limit reached (${limit} octets a day), try again tomorrow (UTC)`;
  assert.equal(await client.command('RETR 2'), refused);
  assert.equal(await client.command('TOP 2 0'), refused);
  // The rest of the session works.
  assert.match(await client.command('LIST 2'), /^\+OK 2 /);
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  assert.match(await client.command('QUIT'), /^\+OK/);
  client.close();
  const state = await ledger.read('alice');
  assert.equal(state.day, today);
  assert.equal(state.dayBytes, limit - 1 + S0);
});

test('downloadPerDay: yesterday’s total does not count today; sessions add up over the day', async (t) => {
  const yesterday = utcDay(Date.now() - 86_400_000);
  const ledger = ledgerWith('alice', { day: yesterday, dayBytes: 10_000_000 });
  const limit = S0 + S1;
  const { port } = await startServer(t, {
    ledger,
    policy: { downloadPerDay: limit },
    mailboxes: { alice: MAIL },
  });
  const first = await login(port);
  assert.match((await first.multi('RETR 1')).status, /^\+OK/);
  await first.command('QUIT');
  first.close();
  assert.equal((await ledger.read('alice')).dayBytes, S0);
  const second = await login(port);
  assert.match((await second.multi('RETR 2')).status, /^\+OK/);
  assert.match(await second.command('RETR 3'), /^-ERR \[SYS\/TEMP\] daily download limit reached/);
  await second.command('QUIT');
  second.close();
  assert.equal((await ledger.read('alice')).dayBytes, limit);
});

test('the ledger keeps each session: start, end, address, method, TLS, bytes, retrieved, deleted', async (t) => {
  const ledger = new MemoryUserLedger();
  const { port } = await startServer(t, { ledger, mailboxes: { alice: MAIL } });
  const client = await login(port);
  await client.multi('RETR 1');
  await client.multi('TOP 2 0');
  await client.command('DELE 1');
  await client.command('QUIT');
  client.close();
  const { sessions, lastStart } = await ledger.read('alice');
  assert.equal(sessions.length, 1);
  const [record] = sessions;
  assert.ok(record !== undefined && record.end !== undefined && record.end >= record.start);
  assert.equal(lastStart, record.start);
  assert.equal(record.address, '127.0.0.1');
  assert.equal(record.method, 'USER');
  assert.equal(record.tls, false);
  assert.equal(record.retrieved, 1);
  assert.equal(record.deleted, 1);
  assert.ok(record.downloaded > S0);
  assert.ok(record.bytesSent > record.downloaded);
  assert.equal(record.appPassword, undefined);
});
