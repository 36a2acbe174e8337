// The `poplar` daemon's life: signals, session logs, kill -9 recovery, two daemons on one mail root.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

// POP3 sizes count CRLF line ends; these messages are stored with CRLF, so the size is the file size.
const ONE = 'Subject: one\r\n\r\nfirst message\r\n'; // 14 + 2 + 15 = 31 octets
const TWO = 'Subject: two\r\n\r\nline 1\r\nline 2\r\n'; // 14 + 2 + 8 + 8 = 32 octets
const THREE = 'Subject: three\r\n\r\nbye\r\n'; // 16 + 2 + 5 = 23 octets

interface Setup {
  readonly cwd: string;
  readonly root: string;
  readonly aliceDir: string;
  readonly args: readonly string[];
}

/** A temp dir with `users` (alice:pw) and `mail/alice` holding `messages`; `args` start a daemon on it. */
async function setUp(t: TestContext, messages: readonly (string | Uint8Array)[]): Promise<Setup> {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  const root = join(cwd, 'mail');
  const { dir } = await buildMaildir(
    root,
    'alice',
    messages.map((content) => ({ content })),
  );
  const args = ['--users', 'users', '-m', 'mail', '--listen', '127.0.0.1', '-p', '0'];
  return { cwd, root, aliceDir: dir, args };
}

/** Contents of every message file in a maildir (`cur/` and `new/`), in a stable order. */
async function maildirContents(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const sub of ['cur', 'new']) {
    for (const name of await readdir(join(dir, sub))) out.push(await readFile(join(dir, sub, name)));
  }
  return out.sort((x, y) => Buffer.compare(x, y));
}

const sorted = (messages: readonly (string | Uint8Array)[]): Buffer[] =>
  messages.map((m) => Buffer.from(m)).sort((x, y) => Buffer.compare(x, y));

async function loggedIn(d: RunningDaemon, expectedReply: string): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(d.port);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  assert.equal(await client.command('PASS pw'), expectedReply);
  return client;
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} with a DELE pending: the client is told, the daemon exits 0, nothing is deleted`, async (t) => {
    const s = await setUp(t, [ONE, TWO]);
    const d = await startDaemon(t, { args: s.args, cwd: s.cwd });
    const client = await loggedIn(d, '+OK alice has 2 messages (63 octets)');
    assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');

    const exitCode = d.stop(signal);
    assert.equal(await client.readLine(), '-ERR [SYS/TEMP] server shutting down');
    assert.equal(await client.closed(), '');
    assert.equal(await exitCode, 0);

    assert.deepEqual(await maildirContents(s.aliceDir), sorted([ONE, TWO]));
    assert.ok(!(await readdir(s.aliceDir)).includes('.poplar-lock'), 'the maildrop lock is released');
    const shutdown = d.logs.find((e) => e.msg === 'shutting down');
    assert.equal(shutdown?.['signal'], signal);
    assert.equal(shutdown['sessions'], 1);
    const logout = d.logs.find((e) => e.msg === 'logout');
    assert.equal(logout?.['deletedMessages'], 0);
    assert.equal(logout['remainingMessages'], 2);
    assert.equal(d.logs.at(-1)?.msg, 'stopped');
  });
}

test('SIGTERM also ends a session that has not logged in yet', async (t) => {
  const s = await setUp(t, [ONE]);
  const d = await startDaemon(t, { args: s.args, cwd: s.cwd });
  const client = await Pop3TestClient.connect(d.port);
  assert.equal(await client.command('USER alice'), '+OK send PASS');
  const exitCode = d.stop('SIGTERM');
  assert.equal(await client.readLine(), '-ERR [SYS/TEMP] server shutting down');
  assert.equal(await client.closed(), '');
  assert.equal(await exitCode, 0);
  assert.ok(!d.logs.some((e) => e.msg === 'logout'), 'no logout without a login');
});

test('the logout entry summarises the session; connection entries have the remote address and duration', async (t) => {
  const s = await setUp(t, [ONE, TWO, THREE]);
  const d = await startDaemon(t, { args: s.args, cwd: s.cwd });
  const began = Date.now();
  const client = await loggedIn(d, '+OK alice has 3 messages (86 octets)');
  const localPort = client.socket.localPort;
  assert.deepEqual(await client.multi('RETR 1'), {
    status: '+OK 31 octets',
    lines: ['Subject: one', '', 'first message'],
  });
  assert.deepEqual(await client.multi('RETR 2'), {
    status: '+OK 32 octets',
    lines: ['Subject: two', '', 'line 1', 'line 2'],
  });
  assert.deepEqual(await client.multi('TOP 3 0'), {
    status: '+OK top of message follows',
    lines: ['Subject: three', ''],
  });
  assert.deepEqual(await client.multi('TOP 2 1'), {
    status: '+OK top of message follows',
    lines: ['Subject: two', '', 'line 1'],
  });
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off (2 messages left)');
  assert.equal(await client.closed(), '');

  const closed = await d.waitForLog((e) => e.msg === 'connection closed');
  const elapsedMs = Date.now() - began;
  const opened = d.logs.find((e) => e.msg === 'connection opened');
  const logout = d.logs.find((e) => e.msg === 'logout');
  assert.ok(opened && logout);
  assert.deepEqual(
    {
      user: logout['user'],
      retrievedMessages: logout['retrievedMessages'],
      retrievedBytes: logout['retrievedBytes'],
      topCount: logout['topCount'],
      deletedMessages: logout['deletedMessages'],
      deletedBytes: logout['deletedBytes'],
      remainingMessages: logout['remainingMessages'],
      remainingBytes: logout['remainingBytes'],
    },
    {
      user: 'alice',
      retrievedMessages: 2,
      retrievedBytes: 31 + 32,
      topCount: 2,
      deletedMessages: 1,
      deletedBytes: 31,
      remainingMessages: 2,
      remainingBytes: 32 + 23,
    },
  );
  assert.equal(opened['remote'], '127.0.0.1');
  assert.equal(opened['port'], localPort);
  assert.equal(opened['tls'], false);
  assert.equal(closed['remote'], '127.0.0.1');
  const ms = closed['ms'];
  assert.equal(typeof ms, 'number');
  assert.ok((ms as number) >= 0 && (ms as number) <= elapsedMs, `ms ${String(ms)} within ${elapsedMs}`);
  const cid = opened['cid'];
  assert.equal(typeof cid, 'string');
  for (const msg of ['login', 'logout', 'connection closed'])
    assert.equal(d.logs.find((e) => e.msg === msg)?.['cid'], cid, `${msg} has the connection's cid`);

  // QUIT applied the deletion and marked the retrieved message seen.
  assert.deepEqual(await maildirContents(s.aliceDir), sorted([TWO, THREE]));
  const cur = await readdir(join(s.aliceDir, 'cur'));
  assert.equal(
    cur.filter((n) => n.endsWith(':2,S')).length,
    1,
    `one message marked seen in ${cur.join(' ')}`,
  );
  assert.equal(await d.stop(), 0);
});

test('kill -9 with DELEs pending loses nothing, and a new daemon recovers the stale maildrop lock', async (t) => {
  const binary = Buffer.concat([
    Buffer.from('Subject: bin\r\n\r\n'),
    Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)),
    Buffer.from('\r\n.\r\n..dots\r\n'),
  ]); // 14 + 2 + 128 + 2 + 3 + 8 = 157 octets
  const unix = 'Subject: lf\n\nunix line ends\n'; // 13 + 2 + 16 = 31 octets with CRLF
  const third = 'Subject: c\r\n\r\nthird\r\n'; // 12 + 2 + 7 = 21 octets
  const s = await setUp(t, [binary, unix, third]);
  const d = await startDaemon(t, { args: s.args, cwd: s.cwd });
  const client = await loggedIn(d, '+OK alice has 3 messages (209 octets)');
  assert.equal(await client.command('DELE 1'), '+OK message 1 deleted');
  assert.equal(await client.command('DELE 2'), '+OK message 2 deleted');
  assert.deepEqual(await client.multi('RETR 3'), {
    status: '+OK 21 octets',
    lines: ['Subject: c', '', 'third'],
  });
  const lock = await readFile(join(s.aliceDir, '.poplar-lock'), 'utf8');
  assert.equal(lock.split(' ')[0], String(d.pid), 'the lock names the daemon');

  assert.equal(await d.stop('SIGKILL'), null);
  assert.equal((await d.exited).signal, 'SIGKILL');
  assert.equal(await client.closed(), '');

  assert.deepEqual(await maildirContents(s.aliceDir), sorted([binary, unix, third]), 'byte for byte');
  assert.equal(
    await readFile(join(s.aliceDir, '.poplar-lock'), 'utf8'),
    lock,
    'the killed daemon left its lock behind',
  );

  const d2 = await startDaemon(t, { args: s.args, cwd: s.cwd });
  const again = await loggedIn(d2, '+OK alice has 3 messages (209 octets)');
  assert.deepEqual(await again.multi('RETR 1'), {
    status: '+OK 157 octets',
    lines: ['Subject: bin', '', Buffer.from(binary.subarray(16, 144)).toString('latin1'), '.', '..dots'],
  });
  assert.equal(await again.command('QUIT'), '+OK Poplar signing off (3 messages left)');
  await again.closed();
  await d2.waitForLog((e) => e.msg === 'logout');
  assert.ok(!(await readdir(s.aliceDir)).includes('.poplar-lock'), 'released after QUIT');
  assert.deepEqual(await maildirContents(s.aliceDir), sorted([binary, unix, third]));
  assert.equal(await d2.stop(), 0);
});

test('two daemons on one mail root: the maildrop lock holds across processes', async (t) => {
  const s = await setUp(t, [ONE, TWO]);
  const a = await startDaemon(t, { args: s.args, cwd: s.cwd });
  const b = await startDaemon(t, { args: s.args, cwd: s.cwd });
  assert.notEqual(a.port, b.port);

  const onA = await loggedIn(a, '+OK alice has 2 messages (63 octets)');
  const onB = await Pop3TestClient.connect(b.port);
  assert.equal(await onB.command('USER alice'), '+OK send PASS');
  assert.equal(await onB.command('PASS pw'), '-ERR [IN-USE] maildrop is in use by another session');

  assert.equal(await onA.command('DELE 2'), '+OK message 2 deleted');
  assert.equal(await onA.command('QUIT'), '+OK Poplar signing off (1 message left)');
  await onA.closed();
  await a.waitForLog((e) => e.msg === 'logout');

  // The same connection on B can now log in, and sees A's deletion.
  assert.equal(await onB.command('USER alice'), '+OK send PASS');
  assert.equal(await onB.command('PASS pw'), '+OK alice has 1 message (31 octets)');
  // Now A is the one refused.
  const refused = await Pop3TestClient.connect(a.port);
  assert.equal(await refused.command('USER alice'), '+OK send PASS');
  assert.equal(await refused.command('PASS pw'), '-ERR [IN-USE] maildrop is in use by another session');
  refused.close();
  assert.equal(await onB.command('QUIT'), '+OK Poplar signing off (1 message left)');
  await onB.closed();

  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
  assert.deepEqual(await maildirContents(s.aliceDir), sorted([ONE]));
});
