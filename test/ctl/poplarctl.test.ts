// `poplarctl` against a real `poplar` daemon: both run as child processes, as an operator runs them.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { hasIpv6Loopback, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { monitorPort, runCtl, type CtlOptions, type CtlResult } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';

const TOKEN = '123456789abcdef1';
/** A test that waits for something that never comes fails instead of hanging. */
const LIMIT = { timeout: 120_000 };
const BAD_LOGIN = '-ERR [AUTH] invalid user name or password';
const FOO_MESSAGE = 'From: a@example.org\r\nSubject: first root\r\n\r\nHello from the first root.\r\n';
const SECOND_MESSAGE = 'From: b@example.org\r\nSubject: two\r\n\r\nA second message.\r\n';

interface CtlDaemon {
  readonly d: RunningDaemon;
  readonly cwd: string;
  /** The mail root; in demo mode the users and admins files are in it too. */
  readonly mail: string;
  /** The monitor port on `host` (127.0.0.1 unless told). */
  readonly port: number;
  /** Runs poplarctl against this daemon (`--port` is given first). */
  readonly ctl: (args: readonly string[], options?: CtlOptions) => Promise<CtlResult>;
}

/**
 * A demo-mode daemon (users in <mail>/.poplar-users, the default admins file) in a temp dir, with
 * foo's mailbox holding FOO_MESSAGE (and `extra` messages), failed logins answered at once.
 */
async function startCtlDaemon(
  t: TestContext,
  options: {
    readonly args?: readonly string[];
    readonly cwd?: string;
    readonly extra?: readonly string[];
    /** The monitor address `ctl` talks to. */
    readonly host?: string;
  } = {},
): Promise<CtlDaemon> {
  const cwd = options.cwd ?? (await tempDir(t));
  const mail = join(cwd, 'mail');
  if (options.cwd === undefined) {
    await buildMaildir(
      mail,
      'foo',
      [FOO_MESSAGE, ...(options.extra ?? [])].map((content) => ({ content })),
    );
    await writeFile(join(cwd, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\nmaxAuthFailures = 10\n');
  }
  const d = await startDaemon(t, {
    args: ['--config', 'poplar.toml', '-m', 'mail', '-p', '0', ...(options.args ?? [])],
    cwd,
  });
  const host = options.host ?? '127.0.0.1';
  const port = monitorPort(d.started, host);
  return {
    d,
    cwd,
    mail,
    port,
    ctl: (args, ctlOptions) => runCtl(t, ['--host', host, '--port', String(port), ...args], ctlOptions),
  };
}

/** Asserts a successful run that printed exactly `stdout`. */
function assertOk(run: CtlResult, stdout: string | RegExp): void {
  assert.equal(run.stderr, '', 'nothing on stderr');
  if (typeof stdout === 'string') assert.equal(run.stdout, stdout);
  else assert.match(run.stdout, stdout);
  assert.equal(run.code, 0);
}

/** Asserts a run that failed with `code`, printed nothing on stdout and `stderr` on stderr. */
function assertFails(run: CtlResult, code: number, stderr: string | RegExp): void {
  assert.equal(run.stdout, '', 'nothing on stdout');
  if (typeof stderr === 'string') assert.equal(run.stderr, stderr);
  else assert.match(run.stderr, stderr);
  assert.equal(run.code, code);
}

/** Resolves once the daemon has logged the end of the connection from local port `localPort`. */
async function connectionClosed(d: RunningDaemon, localPort: number): Promise<void> {
  const opened = await d.waitForLog((e) => e.msg === 'connection opened' && e['port'] === localPort);
  await d.waitForLog((e) => e.msg === 'connection closed' && e['cid'] === opened['cid']);
}

/**
 * One whole session (USER, PASS, STAT, LIST, RETR 1, QUIT) counted on the client's side: the bytes
 * it sent and received. Resolves once the daemon has closed the connection.
 */
async function scriptedSession(
  d: RunningDaemon,
  user: string,
  password: string,
  extra: readonly string[] = [],
): Promise<{ sent: number; received: number; retr: string }> {
  const client = await Pop3TestClient.connect(d.port, '127.0.0.1', { readGreeting: false });
  const localPort = client.socket.localPort ?? 0;
  let received = 0;
  client.socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
  });
  let sent = 0;
  const count = (line: string): string => {
    sent += Buffer.byteLength(line) + 2;
    return line;
  };
  try {
    client.greeting = await client.readLine();
    assert.match(client.greeting, /^\+OK /);
    await client.login(count(`USER ${user}`).slice(5), count(`PASS ${password}`).slice(5));
    assert.match(await client.command(count('STAT')), /^\+OK \d+ \d+$/);
    assert.equal((await client.multi(count('LIST'))).status.slice(0, 3), '+OK');
    const retr = await client.multi(count('RETR 1'));
    assert.match(retr.status, /^\+OK/);
    for (const line of extra) assert.match(await client.command(count(line)), /^\+OK/);
    assert.match(await client.command(count('QUIT')), /^\+OK/);
    assert.equal(await client.closed(), '');
    await connectionClosed(d, localPort);
    return { sent, received, retr: retr.lines.join('\n') };
  } finally {
    client.close();
  }
}

/** A logged-in session (TRANSACTION state). Closed after the test. */
async function loggedIn(
  t: TestContext,
  port: number,
  user: string,
  password: string,
): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.login(user, password);
  return client;
}

/**
 * The next line the server sends of its own accord (a session ended by the administrator). Gives
 * up after a while, so that a server that never sends it fails the test instead of hanging it.
 */
async function pushed(client: Pop3TestClient): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const never = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error('the server sent nothing within 15 s'));
    }, 15_000);
  });
  try {
    return await Promise.race([client.readLine(), never]);
  } finally {
    clearTimeout(timer);
  }
}

/** USER + PASS on a new connection; returns the PASS reply. */
async function tryLogin(port: number, user: string, password: string): Promise<string> {
  const client = await Pop3TestClient.connect(port);
  try {
    assert.equal(await client.command(`USER ${user}`), '+OK send PASS');
    const reply = await client.command(`PASS ${password}`);
    if (reply.startsWith('+OK')) assert.match(await client.command('QUIT'), /^\+OK/);
    return reply;
  } finally {
    client.close();
  }
}

/** The contents of every message file of a Maildir (new/ and cur/), sorted. */
async function mailOnDisk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    for (const name of await readdir(join(dir, sub))) out.push(await readFile(join(dir, sub, name), 'utf8'));
  }
  return out.sort();
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('poplarctl -h prints the usage and exits 0', LIMIT, async (t) => {
  const run = await runCtl(t, ['-h']);
  assertOk(run, /^Usage: poplarctl OPTION TOKEN/);
  for (const option of ['-c TOKEN', '-C TOKEN', '-b TOKEN', '-u USER:PASS TOKEN', '-U NAME:TOKEN TOKEN'])
    assert.ok(run.stdout.includes(option), `-h shows ${option}`);
  for (const option of ['-d USER TOKEN', '-D NAME TOKEN', '-m PATH TOKEN', '--token-file FILE'])
    assert.ok(run.stdout.includes(option), `-h shows ${option}`);
  for (const command of ['stats', 'sessions', 'kick USER', 'users add USER', 'chunk-size BYTES'])
    assert.ok(run.stdout.includes(command), `-h shows ${command}`);
});

test('the original options against a running daemon', LIMIT, async (t) => {
  const { d, cwd, mail, ctl } = await startCtlDaemon(t);
  assert.equal(d.started['demo'], true);
  const usersFile = join(mail, '.poplar-users');
  /** -c, -C and -b at once (independent reads). */
  const counters = async (): Promise<string[]> =>
    (await Promise.all(['-c', '-C', '-b'].map((o) => ctl([o, TOKEN])))).map((run) => {
      assert.equal(run.stderr, '');
      assert.equal(run.code, 0);
      return run.stdout;
    });

  await t.test('-C, -c and -b count the connections and bytes of a scripted POP3 session', async () => {
    const session = await scriptedSession(d, 'foo', 'bar');
    assert.equal(session.retr, FOO_MESSAGE.slice(0, -2).split('\r\n').join('\n'));
    assert.deepEqual(await counters(), [
      'concurrent connections: 0\n',
      'historic connections: 1\n',
      `transferred bytes: ${session.received}\n`,
    ]);

    // An open connection counts in both; the monitor's own connections count in neither.
    const open = await Pop3TestClient.connect(d.port);
    const openPort = open.socket.localPort ?? 0;
    const greetingBytes = Buffer.byteLength(`${open.greeting}\r\n`);
    assert.deepEqual(await counters(), [
      'concurrent connections: 1\n',
      'historic connections: 2\n',
      `transferred bytes: ${session.received + greetingBytes}\n`,
    ]);
    open.close();
    await connectionClosed(d, openPort);
    assertOk(await ctl(['-c', TOKEN]), 'concurrent connections: 0\n');
  });

  await t.test('-u adds a POP3 user who can log in at once; -u again changes the password', async () => {
    await buildMaildir(mail, 'carol', [{ content: SECOND_MESSAGE }]);
    assert.equal(await tryLogin(d.port, 'carol', 'carol-pw-1'), BAD_LOGIN);
    assertOk(await ctl(['-u', 'carol:carol-pw-1', TOKEN]), 'user carol saved\n');
    assert.equal(await tryLogin(d.port, 'carol', 'carol-pw-1'), '+OK carol has 1 message (56 octets)');
    const file = await readFile(usersFile, 'utf8');
    assert.match(file, /^carol:\{[A-Z0-9-]+\}/m);
    assert.ok(!file.includes('carol-pw-1'), 'the password is stored hashed');

    assertOk(await ctl(['-u', 'carol:carol:pw:2', TOKEN]), 'user carol saved\n');
    assert.equal(await tryLogin(d.port, 'carol', 'carol-pw-1'), BAD_LOGIN);
    assert.equal(await tryLogin(d.port, 'carol', 'carol:pw:2'), '+OK carol has 1 message (56 octets)');
  });

  await t.test(
    '-U adds an admin whose token then works; an existing name is refused with exit 1',
    async () => {
      assertFails(await ctl(['-C', 'opsToken-0000001']), 1, /refused the token/);
      assertOk(await ctl(['-U', 'ops:opsToken-0000001', TOKEN]), 'admin ops added\n');
      const admins = await readFile(join(mail, '.poplar-admins'), 'utf8');
      assert.match(admins, /^ops:\{SSHA256\}/m);
      assert.ok(!admins.includes('opsToken-0000001'), 'the token is stored hashed');

      const [works, again, other] = await Promise.all([
        ctl(['-C', 'opsToken-0000001']),
        ctl(['-U', 'ops:otherToken-00001', TOKEN]),
        ctl(['-C', 'otherToken-00001']),
      ]);
      assertOk(works, /^historic connections: \d+\n$/);
      assertFails(again, 1, /^poplarctl: the admin exists.*\(status 0x04\)\n$/);
      assertFails(other, 1, /refused the token/);
      assert.equal(
        await readFile(join(mail, '.poplar-admins'), 'utf8'),
        admins,
        'the admins file is unchanged',
      );
    },
  );

  await t.test(
    "-d ends the user's open session with -ERR, keeps their mail, and stops their logins",
    async (t2) => {
      const before = await mailOnDisk(join(mail, 'carol'));
      assert.deepEqual(before, [SECOND_MESSAGE]);
      const session = await loggedIn(t2, d.port, 'carol', 'carol:pw:2');
      assertOk(
        await ctl(['-d', 'carol', TOKEN]),
        'user carol deleted; their sessions were ended, their mail kept\n',
      );
      assert.equal(await pushed(session), '-ERR [SYS/TEMP] account removed');
      assert.equal(await session.closed(), '');
      assert.deepEqual(await mailOnDisk(join(mail, 'carol')), before, 'the mail stays on disk');
      assert.equal(await tryLogin(d.port, 'carol', 'carol:pw:2'), BAD_LOGIN);
      assert.doesNotMatch(await readFile(usersFile, 'utf8'), /^carol:/m);
      assertFails(await ctl(['-d', 'carol', TOKEN]), 1, 'poplarctl: no such user: carol (status 0x04)\n');
      // foo was not touched.
      assert.match(await tryLogin(d.port, 'foo', 'bar'), /^\+OK foo has 1 message/);
    },
  );

  await t.test('-D deletes an admin, but never the last one', async () => {
    assertOk(await ctl(['-D', 'ops', TOKEN]), 'admin ops deleted\n');
    const admins = await readFile(join(mail, '.poplar-admins'), 'utf8');
    assert.doesNotMatch(admins, /^ops:/m);
    const [gone, again, last] = await Promise.all([
      ctl(['-C', 'opsToken-0000001']),
      ctl(['-D', 'ops', TOKEN]),
      ctl(['-D', 'root', TOKEN]),
    ]);
    assertFails(gone, 1, /refused the token/);
    assertFails(again, 1, 'poplarctl: no such admin, or ops is the last admin (status 0x04)\n');
    assertFails(last, 1, 'poplarctl: no such admin, or root is the last admin (status 0x04)\n');
    assert.equal(await readFile(join(mail, '.poplar-admins'), 'utf8'), admins);
    assertOk(await ctl(['-c', TOKEN]), 'concurrent connections: 0\n');
  });

  await t.test(
    '-m changes the Maildir root for sessions that start afterwards, and is logged',
    async (t2) => {
      const other = join(cwd, 'other-root');
      await buildMaildir(other, 'foo', [{ content: SECOND_MESSAGE }, { content: FOO_MESSAGE }]);
      const earlier = await loggedIn(t2, d.port, 'foo', 'bar');
      const since = d.logs.length;
      assertOk(await ctl(['-m', other, TOKEN]), `Maildir root set to ${other}\n`);
      const logged = await d.waitForLog((e) => e.msg === 'mail root changed', { since });
      assert.equal(logged['from'], mail);
      assert.equal(logged['to'], other);
      assert.equal(logged['admin'], 'root');

      const later = await scriptedSession(d, 'foo', 'bar');
      assert.equal(later.retr, SECOND_MESSAGE.slice(0, -2).split('\r\n').join('\n'));
      // The session that was open goes on with the first root.
      assert.equal(await earlier.command('STAT'), '+OK 1 72');
      assert.match(await earlier.command('QUIT'), /^\+OK/);

      const missing = join(cwd, 'no-such-dir');
      assertFails(
        await ctl(['-m', missing, TOKEN]),
        1,
        `poplarctl: ${missing} is not an existing directory on the server (status 0x04)\n`,
      );
      assert.equal(await tryLogin(d.port, 'foo', 'bar'), '+OK foo has 2 messages (128 octets)');
    },
  );

  await t.test('users and admins made with -u and -U outlive a restart on the same files', async (t2) => {
    const [user, admin] = await Promise.all([
      ctl(['-u', 'erin:erin pass 3', TOKEN]),
      ctl(['-U', 'keeper:keeperToken-0001', TOKEN]),
    ]);
    assertOk(user, 'user erin saved\n');
    assertOk(admin, 'admin keeper added\n');
    await buildMaildir(mail, 'erin');
    assert.equal(await d.stop(), 0);

    const again = await startCtlDaemon(t2, { cwd });
    assert.equal(await tryLogin(again.d.port, 'erin', 'erin pass 3'), '+OK erin has 0 messages (0 octets)');
    assert.equal(await tryLogin(again.d.port, 'carol', 'carol:pw:2'), BAD_LOGIN, 'carol stays deleted');
    const [keeper, ops] = await Promise.all([
      again.ctl(['-C', 'keeperToken-0001']),
      again.ctl(['-C', 'opsToken-0000001']),
    ]);
    assertOk(keeper, 'historic connections: 2\n');
    assertFails(ops, 1, /refused the token/);
    assert.equal(await again.d.stop(), 0);
  });
});

test('the commands against a running daemon (token from POPLAR_TOKEN)', LIMIT, async (t) => {
  const { d, cwd, mail, ctl } = await startCtlDaemon(t, { extra: [SECOND_MESSAGE] });
  const env = { POPLAR_TOKEN: TOKEN };
  const usersFile = join(mail, '.poplar-users');

  await t.test('stats prints every counter, matching a scripted session', async () => {
    const session = await scriptedSession(d, 'foo', 'bar', ['DELE 2']);
    const [run, json] = await Promise.all([ctl(['stats'], { env }), ctl(['--json', 'stats'], { env })]);
    assert.equal(run.stderr, '');
    assert.equal(run.code, 0);
    const lines = run.stdout.split('\n');
    assert.match(lines[12] ?? '', /^uptimeSeconds: \d+$/);
    assert.deepEqual(lines.toSpliced(12, 1), [
      'historicConnections: 1',
      'concurrentConnections: 0',
      `transferredBytes: ${session.received}`,
      `receivedBytes: ${session.sent}`,
      'authenticatedSessions: 0',
      'loginsSucceeded: 1',
      'loginsFailed: 0',
      'loginsThrottled: 0',
      'authCacheHits: 0',
      'authCacheMisses: 1',
      'messagesRetrieved: 1',
      'messagesDeleted: 1',
      '',
    ]);
    assert.deepEqual(await mailOnDisk(join(mail, 'foo')), [FOO_MESSAGE], 'DELE 2 was committed');

    assert.equal(json.code, 0);
    const doc = JSON.parse(json.stdout) as { counters: Record<string, number>; sessions: unknown[] };
    assert.equal(doc.counters['historicConnections'], 1);
    assert.equal(doc.counters['transferredBytes'], session.received);
    assert.equal(doc.counters['receivedBytes'], session.sent);
    assert.equal(doc.counters['messagesDeleted'], 1);
    assert.deepEqual(doc.sessions, []);
  });

  await t.test("sessions lists a logged-in session's user", async (t2) => {
    assertOk(await ctl(['sessions'], { env }), '0 open sessions\n');
    const client = await loggedIn(t2, d.port, 'foo', 'bar');
    const local = client.socket.localPort ?? 0;
    const [run, json] = await Promise.all([ctl(['sessions'], { env }), ctl(['sessions', '--json'], { env })]);
    assert.equal(run.code, 0);
    const lines = run.stdout.split('\n');
    assert.equal(lines[0], '1 open session');
    assert.match(lines[1] ?? '', /^\S+ {2}foo {2}127\.0\.0\.1 {2}TRANSACTION {2}\d{4}-\d\d-\d\dT[\d:.]+Z$/);
    assert.equal(lines.length, 3);

    assert.equal(json.code, 0);
    const sessions = JSON.parse(json.stdout) as {
      user: string | null;
      state: string;
      remoteAddress: string;
    }[];
    assert.deepEqual(
      sessions.map((x) => [x.user, x.state, x.remoteAddress]),
      [['foo', 'TRANSACTION', '127.0.0.1']],
    );
    client.close();
    await connectionClosed(d, local);
  });

  await t.test('kick USER ends their sessions without UPDATE; they can log in again', async (t2) => {
    const client = await loggedIn(t2, d.port, 'foo', 'bar');
    const local = client.socket.localPort ?? 0;
    assert.match(await client.command('DELE 1'), /^\+OK/);
    const bystander = await Pop3TestClient.connect(d.port);
    t2.after(() => {
      bystander.close();
    });
    assertOk(await ctl(['kick', 'foo'], { env }), 'ended 1 session of foo\n');
    assert.equal(await pushed(client), '-ERR [SYS/TEMP] session ended by the administrator');
    assert.equal(await client.closed(), '');
    await connectionClosed(d, local);
    assert.deepEqual(await mailOnDisk(join(mail, 'foo')), [FOO_MESSAGE], 'DELE was not committed');
    assert.equal(await bystander.command('USER foo'), '+OK send PASS', 'a session of nobody is left alone');
    assert.match(await tryLogin(d.port, 'foo', 'bar'), /^\+OK foo has 1 message/);
    assertFails(await ctl(['kick', 'foo'], { env }), 68, 'poplarctl: no sessions of foo\n');
    assertFails(await ctl(['kick', 'nobody'], { env }), 68, 'poplarctl: no sessions of nobody\n');
  });

  await t.test('users add (password on stdin) and users del', async (t2) => {
    await buildMaildir(mail, 'dave', [{ content: SECOND_MESSAGE }]);
    assertOk(await ctl(['users', 'add', 'dave'], { env, input: 'dave pass 1\n' }), 'user dave saved\n');
    assert.equal(await tryLogin(d.port, 'dave', 'dave pass 1'), '+OK dave has 1 message (56 octets)');
    assertOk(await ctl(['users', 'add', 'dave'], { env, input: 'dave pass 2' }), 'user dave saved\n');
    assert.equal(await tryLogin(d.port, 'dave', 'dave pass 1'), BAD_LOGIN);
    const session = await loggedIn(t2, d.port, 'dave', 'dave pass 2');

    const file = await readFile(usersFile);
    const [empty, two, evil] = await Promise.all([
      ctl(['users', 'add', 'dave'], { env, input: '' }),
      ctl(['users', 'add', 'dave'], { env, input: 'one\ntwo\n' }),
      ctl(['users', 'add', '../evil'], { env, input: 'pw\n' }),
    ]);
    assertFails(empty, 2, "poplarctl: give one non-empty password on stdin\nRun 'poplarctl -h' for help.\n");
    assertFails(two, 2, /^poplarctl: give one non-empty password on stdin\n/);
    assertFails(evil, 1, /^poplarctl: invalid user name or password/);
    assert.deepEqual(await readFile(usersFile), file, 'refused changes leave the users file alone');

    assertOk(
      await ctl(['users', 'del', 'dave'], { env }),
      'user dave deleted; their sessions were ended, their mail kept\n',
    );
    assert.equal(await pushed(session), '-ERR [SYS/TEMP] account removed');
    assert.equal(await tryLogin(d.port, 'dave', 'dave pass 2'), BAD_LOGIN);
    assert.deepEqual(await mailOnDisk(join(mail, 'dave')), [SECOND_MESSAGE]);
    assertFails(
      await ctl(['users', 'del', 'dave'], { env }),
      1,
      'poplarctl: no such user: dave (status 0x04)\n',
    );
  });

  await t.test('admins add (token on stdin) and admins del', async () => {
    assertOk(await ctl(['admins', 'add', 'ops'], { env, input: 'opsToken-0000002\n' }), 'admin ops added\n');
    const [works, short] = await Promise.all([
      ctl(['stats'], { env: { POPLAR_TOKEN: 'opsToken-0000002' } }),
      ctl(['admins', 'add', 'short'], { env, input: 'too-short\n' }),
    ]);
    assertOk(works, /^historicConnections: /);
    assertFails(short, 1, /^poplarctl: the admin exists, or the name or the token is invalid/);
    assertOk(await ctl(['admins', 'del', 'ops'], { env }), 'admin ops deleted\n');
    const [gone, last] = await Promise.all([
      ctl(['stats'], { env: { POPLAR_TOKEN: 'opsToken-0000002' } }),
      ctl(['admins', 'del', 'root'], { env }),
    ]);
    assertFails(gone, 1, /refused the token/);
    assertFails(last, 1, 'poplarctl: no such admin, or root is the last admin (status 0x04)\n');
  });

  await t.test('chunk-size N sets the transfer chunk size within 512..1048576', async () => {
    const big = `Subject: big\r\n\r\n${'0123456789abcdef'.repeat(200)}\r\n`;
    await buildMaildir(mail, 'foo', [{ content: big }]);
    const since = d.logs.length;
    assertOk(await ctl(['chunk-size', '512'], { env }), 'transfer chunk size set to 512\n');
    const logged = await d.waitForLog((e) => e.msg === 'transfer chunk size changed', { since });
    assert.equal(logged['to'], 512);
    const client = await Pop3TestClient.connect(d.port);
    try {
      await client.login('foo', 'bar');
      const retr = await client.multi('RETR 2');
      assert.equal(retr.status, `+OK ${Buffer.byteLength(big)} octets`);
      assert.equal(`${retr.lines.join('\r\n')}\r\n`, big, 'a body sent in 512-byte chunks is whole');
      assert.match(await client.command('QUIT'), /^\+OK/);
    } finally {
      client.close();
    }
    const refusals = await Promise.all(
      ['511', '1048577', 'abc'].map((bad) => ctl(['chunk-size', bad], { env })),
    );
    for (const run of refusals)
      assertFails(run, 1, 'poplarctl: the chunk size must be from 512 to 1048576 (status 0x04)\n');
    assertOk(await ctl(['chunk-size', '1048576'], { env }), 'transfer chunk size set to 1048576\n');
  });

  await t.test('maildir PATH changes the Maildir root; a missing directory is refused', async () => {
    const other = join(cwd, 'second');
    await buildMaildir(other, 'foo', [{ content: SECOND_MESSAGE }]);
    assertOk(await ctl(['maildir', other], { env }), `Maildir root set to ${other}\n`);
    assert.equal(await tryLogin(d.port, 'foo', 'bar'), '+OK foo has 1 message (56 octets)');
    const file = join(cwd, 'poplar.toml');
    assertFails(
      await ctl(['maildir', file], { env }),
      1,
      `poplarctl: ${file} is not an existing directory on the server (status 0x04)\n`,
    );
    assertOk(await ctl(['maildir', mail], { env }), `Maildir root set to ${mail}\n`);
    assert.match(await tryLogin(d.port, 'foo', 'bar'), /^\+OK foo has 2 messages/);
  });

  await t.test('--json prints JSON for counters, changes and refusals', async () => {
    const [get, set, refused, wrong] = await Promise.all([
      ctl(['--json', '-c', TOKEN]),
      ctl(['--json', 'chunk-size', '4096'], { env }),
      ctl(['--json', 'users', 'del', 'nobody'], { env }),
      ctl(['--json', '-C', 'wrongToken-00001']),
    ]);
    assert.equal(get.code, 0);
    assert.deepEqual(JSON.parse(get.stdout), { concurrentConnections: 0 });
    assert.equal(set.code, 0);
    assert.deepEqual(JSON.parse(set.stdout), { ok: true, target: 'chunkSize' });
    assert.equal(refused.code, 1);
    assert.deepEqual(JSON.parse(refused.stdout), {
      ok: false,
      status: '0x04',
      error: 'no such user: nobody',
    });
    assert.equal(wrong.code, 1);
    assert.deepEqual((JSON.parse(wrong.stdout) as { status: string }).status, '0x05');
  });
});

test('tokens, exit statuses and messages', LIMIT, async (t) => {
  const { d, cwd, mail, ctl } = await startCtlDaemon(t);
  const refused =
    /^poplarctl: the server refused the token: check it \(POPLAR_TOKEN, --token-file, or the last argument\) \(status 0x05\)\n$/;

  await t.test(
    'the token comes from the last argument, --token-file or POPLAR_TOKEN, in that order',
    async () => {
      const good = join(cwd, 'good-token');
      const bad = join(cwd, 'bad-token');
      await writeFile(good, `${TOKEN}\n`, { mode: 0o600 });
      await writeFile(bad, 'wrongToken-00002\n', { mode: 0o600 });
      const [file, fileOriginal, env, lastWins, lastLoses, fileWins, fileLoses, missing] = await Promise.all([
        ctl(['stats', '--token-file', good]),
        ctl(['--token-file', good, '-C']),
        ctl(['-C'], { env: { POPLAR_TOKEN: TOKEN } }),
        ctl(['-C', '--token-file', bad, TOKEN], { env: { POPLAR_TOKEN: 'wrongToken-00003' } }),
        ctl(['-C', '--token-file', good, 'wrongToken-00004'], { env: { POPLAR_TOKEN: TOKEN } }),
        ctl(['stats', '--token-file', good], { env: { POPLAR_TOKEN: 'wrongToken-00005' } }),
        ctl(['stats', '--token-file', bad], { env: { POPLAR_TOKEN: TOKEN } }),
        ctl(['stats', '--token-file', join(cwd, 'nope')], { env: { POPLAR_TOKEN: TOKEN } }),
      ]);
      assertOk(file, /^historicConnections: 0\n/);
      assertOk(fileOriginal, 'historic connections: 0\n');
      assertOk(env, 'historic connections: 0\n');
      assertOk(lastWins, 'historic connections: 0\n');
      assertFails(lastLoses, 1, refused);
      assertOk(fileWins, /^historicConnections: 0\n/);
      assertFails(fileLoses, 1, refused);
      assertFails(missing, 2, /^poplarctl: .*ENOENT.*nope/);
    },
  );

  await t.test('a wrong token: exit 1, a message about the token, and nothing changed', async () => {
    const usersFile = join(mail, '.poplar-users');
    const adminsFile = join(mail, '.poplar-admins');
    const users = await readFile(usersFile);
    const admins = await readFile(adminsFile);
    const wrong = 'wrongToken-00006';
    const since = d.logs.length;
    // Each from a source address of its own (--source): past 3 wrong tokens, an address's requests
    // wait longer and longer, and eight at once from one address could outwait poplarctl.
    const from = (k: number): string[] => ['--source', `127.0.9.${String(k + 1)}`];
    const runs = await Promise.all([
      ...[
        ['-u', 'mallory:mallory-pw', wrong],
        ['-d', 'foo', wrong],
        ['-U', 'mallory:malloryToken0001', wrong],
        ['-D', 'root', wrong],
        ['-m', cwd, wrong],
      ].map((args, k) => ctl([...from(k), ...args])),
      ctl([...from(5), 'users', 'add', 'mallory'], {
        env: { POPLAR_TOKEN: wrong },
        input: 'mallory-pw\n',
      }),
      ctl([...from(6), 'chunk-size', '600'], { env: { POPLAR_TOKEN: wrong } }),
      ctl([...from(7), '-C', TOKEN.toUpperCase()]),
    ]);
    for (const run of runs) assertFails(run, 1, refused);
    assert.deepEqual(await readFile(usersFile), users, 'the users file is byte-identical');
    assert.deepEqual(await readFile(adminsFile), admins, 'the admins file is byte-identical');
    assert.equal(await tryLogin(d.port, 'mallory', 'mallory-pw'), BAD_LOGIN);
    assert.equal(await tryLogin(d.port, 'foo', 'bar'), '+OK foo has 1 message (72 octets)', 'same root');
    // Wrong tokens are logged once per address per minute (earlier subtests already had one).
    const warnings = d.logs.slice(since).filter((e) => e.msg === 'monitor request with a wrong token');
    const remotes = warnings.map((e) => e['remote']);
    const sources = Array.from({ length: 8 }, (_, k) => from(k)[1]);
    assert.ok(warnings.length >= 1, 'wrong tokens are logged');
    assert.ok(
      remotes.every((r) => sources.includes(r as string)),
      `each line names a --source address: ${JSON.stringify(remotes)}`,
    );
    assert.equal(new Set(remotes).size, remotes.length, 'at most one line per address');
    assert.deepEqual(
      d.logs.slice(since).filter((e) => e['admin'] !== undefined),
      [],
      'no change was logged',
    );
  });

  await t.test('no server: exit 3 and a hint to check that poplar runs', async () => {
    const closed = await unusedPort();
    assertFails(
      await runCtl(t, ['--port', String(closed), '-C', TOKEN]),
      3,
      new RegExp(
        `^poplarctl: cannot reach the monitor at 127\\.0\\.0\\.1:${closed} \\(.*ECONNREFUSED.*\\): is poplar running, with its monitor on this address and port\\?\\n$`,
      ),
    );
  });

  await t.test('the server refuses: exit 1 with the reason (-U of an existing admin)', async () => {
    assertOk(await ctl(['-U', 'second:secondToken-0001', TOKEN]), 'admin second added\n');
    assertFails(
      await ctl(['-U', 'second:secondToken-0002', TOKEN]),
      1,
      'poplarctl: the admin exists, or the name or the token is invalid (a token is 16 printable ASCII characters) (status 0x04)\n',
    );
    assertFails(await ctl(['-C', 'secondToken-0002']), 1, refused);
  });

  await t.test('bad usage: exit 2 and a message, before anything is sent', async () => {
    const since = d.logs.length;
    const usage: [readonly string[], RegExp][] = [
      [['-C'], /^poplarctl: no token: give it as the last argument, in POPLAR_TOKEN or with --token-file\n/],
      [['stats'], /^poplarctl: no token/],
      [['frobnicate'], /^poplarctl: unknown command frobnicate\n/],
      [['-u', 'nocolon', TOKEN], /^poplarctl: expected USER:PASS\n/],
      [['-C', 'short'], /^poplarctl: a token is exactly 16 characters\n/],
      [
        ['-C', TOKEN, '127.0.0.1', '1081', 'extra'],
        /^poplarctl: too many arguments: OPTION TOKEN \[HOST \[PORT\]\]\n/,
      ],
      // The commands take no token argument: one given there is refused, not silently dropped.
      [['stats', TOKEN], /^poplarctl: too many arguments: stats takes the token from POPLAR_TOKEN/],
      [['--bogus', '-C', TOKEN], /^poplarctl: Unknown option '--bogus'/],
      [['users', 'add'], /^poplarctl: users: missing USER\n/],
      [['--port', '0', '-C', TOKEN], /^poplarctl: invalid port 0\n/],
    ];
    // A --port here comes after the one ctl() puts first, and wins.
    const runs = await Promise.all(usage.map(([args]) => ctl(args)));
    usage.forEach(([args, message], i) => {
      const run = runs[i];
      assert.ok(run);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
      assert.equal(run.stdout, '', args.join(' '));
    });
    assert.deepEqual(
      d.logs.slice(since).filter((e) => e['component'] === 'monitor'),
      [],
      'no request reached the monitor',
    );
  });
});

test('--host ::1 reaches a monitor listening on the IPv6 loopback', LIMIT, async (t) => {
  if (!(await hasIpv6Loopback())) {
    t.skip('no IPv6 loopback on this machine');
    return;
  }
  const { d, port, ctl } = await startCtlDaemon(t, { args: ['--monitor-listen', '::1'], host: '::1' });
  const bound = d.started['monitor'] as { address: string; family: string; port: number }[];
  assert.deepEqual(
    bound.map((b) => [b.address, b.family, b.port]),
    [['::1', 'IPv6', port]],
  );
  await scriptedSession(d, 'foo', 'bar');
  assertOk(await ctl(['-C', TOKEN]), 'historic connections: 1\n');
  assertOk(await ctl(['sessions'], { env: { POPLAR_TOKEN: TOKEN } }), '0 open sessions\n');
  assertFails(
    await runCtl(t, ['--host', '127.0.0.1', '--port', String(port), '-C', TOKEN]),
    3,
    /is poplar running/,
  );
});
