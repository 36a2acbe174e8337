// The monitor listener end to end: raw request bytes on a real socket, counters against a scripted
// POP3 session, and every CONFIG target acting on the running server and on the files.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parsePasswdFile } from '../../src/auth/passwd-file.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { nextServerEvent } from '../helpers/raw-client.js';
import {
  ALICE_MESSAGES,
  BOB_MESSAGES,
  hex,
  pair,
  PASSWORDS,
  rawExchange,
  ROOT_TOKEN,
  startMonitorFixture,
  type MonitorFixture,
} from './setup.js';

const BAD_LOGIN = '-ERR [AUTH] invalid user name or password';
/** `123456789abcdef1`, the token of `root` in every fixture. */
const ROOT_HEX = '31323334353637383961626364656631';
/** The same with its last character changed to `2`. */
const WRONG_HEX = '31323334353637383961626364656632';
const OK_EMPTY = hex('00 0001 00');

const filesIn = async (dir: string): Promise<string[]> => (await readdir(dir)).sort();
const mailOf = async (f: MonitorFixture, user: string): Promise<string[]> => [
  ...(await filesIn(join(f.mailRoot, user, 'new'))),
  ...(await filesIn(join(f.mailRoot, user, 'cur'))),
];
/** The lines of a passwd-format file, without the final empty string. */
const linesOf = async (path: string): Promise<string[]> =>
  (await readFile(path, 'utf8')).replace(/\n$/, '').split('\n');

interface SnapshotSession {
  id: string;
  user: string | null;
  remoteAddress: string;
  state: string;
  startedAt: string;
  bytesIn: number;
  bytesOut: number;
}
interface Snapshot {
  counters: Record<string, number>;
  sessionCount: number;
  sessions: SnapshotSession[];
  isTruncated: boolean;
}

async function snapshot(f: MonitorFixture): Promise<Snapshot> {
  const response = await f.request('get', 'snapshot');
  assert.equal(response.status, 'ok');
  return JSON.parse(response.data.toString('utf8')) as Snapshot;
}

test('GET 0x00 written by hand gets the exact bytes, in one chunk, before the server closes', async (t) => {
  const f = await startMonitorFixture(t);
  const pop3 = await Pop3TestClient.connect(f.pop3Port);
  t.after(() => {
    pop3.close();
  });
  assert.match(pop3.greeting, /^\+OK Poplar POP3 server ready/);

  // As the original client sends it: DLEN 1 and one ignored 0x00.
  const historic = await rawExchange(f.monitorPort, hex(`01 ${ROOT_HEX} 00 00 0001 00`));
  assert.deepEqual(historic.received, hex('00 0004 00000001'));
  assert.equal(historic.chunks.length, 1, 'the response comes in one write');
  assert.deepEqual(historic.events, ['data', 'end', 'close'], 'data first, then the server closes');

  // DLEN 0 is accepted too.
  const concurrent = await rawExchange(f.monitorPort, hex(`01 ${ROOT_HEX} 00 01 0000`));
  assert.deepEqual(concurrent.received, hex('00 0004 00000001'));
  assert.equal(concurrent.chunks.length, 1);

  // The spec's wrong-token example.
  const wrong = await rawExchange(f.monitorPort, hex(`01 ${WRONG_HEX} 00 01 0001 00`));
  assert.deepEqual(wrong.received, hex('05 0001 00'));
  assert.equal(wrong.chunks.length, 1);

  // A request split over several writes is reassembled.
  const split = await rawExchange(f.monitorPort, [
    hex(`01 ${ROOT_HEX.slice(0, 10)}`),
    hex(`${ROOT_HEX.slice(10)} 00`),
    hex('00 00'),
    hex('01 00'),
  ]);
  assert.deepEqual(split.received, hex('00 0004 00000001'));

  // Monitor connections are not POP3 connections.
  assert.equal(await f.get('historicConnections'), 1n);
  assert.equal(await f.get('concurrentConnections'), 1n);
});

test("CONFIG 0x04 written by hand (the spec example) sets bob's password: old fails, new works, other lines kept", async (t) => {
  const f = await startMonitorFixture(t);
  const before = await linesOf(f.usersFile);
  assert.equal(await f.tryLogin('bob', PASSWORDS.bob), '+OK bob has 1 message (25 octets)');

  const exchange = await rawExchange(f.monitorPort, hex(`01 ${ROOT_HEX} 01 04 000a 626f6200736563726574`));
  assert.deepEqual(exchange.received, OK_EMPTY);
  assert.equal(exchange.chunks.length, 1);
  assert.deepEqual(exchange.events, ['data', 'end', 'close']);

  assert.equal(await f.tryLogin('bob', PASSWORDS.bob), BAD_LOGIN);
  assert.equal(await f.tryLogin('bob', 'secret'), '+OK bob has 1 message (25 octets)');
  assert.equal(await f.tryLogin('alice', PASSWORDS.alice), '+OK alice has 2 messages (47 octets)');

  const after = await linesOf(f.usersFile);
  assert.equal(after.length, before.length, 'no line added or lost');
  const bobAt = before.findIndex((l) => l.startsWith('bob:'));
  for (let i = 0; i < before.length; i++) {
    if (i !== bobAt) assert.equal(after[i], before[i], `line ${i + 1} unchanged`);
  }
  const bob = after[bobAt] ?? '';
  assert.match(bob, /^bob:\{PBKDF2\}\$1\$[^:]+:1000:1000::\/home\/bob$/, 'hashed, extra fields kept');
  assert.notEqual(bob, before[bobAt]);
  assert.ok(!bob.includes('secret'));
});

test('CONFIG 0x04 adds a user who can log in at once; the file holds a hash, mode 0600, no temp files', async (t) => {
  const f = await startMonitorFixture(t);
  assert.equal(await f.tryLogin('carol', 'carol pass'), BAD_LOGIN);
  assert.equal(await f.config('setUser', pair('carol', 'carol pass')), 'ok');
  assert.equal(await f.tryLogin('carol', 'carol pass'), '+OK carol has 0 messages (0 octets)');
  assert.equal(await f.tryLogin('carol', 'carol pas'), BAD_LOGIN);

  const text = await readFile(f.usersFile, 'utf8');
  assert.equal(text.slice(0, f.usersText.length), f.usersText, 'the existing lines are untouched');
  const added = text.slice(f.usersText.length);
  assert.match(added, /^carol:\{PBKDF2\}\$1\$[^$]+\$\d+\$[0-9a-f]{40}\n$/);
  assert.ok(!text.includes('carol pass'), 'the password is not stored in plain');
  assert.equal((await stat(f.usersFile)).mode & 0o777, 0o600);
  assert.deepEqual(await filesIn(f.etcDir), ['admins', 'users'], 'no leftover *.tmp files');
  assert.equal(f.users.userCount, 3);
});

test('counters match a scripted POP3 session; GET 0x20 lists the open session', async (t) => {
  const f = await startMonitorFixture(t);
  assert.equal(await f.get('historicConnections'), 0n);
  assert.equal((await f.get('uptimeSeconds')) >= 0n, true);

  const client = await Pop3TestClient.connect(f.pop3Port);
  t.after(() => {
    client.close();
  });
  assert.equal(await f.get('historicConnections'), 1n);
  assert.equal(await f.get('concurrentConnections'), 1n);
  assert.equal(await f.get('authenticatedSessions'), 0n);

  const idle = await snapshot(f);
  assert.equal(idle.sessionCount, 1);
  const waiting = idle.sessions[0];
  assert.deepEqual(
    { user: waiting?.user, state: waiting?.state, remoteAddress: waiting?.remoteAddress },
    { user: null, state: 'AUTHORIZATION', remoteAddress: '127.0.0.1' },
  );

  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS not the password'), BAD_LOGIN);
  assert.equal(await f.get('loginsFailed'), 1n);
  assert.equal(await f.get('loginsSucceeded'), 0n);
  await client.login('alice', PASSWORDS.alice);
  assert.equal(await f.get('loginsSucceeded'), 1n);
  assert.equal(await f.get('loginsFailed'), 1n);
  assert.equal(await f.get('authenticatedSessions'), 1n);

  const retr = await client.multi('RETR 1');
  assert.equal(retr.status, '+OK 23 octets');
  assert.deepEqual(retr.lines, ['Subject: one', '', 'first']);
  assert.equal(await f.get('messagesRetrieved'), 1n);
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  assert.equal(await f.get('messagesDeleted'), 0n, 'not before QUIT');

  // Every reply has been read, so the server's counts equal the socket's.
  const open = await snapshot(f);
  assert.equal(open.sessionCount, 1);
  assert.equal(open.isTruncated, false);
  const session = open.sessions[0];
  assert.ok(session !== undefined);
  assert.equal(session.user, 'alice');
  assert.equal(session.state, 'TRANSACTION');
  assert.equal(session.remoteAddress, '127.0.0.1');
  assert.equal(session.bytesOut, client.socket.bytesRead);
  assert.equal(session.bytesIn, client.socket.bytesWritten);
  assert.ok(!Number.isNaN(Date.parse(session.startedAt)));
  assert.equal(open.counters['historicConnections'], 1);
  assert.equal(open.counters['authenticatedSessions'], 1);
  assert.equal(open.counters['loginsSucceeded'], 1);
  assert.equal(open.counters['loginsFailed'], 1);
  assert.equal(open.counters['messagesRetrieved'], 1);
  assert.equal(open.counters['transferredBytes'], client.socket.bytesRead);
  assert.equal(open.counters['receivedBytes'], client.socket.bytesWritten);

  const closed = nextServerEvent(f.pop3, 'close');
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (1 message left)');
  await client.closed();
  await closed;

  assert.equal(await f.get('historicConnections'), 1n);
  assert.equal(await f.get('concurrentConnections'), 0n);
  assert.equal(await f.get('authenticatedSessions'), 0n);
  assert.equal(await f.get('messagesDeleted'), 1n);
  assert.equal(await f.get('messagesRetrieved'), 1n);
  const sent = BigInt(client.socket.bytesRead);
  assert.ok(sent > 0n);
  assert.equal(await f.get('transferredBytes'), sent);
  assert.equal(await f.get('transferredBytes64'), sent);
  assert.equal(await f.get('receivedBytes'), BigInt(client.socket.bytesWritten));
  assert.equal((await mailOf(f, 'alice')).length, 1, 'DELE was applied at QUIT');
  assert.equal((await snapshot(f)).sessionCount, 0);

  // Raw sizes: the uint32 targets answer 4 bytes, the others 8.
  assert.equal((await f.request('get', 'transferredBytes')).data.length, 4);
  assert.equal((await f.request('get', 'transferredBytes64')).data.length, 8);
});

test('CONFIG 0x05 deletes a user: the open session ends with -ERR [SYS/TEMP], DELE is not applied, no more logins', async (t) => {
  const f = await startMonitorFixture(t);
  const bob = await f.login('bob', PASSWORDS.bob);
  assert.equal(await bob.command('DELE 1'), '+OK message 1 deleted');
  const alice = await f.login('alice', PASSWORDS.alice);

  const closed = nextServerEvent(f.pop3, 'close');
  assert.equal(await f.config('deleteUser', 'bob'), 'ok');
  assert.equal(await bob.readLine(), '-ERR [SYS/TEMP] account removed');
  assert.equal(await bob.closed(), '');
  const info = await closed;
  assert.equal(info.user, 'bob');
  assert.equal(info.summary.deletedMessages, 0);

  assert.equal(await f.get('messagesDeleted'), 0n);
  assert.equal((await mailOf(f, 'bob')).length, BOB_MESSAGES.length, 'the message stays on disk');
  assert.equal(await f.tryLogin('bob', PASSWORDS.bob), BAD_LOGIN);
  assert.equal(f.users.hasUser('bob'), false);
  assert.equal(await alice.command('NOOP'), '+OK', "alice's session goes on");

  const lines = await linesOf(f.usersFile);
  assert.equal(
    lines.some((l) => l.startsWith('bob:')),
    false,
  );
  assert.deepEqual(
    lines,
    f.usersText
      .replace(/\n$/, '')
      .split('\n')
      .filter((l) => !l.startsWith('bob:')),
    'comments and other users kept',
  );
  assert.equal(await f.config('deleteUser', 'bob'), 'badData', 'no such user any more');
});

test('a wrong token (0x05) changes nothing and reveals nothing', async (t) => {
  const f = await startMonitorFixture(t);
  const wrong = 'x23456789abcdef1';
  const other = join(f.dir, 'other-root');
  await mkdir(other);
  const usersBefore = await readFile(f.usersFile);
  const adminsBefore = await readFile(f.adminsFile);
  const alice = await f.login('alice', PASSWORDS.alice);

  const get = await f.request('get', 'historicConnections', Buffer.alloc(0), wrong);
  assert.equal(get.status, 'authFailed');
  assert.deepEqual(get.data, hex('00'), 'DLEN 1, DATA 0x00: no counter value');
  assert.equal(await f.config('setUser', pair('mallory', 'pw'), wrong), 'authFailed');
  assert.equal(await f.config('setUser', pair('alice', 'taken over'), wrong), 'authFailed');
  assert.equal(await f.config('deleteUser', 'bob', wrong), 'authFailed');
  assert.equal(await f.config('addAdmin', pair('mallory', 'mallory-token-01'), wrong), 'authFailed');
  assert.equal(await f.config('deleteAdmin', 'root', wrong), 'authFailed');
  assert.equal(await f.config('maildir', other, wrong), 'authFailed');
  assert.equal(await f.config('chunkSize', '512', wrong), 'authFailed');
  assert.equal(await f.config('endSessions', 'alice', wrong), 'authFailed');
  // The case matters: the token is compared exactly.
  assert.equal(await f.config('chunkSize', '512', '123456789ABCDEF1'), 'authFailed');

  assert.deepEqual(await readFile(f.usersFile), usersBefore);
  assert.deepEqual(await readFile(f.adminsFile), adminsBefore);
  assert.equal(f.store.root, f.mailRoot);
  assert.equal(f.pop3.limits.transferChunkBytes, 65_536);
  assert.equal(await alice.command('NOOP'), '+OK', 'the session was not ended');
  assert.equal(await f.tryLogin('bob', PASSWORDS.bob), '+OK bob has 1 message (25 octets)');
  assert.equal(await f.tryLogin('mallory', 'pw'), BAD_LOGIN);
  assert.deepEqual(await filesIn(f.etcDir), ['admins', 'users']);
});

test('admins: add, add existing, delete unknown, and the last admin stays', async (t) => {
  const f = await startMonitorFixture(t);
  const opsToken = 'Ops-Token-0123!~';
  assert.equal(await f.get('historicConnections', opsToken).catch(() => 'refused'), 'refused');
  assert.equal(await f.config('addAdmin', pair('ops', opsToken)), 'ok');
  assert.equal(await f.get('historicConnections', opsToken), 0n, 'the new token works at once');
  const adminsText = await readFile(f.adminsFile, 'utf8');
  assert.match(adminsText, /^root:\{SSHA256\}\S+\nops:\{SSHA256\}\S+\n$/);
  assert.ok(!adminsText.includes(opsToken), 'tokens are stored hashed');

  assert.equal(await f.config('addAdmin', pair('ops', 'another-token-16')), 'badData', 'name exists');
  assert.equal(await f.get('historicConnections', opsToken), 0n, 'the first token still works');
  assert.equal((await f.request('get', 'historicConnections', '', 'another-token-16')).status, 'authFailed');
  assert.equal(await f.config('addAdmin', pair('short', 'fifteen-chars-x')), 'badData', '15 characters');
  assert.equal(await f.config('addAdmin', pair('../x', 'a-valid-token-16')), 'badData', 'invalid name');
  assert.equal(await f.config('deleteAdmin', 'nobody'), 'badData');

  assert.equal(await f.config('deleteAdmin', 'root', opsToken), 'ok');
  assert.equal((await f.request('get', 'historicConnections')).status, 'authFailed', 'root is gone');
  const beforeLast = await readFile(f.adminsFile);
  assert.equal(await f.config('deleteAdmin', 'ops', opsToken), 'badData', 'the last admin');
  assert.deepEqual(await readFile(f.adminsFile), beforeLast);
  assert.equal(f.admins.count, 1);
  assert.equal(await f.get('historicConnections', opsToken), 0n, 'still there');
  assert.equal((await stat(f.adminsFile)).mode & 0o777, 0o600);
});

test('20 user changes sent at once all succeed and none is lost', async (t) => {
  const f = await startMonitorFixture(t);
  const names = Array.from({ length: 20 }, (_, i) => `user${i}`);
  const statuses = await Promise.all(names.map((n) => f.config('setUser', pair(n, `pw of ${n}`))));
  assert.deepEqual(
    statuses,
    names.map(() => 'ok'),
  );
  const { users, problems } = parsePasswdFile(await readFile(f.usersFile, 'utf8'));
  assert.deepEqual(problems, []);
  assert.deepEqual([...users.keys()].sort(), ['alice', 'bob', ...names].sort());
  assert.equal(f.users.userCount, 22);
  assert.ok((await readFile(f.usersFile, 'utf8')).startsWith(f.usersText));
  assert.deepEqual(await filesIn(f.etcDir), ['admins', 'users']);
  assert.equal(await f.tryLogin('user0', 'pw of user0'), '+OK user0 has 0 messages (0 octets)');
  assert.equal(await f.tryLogin('user19', 'pw of user19'), '+OK user19 has 0 messages (0 octets)');
  assert.equal(await f.tryLogin('user7', 'pw of user8'), BAD_LOGIN);
});

test('10 admin additions sent at once all succeed and every token works', async (t) => {
  const f = await startMonitorFixture(t);
  const admins = Array.from({ length: 10 }, (_, i) => ({
    name: `admin${i}`,
    token: `admin-token-${String(i).padStart(4, '0')}`,
  }));
  const statuses = await Promise.all(admins.map((a) => f.config('addAdmin', pair(a.name, a.token))));
  assert.deepEqual(
    statuses,
    admins.map(() => 'ok'),
  );
  const { users } = parsePasswdFile(await readFile(f.adminsFile, 'utf8'));
  assert.deepEqual([...users.keys()].sort(), ['root', ...admins.map((a) => a.name)].sort());
  assert.equal(f.admins.count, 11);
  for (const a of admins) assert.equal(await f.get('concurrentConnections', a.token), 0n, a.name);
});

test('CONFIG 0x00 changes the mail root for new sessions; open ones keep theirs', async (t) => {
  const f = await startMonitorFixture(t);
  const newRoot = join(f.dir, 'mail2');
  await buildMaildir(newRoot, 'alice', [{ content: 'Subject: new root\r\n\r\nhello\r\n' }]);
  const before = await f.login('alice', PASSWORDS.alice);

  assert.equal(await f.config('maildir', newRoot), 'ok');
  assert.equal(f.store.root, newRoot);

  const after = await Pop3TestClient.connect(f.pop3Port);
  t.after(() => {
    after.close();
  });
  assert.equal(await after.login('alice', PASSWORDS.alice), '+OK alice has 1 message (28 octets)');
  const fresh = await after.multi('RETR 1');
  assert.deepEqual(fresh.lines, ['Subject: new root', '', 'hello']);

  assert.equal(await before.command('STAT'), '+OK 2 47', 'the open session keeps the old root');
  const old = await before.multi('RETR 2');
  assert.deepEqual(old.lines, ['Subject: two', '', 'second']);

  assert.equal(await f.config('maildir', join(f.dir, 'no such dir')), 'badData');
  assert.equal(await f.config('maildir', f.usersFile), 'badData', 'a file is not a directory');
  assert.equal(f.store.root, newRoot, 'unchanged by the refusals');
});

test('CONFIG 0x01 sets the transfer chunk size within 512..1048576', async (t) => {
  const f = await startMonitorFixture(t);
  assert.equal(f.pop3.limits.transferChunkBytes, 65_536);
  assert.equal(await f.config('chunkSize', '512'), 'ok');
  assert.equal(f.pop3.limits.transferChunkBytes, 512);
  for (const bad of ['100', '511', '1048577', '99999999', 'abc', '-512', ' 512', '5e3']) {
    assert.equal(await f.config('chunkSize', bad), 'badData', bad);
  }
  assert.equal(f.pop3.limits.transferChunkBytes, 512, 'unchanged by the refusals');

  // A message many chunks long goes out whole.
  const line = `${'x'.repeat(98)}\r\n`;
  const body = line.repeat(40);
  await buildMaildir(f.mailRoot, 'alice', [{ content: `Subject: big\r\n\r\n${body}` }]);
  const client = await f.login('alice', PASSWORDS.alice);
  const retr = await client.multi('RETR 3');
  assert.equal(retr.status, `+OK ${16 + body.length} octets`);
  assert.equal(retr.lines.length, 42);

  assert.equal(await f.config('chunkSize', '1048576'), 'ok');
  assert.equal(f.pop3.limits.transferChunkBytes, 1_048_576);
});

test("CONFIG 0x06 ends a user's sessions without UPDATE; others go on", async (t) => {
  const f = await startMonitorFixture(t);
  const alice = await f.login('alice', PASSWORDS.alice);
  assert.equal(await alice.command('DELE 1'), '+OK message 1 deleted');
  const bob = await f.login('bob', PASSWORDS.bob);

  const closed = nextServerEvent(f.pop3, 'close');
  assert.equal(await f.config('endSessions', 'alice'), 'ok');
  assert.equal(await alice.readLine(), '-ERR [SYS/TEMP] session ended by the administrator');
  assert.equal(await alice.closed(), '');
  assert.equal((await closed).user, 'alice');

  assert.equal((await mailOf(f, 'alice')).length, ALICE_MESSAGES.length, 'nothing deleted');
  assert.equal(await f.get('messagesDeleted'), 0n);
  assert.equal(await bob.command('NOOP'), '+OK');
  assert.equal(await f.get('authenticatedSessions'), 1n);
  assert.equal(await f.tryLogin('alice', PASSWORDS.alice), '+OK alice has 2 messages (47 octets)');
  assert.equal(await f.config('endSessions', 'nobody'), 'ok', 'no session to end is not an error');
});

test('a users file whose folder is gone: 0x06, and the users in memory stay as they were', async (t) => {
  const f = await startMonitorFixture(t);
  await rm(f.etcDir, { recursive: true });
  assert.equal(await f.config('setUser', pair('dave', 'dave pass')), 'serverError');
  assert.equal(await f.config('setUser', pair('alice', 'new pass')), 'serverError');
  assert.equal(f.users.hasUser('dave'), false);
  assert.equal(f.users.userCount, 2);
  assert.equal(await f.tryLogin('dave', 'dave pass'), BAD_LOGIN);
  assert.equal(await f.tryLogin('alice', 'new pass'), BAD_LOGIN);
  assert.equal(await f.tryLogin('alice', PASSWORDS.alice), '+OK alice has 2 messages (47 octets)');
  assert.equal(
    await f.config('addAdmin', pair('ops', 'Ops-Token-0123!~')),
    'serverError',
    'the admins file is gone too',
  );
  assert.equal(f.admins.count, 1);
});

test('a users file replaced by a directory: 0x06, the users in memory unchanged', async (t) => {
  const f = await startMonitorFixture(t);
  await rm(f.usersFile);
  await mkdir(f.usersFile);
  await writeFile(join(f.usersFile, 'inside'), 'x');
  assert.equal(await f.config('setUser', pair('dave', 'dave pass')), 'serverError');
  assert.equal(await f.config('deleteUser', 'bob'), 'serverError');
  assert.equal(f.users.userCount, 2);
  assert.equal(await f.tryLogin('bob', PASSWORDS.bob), '+OK bob has 1 message (25 octets)');
  assert.equal(await f.tryLogin('dave', 'dave pass'), BAD_LOGIN);
  assert.deepEqual(await filesIn(f.etcDir), ['admins', 'users']);
});

test('invalid CONFIG data is refused with 0x04', async (t) => {
  const f = await startMonitorFixture(t);
  const before = await readFile(f.usersFile);
  assert.equal(await f.config('setUser', 'no-separator'), 'badData');
  assert.equal(await f.config('setUser', pair('../escape', 'pw')), 'badData');
  assert.equal(await f.config('setUser', pair('.hidden', 'pw')), 'badData');
  assert.equal(await f.config('setUser', pair('eve', '')), 'badData');
  assert.equal(await f.config('setUser', pair('eve', 'line\r\nbreak')), 'badData');
  assert.equal(await f.config('setUser', pair('eve', 'x'.repeat(256))), 'badData');
  assert.equal(await f.config('setUser', Buffer.from([0x65, 0x76, 0x65, 0x00, 0xff, 0xfe])), 'badData');
  assert.equal(await f.config('deleteUser', 'nobody'), 'badData');
  assert.deepEqual(await readFile(f.usersFile), before);
  assert.equal(f.users.hasUser('eve'), false);
  // The token itself is not data: a GET with the token is fine whatever it carries.
  assert.equal(await f.get('historicConnections', ROOT_TOKEN), 0n);
});

test('GET 0x20 with more sessions than fit in 65535 bytes is cut, and says so', async (t) => {
  const f = await startMonitorFixture(t, { pop3Limits: { maxConnections: 1000, maxConnectionsPerIp: 1000 } });
  const clients: Pop3TestClient[] = [];
  t.after(() => {
    for (const c of clients) c.close();
  });
  for (let i = 0; i < 500; i++) clients.push(await Pop3TestClient.connect(f.pop3Port));
  assert.equal(await f.get('concurrentConnections'), 500n);

  const response = await f.request('get', 'snapshot');
  assert.equal(response.status, 'ok');
  assert.ok(response.data.length <= 65_535, `${response.data.length} bytes`);
  const cut = JSON.parse(response.data.toString('utf8')) as Snapshot;
  assert.equal(cut.sessionCount, 500);
  assert.equal(cut.isTruncated, true);
  assert.ok(cut.sessions.length > 0 && cut.sessions.length < 500, `${cut.sessions.length} listed`);
  assert.equal(cut.counters['concurrentConnections'], 500);
  assert.ok(cut.sessions.every((s) => s.state === 'AUTHORIZATION' && s.remoteAddress === '127.0.0.1'));
});
