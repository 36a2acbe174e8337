// Disk faults under the real daemon: the mail root, the users file and the admins file live on a
// small tmpfs that is filled up (no block left), runs out of inodes, or is remounted read-only
// while the daemon runs. What cannot be done is refused (POP3 `-ERR [SYS/TEMP]`, monitor status
// 0x06), what can be done without writing goes on, no existing file is damaged, and users on
// another file system are served as usual. Needs root for mount(8); skipped otherwise.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { sendMonitorRequest, tokenBytes } from '../../src/monitor/client.js';
import type { ConfigTarget, GetTarget, Status } from '../../src/monitor/protocol/messages.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { runToEnd, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { nodeScript } from '../helpers/node-script.js';
import { monitorPort } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';
import { pop3Form } from './crash-harness.js';
import { fillBlocks, fillInodes, mountTmpfs, remount } from './tmpfs.js';
import { countOf } from '../../src/text.js';

const TOKEN = 'Reliab1lityT0ken';
const NEW_TOKEN = 'An0therAdminT0ke';
const PASSWORDS: Readonly<Record<string, string>> = {
  alice: 'alice-pw',
  bob: 'bob-pw',
  carol: 'carol-pw',
  erin: 'erin-pw',
};

/** alice's mail waits in new/ with bare LF line ends: her login moves and measures it. */
const ALICE = [
  'Subject: a1\n\nbare LF body\n',
  'Subject: a2\n\n.a line with a dot\nno final line end',
  Buffer.concat([Buffer.from('Subject: a3\n\n'), Buffer.from([0xe9, 0xe8, 0xff, 0x0a])]),
].map((m) => Buffer.from(m));
/** carol's mail is in cur/: she logs in before the fault, so her sizes are in her size index. */
const CAROL = ['Subject: c1\r\n\r\nfirst\r\n', 'Subject: c2\r\n\r\nsecond\r\n'].map((m) => Buffer.from(m));
/** bob's maildir is on another file system. */
const BOB = ['Subject: b1\r\n\r\nfrom another disk\r\n', 'Subject: b2\r\n\r\nsecond\r\n'].map((m) =>
  Buffer.from(m),
);

const octets = (messages: readonly Buffer[]): number =>
  messages.reduce((sum, m) => sum + pop3Form(m).length, 0);
const hello = (user: string, messages: readonly Buffer[]): string =>
  `+OK ${user} has ${countOf(messages.length, 'message')} (${octets(messages)} octets)`;
const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );
const byContent = (a: Buffer, b: Buffer): number => Buffer.compare(a, b);
const sorted = (messages: readonly Buffer[]): Buffer[] => [...messages].sort(byContent);

interface Fixture {
  /** The tmpfs. */
  readonly fs: string;
  readonly mail: string;
  readonly usersFile: string;
  readonly adminsFile: string;
  readonly daemon: RunningDaemon;
  readonly monitor: number;
}

/**
 * The tmpfs holds the users file, the admins file and the mail root (alice, carol; erin has no
 * maildir yet); bob's maildir is another tmpfs mounted inside it, a file system of its own that
 * the fault does not touch. The daemon runs on it.
 */
async function setUp(t: TestContext, mountOptions: string): Promise<Fixture | undefined> {
  const fs = await mountTmpfs(t, mountOptions);
  if (fs === undefined) return undefined;
  const other = await tempDir(t);
  const mail = join(fs, 'mail');
  const usersFile = join(fs, 'users');
  const adminsFile = join(fs, 'admins');
  await writeFile(
    usersFile,
    Object.entries(PASSWORDS).map(([u, p]) => `${u}:{PLAIN}${p}\n`),
  );
  await writeFile(adminsFile, `root:{PLAIN}${TOKEN}\n`);
  await buildMaildir(
    mail,
    'alice',
    ALICE.map((content) => ({ content, folder: 'new' })),
  );
  await buildMaildir(
    mail,
    'carol',
    CAROL.map((content) => ({ content, folder: 'cur' })),
  );
  await mkdir(join(mail, 'bob'));
  await mountTmpfs(t, 'size=1m', join(mail, 'bob'));
  await buildMaildir(
    mail,
    'bob',
    BOB.map((content) => ({ content, folder: 'cur' })),
  );
  await writeFile(join(other, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\n');
  const daemon = await startDaemon(t, {
    cwd: other,
    args: [
      ...['--config', 'poplar.toml', '--users', usersFile, '--admins', adminsFile, '-m', mail],
      ...['--listen', '127.0.0.1', '-p', '0', '--monitor-port', '0'],
    ],
  });
  return { fs, mail, usersFile, adminsFile, daemon, monitor: monitorPort(daemon.started) };
}

async function connect(
  f: Fixture,
  user: string,
  password = PASSWORDS[user] ?? '',
): Promise<{ client: Pop3TestClient; reply: string }> {
  const client = await Pop3TestClient.connect(f.daemon.port);
  assert.equal(await client.command(`USER ${user}`), '+OK send PASS');
  return { client, reply: await client.command(`PASS ${password}`) };
}

/** Logs in, which must succeed with `messages`; the session is left open. */
async function login(
  f: Fixture,
  user: string,
  messages: readonly Buffer[],
  password?: string,
): Promise<Pop3TestClient> {
  const { client, reply } = await connect(f, user, password);
  assert.equal(reply, hello(user, messages));
  return client;
}

/**
 * Logs in once the maildrop is free. A lock whose release failed is removed by a retry in the
 * process that held it, which may be another worker than the one this login reaches: that
 * happens on a timer nothing here can observe, so the login is tried again (for 30 s at most).
 */
async function loginOnceFree(f: Fixture, user: string, messages: readonly Buffer[]): Promise<Pop3TestClient> {
  for (let attempt = 1; ; attempt++) {
    const { client, reply } = await connect(f, user);
    if (!reply.startsWith('-ERR [IN-USE]') || attempt === 120) {
      assert.equal(reply, hello(user, messages));
      return client;
    }
    client.close();
    await delay(250);
  }
}

/** A login that the fault must refuse with [SYS/TEMP], leaving the connection usable. */
async function refusedLogin(f: Fixture, user: string): Promise<void> {
  const { client, reply } = await connect(f, user);
  assert.match(reply, /^-ERR \[SYS\/TEMP\] /, `${user}'s login`);
  assert.equal(await client.command('QUIT'), '+OK Poplar signing off');
  client.close();
}

async function retr(client: Pop3TestClient, msgNo: number, content: Buffer): Promise<void> {
  const expected = pop3Form(content);
  assert.equal(await client.command(`RETR ${msgNo}`), `+OK ${expected.length} octets`);
  assert.deepEqual(await client.readBody(), expected);
}

async function quit(client: Pop3TestClient, expected: string | RegExp): Promise<void> {
  const reply = await client.command('QUIT');
  if (typeof expected === 'string') assert.equal(reply, expected);
  else assert.match(reply, expected);
  await client.closed();
}

/** Every message file of a maildir (cur/ and new/), sorted by content. */
async function messagesIn(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const sub of ['cur', 'new']) {
    for (const name of await readdir(join(dir, sub))) out.push(await readFile(join(dir, sub, name)));
  }
  return out.sort(byContent);
}

/** Temporary files anywhere on the tmpfs: a failed write must not leave any. */
async function temporaries(fs: string): Promise<string[]> {
  const names = await readdir(fs, { recursive: true });
  return names.filter((n) => n.endsWith('.tmp') || /\.poplar-lock\./.test(n));
}

async function monitorConfig(f: Fixture, target: ConfigTarget, ...fields: string[]): Promise<Status> {
  const data = Buffer.from(fields.join('\0'));
  const options = { host: '127.0.0.1', port: f.monitor };
  return (await sendMonitorRequest(options, { type: 'config', token: tokenBytes(TOKEN), target, data }))
    .status;
}

async function monitorGet(f: Fixture, token: string, target: GetTarget): Promise<Status> {
  const request = { type: 'get', token: tokenBytes(token), target, data: Buffer.alloc(0) } as const;
  return (await sendMonitorRequest({ host: '127.0.0.1', port: f.monitor }, request)).status;
}

/**
 * Monitor changes that must be written before they apply are refused with status 0x06, and
 * leave the users and admins files as they were and the server's view unchanged.
 */
async function assertMonitorChangesRefused(f: Fixture, refill: () => Promise<void>): Promise<void> {
  const users = await readFile(f.usersFile);
  const admins = await readFile(f.adminsFile);
  await refill();
  assert.equal(await monitorConfig(f, 'setUser', 'dave', 'dave-pw'), 'serverError', 'add a user');
  await refill();
  assert.equal(await monitorConfig(f, 'setUser', 'alice', 'new alice pw'), 'serverError', 'a new password');
  await refill();
  assert.equal(await monitorConfig(f, 'addAdmin', 'ops', NEW_TOKEN), 'serverError', 'add an admin');
  await refill();
  assert.equal(await monitorConfig(f, 'deleteUser', 'erin'), 'serverError', 'delete a user');
  assert.deepEqual(await readFile(f.usersFile), users, 'the users file is unchanged');
  assert.deepEqual(await readFile(f.adminsFile), admins, 'the admins file is unchanged');
  assert.deepEqual(await temporaries(f.fs), [], 'no temporary file is left');
  // Nothing changed in memory either.
  assert.equal(await monitorGet(f, NEW_TOKEN, 'uptimeSeconds'), 'authFailed', 'the new admin does not exist');
  const dave = await connect(f, 'dave', 'dave-pw');
  assert.equal(dave.reply, '-ERR [AUTH] invalid user name or password');
  dave.client.close();
  const alice = await connect(f, 'alice', 'new alice pw');
  assert.equal(alice.reply, '-ERR [AUTH] invalid user name or password', 'alice keeps her password');
  alice.client.close();
}

/** bob, whose maildir is on another file system, is served as usual: read, delete, quit. */
async function assertOtherDiskServed(f: Fixture): Promise<void> {
  const bob = await login(f, 'bob', BOB);
  await retr(bob, 1, BOB[0] as Buffer);
  assert.equal(await bob.command('DELE 2'), '+OK message 2 deleted');
  await quit(bob, '+OK Poplar signing off (1 message left)');
  assert.deepEqual(await messagesIn(join(f.mail, 'bob')), [BOB[0]]);
}

function assertNoInternalError(f: Fixture): void {
  const internal = f.daemon.logs.filter((e) => e.msg === 'internal error');
  assert.deepEqual(
    internal.map((e) => e.raw),
    [],
    'every failure is an expected one, answered [SYS/TEMP]',
  );
  assert.equal(f.daemon.child.exitCode, null, 'the daemon still runs');
}

test('a full disk: what needs no new block goes on, writes are refused, nothing is damaged', async (t) => {
  const f = await setUp(t, 'size=1m');
  if (f === undefined) return;
  const fill = join(f.fs, 'fill');
  // carol's maildrop is open (and her size index written) before the disk fills up.
  const carol = await login(f, 'carol', CAROL);
  const carolIndex = await readFile(join(f.mail, 'carol', '.poplar-sizes'));
  await fillBlocks(fill);

  // alice's login moves new/ to cur/ (a rename needs no block) and measures her mail; the lock is
  // taken without a data block; only the size index cannot be saved, which merely costs
  // measuring again at her next login. So: +OK with the right sizes.
  const alice = await login(f, 'alice', ALICE);
  const list = await alice.multi('LIST');
  assert.deepEqual(
    list.lines,
    ALICE.map((m, i) => `${i + 1} ${pop3Form(m).length}`),
  );
  await retr(alice, 2, ALICE[1] as Buffer);
  await quit(alice, '+OK Poplar signing off (3 messages left)');
  assert.deepEqual(await messagesIn(join(f.mail, 'alice')), sorted(ALICE));
  assert.deepEqual(await readdir(join(f.mail, 'alice', 'new')), [], 'new/ was moved to cur/');
  assert.ok(
    !(await readdir(join(f.mail, 'alice'))).includes('.poplar-sizes'),
    'the size index could not be saved',
  );
  // erin has no maildir yet: creating folders needs no data block on tmpfs.
  const erin = await login(f, 'erin', []);
  await quit(erin, '+OK Poplar signing off (0 messages left)');

  await assertMonitorChangesRefused(f, () => fillBlocks(fill));
  await assertOtherDiskServed(f);

  // Deleting needs no space: carol's QUIT works (and frees some).
  await retr(carol, 1, CAROL[0] as Buffer);
  assert.equal(await carol.command('DELE 2'), '+OK message 2 deleted');
  await quit(carol, '+OK Poplar signing off (1 message left)');
  assert.deepEqual(await messagesIn(join(f.mail, 'carol')), [CAROL[0]]);
  assert.deepEqual(await readFile(join(f.mail, 'carol', '.poplar-sizes')), carolIndex);
  assert.deepEqual(await temporaries(f.fs), []);
  assertNoInternalError(f);

  // Space again: everything works.
  await rm(fill);
  assert.equal(await monitorConfig(f, 'setUser', 'dave', 'dave-pw'), 'ok');
  await quit(await login(f, 'dave', [], 'dave-pw'), '+OK Poplar signing off (0 messages left)');
  await quit(await login(f, 'alice', ALICE), '+OK Poplar signing off (3 messages left)');
  assert.ok((await readdir(join(f.mail, 'alice'))).includes('.poplar-sizes'), 'the size index is saved now');
});

test('no inode left: logins that must create a file are refused [SYS/TEMP], the rest goes on', async (t) => {
  // Enough inodes for the fixture, carol's lock and index, and a few to fill.
  const f = await setUp(t, 'size=4m,nr_inodes=48');
  if (f === undefined) return;
  const carol = await login(f, 'carol', CAROL);
  const carolIndex = await readFile(join(f.mail, 'carol', '.poplar-sizes'));
  await fillInodes(join(f.fs, 'inodes'));

  // alice's lock cannot be created (neither a file nor a symbolic link), nor erin's maildir.
  await refusedLogin(f, 'alice');
  assert.equal((await readdir(join(f.mail, 'alice', 'new'))).length, ALICE.length, 'still in new/');
  assert.deepEqual(await messagesIn(join(f.mail, 'alice')), sorted(ALICE));
  await refusedLogin(f, 'erin');
  await assertMonitorChangesRefused(f, () => fillInodes(join(f.fs, 'inodes')));
  await assertOtherDiskServed(f);

  assert.equal(await carol.command('DELE 1'), '+OK message 1 deleted');
  await quit(carol, '+OK Poplar signing off (1 message left)');
  assert.deepEqual(await messagesIn(join(f.mail, 'carol')), [CAROL[1]]);
  assert.deepEqual(await readFile(join(f.mail, 'carol', '.poplar-sizes')), carolIndex);
  assert.deepEqual(await temporaries(f.fs), []);
  assertNoInternalError(f);

  await rm(join(f.fs, 'inodes'), { recursive: true });
  await quit(await login(f, 'alice', ALICE), '+OK Poplar signing off (3 messages left)');
  await quit(await login(f, 'erin', []), '+OK Poplar signing off (0 messages left)');
  assert.equal(await monitorConfig(f, 'setUser', 'dave', 'dave-pw'), 'ok');
  await quit(await login(f, 'dave', [], 'dave-pw'), '+OK Poplar signing off (0 messages left)');
});

test('remounted read-only under the daemon: refused [SYS/TEMP] and 0x06, nothing lost, all back after rw', async (t) => {
  const f = await setUp(t, 'size=1m');
  if (f === undefined) return;
  // carol reads and marks a message deleted; then the file system turns read-only.
  const carol = await login(f, 'carol', CAROL);
  const carolIndex = await readFile(join(f.mail, 'carol', '.poplar-sizes'));
  await retr(carol, 1, CAROL[0] as Buffer);
  assert.equal(await carol.command('DELE 2'), '+OK message 2 deleted');
  await remount(f.fs, 'ro');
  t.after(() => remount(f.fs, 'rw').catch(() => undefined));

  await refusedLogin(f, 'alice');
  assert.deepEqual(await messagesIn(join(f.mail, 'alice')), sorted(ALICE));
  assert.equal((await readdir(join(f.mail, 'alice', 'new'))).length, ALICE.length, 'still in new/');
  await refusedLogin(f, 'erin');
  await assertMonitorChangesRefused(f, () => Promise.resolve());
  await assertOtherDiskServed(f);
  // carol's deletion cannot be done: she is told, and nothing is lost.
  await quit(carol, '-ERR [SYS/TEMP] 1 of 1 message could not be deleted');
  assert.deepEqual(await messagesIn(join(f.mail, 'carol')), sorted(CAROL));
  assert.deepEqual(await readFile(join(f.mail, 'carol', '.poplar-sizes')), carolIndex);
  assertNoInternalError(f);

  await remount(f.fs, 'rw');
  // carol's lock could not be removed while read-only: it must not lock her out now.
  const again = await loginOnceFree(f, 'carol', CAROL);
  assert.equal(await again.command('DELE 2'), '+OK message 2 deleted');
  await quit(again, '+OK Poplar signing off (1 message left)');
  assert.deepEqual(await messagesIn(join(f.mail, 'carol')), [CAROL[0]]);
  await quit(await login(f, 'alice', ALICE), '+OK Poplar signing off (3 messages left)');
  await quit(await login(f, 'erin', []), '+OK Poplar signing off (0 messages left)');
  assert.equal(await monitorConfig(f, 'setUser', 'dave', 'dave-pw'), 'ok');
  assert.equal(await monitorConfig(f, 'addAdmin', 'ops', NEW_TOKEN), 'ok');
  assert.equal(await monitorGet(f, NEW_TOKEN, 'uptimeSeconds'), 'ok');
  assert.deepEqual(await temporaries(f.fs), []);
});

test(
  'a lock left by a release on a read-only file system is removed once it is writable again',
  { timeout: 60_000 },
  async (t) => {
    const fs = await mountTmpfs(t, 'size=1m');
    if (fs === undefined) return;
    await buildMaildir(fs, 'alice', [{ content: ALICE[0] as Buffer }]);
    const lock = join(fs, 'alice', '.poplar-lock');
    const drop = await new MaildirStore({ root: fs }).open({ name: 'alice' });
    await remount(fs, 'ro');
    t.after(() => remount(fs, 'rw').catch(() => undefined));
    await drop.close();
    assert.ok(await exists(lock), 'the lock cannot be removed while read-only');
    // Another process (another worker, say) would see a live owner: this process removes it itself.
    const removed = new Promise<void>((resolve) => {
      const watcher = watch(join(fs, 'alice'), () => {
        void exists(lock).then((isThere) => {
          if (isThere) return;
          watcher.close();
          resolve();
        });
      });
    });
    await remount(fs, 'rw');
    await removed;
    const { command, args } = nodeScript('../fixtures/hold-maildrop.js', import.meta.url);
    const other = await runToEnd(t, spawn(command, [...args, fs, 'alice']), { input: '' });
    assert.equal(other.stdout, 'locked\nreleased\n');
  },
);
