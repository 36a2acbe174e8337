// The daemon with --workers 2, a users file whose lines carry poplar_* extra fields and a [policy]
// table: CAPA's EXPIRE and LOGIN-DELAY, LOGIN-DELAY across workers (the ledger in the maildir),
// EXPIRE 0 at QUIT on the Maildir store, maxSessions 0, the daily download limit over sessions,
// and a line with a bad field logged with its number and its user refused.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };
const MESSAGE = 'Subject: policy\r\n\r\nA message of some length, to count.\r\n';
const SIZE = Buffer.byteLength(MESSAGE);

const USERS = [
  '# Dovecot fields and extra fields, Poplar reads the poplar_* ones',
  'delay:{PLAIN}pw-delay:1000:1000::/home/delay::userdb_quota_rule=*:storage=1G poplar_login_delay=600',
  `expire:{PLAIN}pw-expire:::::: poplar_expire=0`,
  'off:{PLAIN}pw-off:::::: poplar_max_sessions=0',
  `quota:{PLAIN}pw-quota:::::: poplar_download_per_day=${SIZE + 1}`,
  'typo:{PLAIN}pw-typo:::::: poplar_app_passwords_only=ye',
  'plain:{PLAIN}pw-plain',
];

async function logIn(port: number, user: string): Promise<{ client: Pop3TestClient; reply: string }> {
  const client = await Pop3TestClient.connect(port);
  await client.command(`USER ${user}`);
  return { client, reply: await client.command(`PASS pw-${user}`) };
}

test('per-user policy from the users file, over two workers', LIMIT, async (t) => {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), `${USERS.join('\n')}\n`);
  await writeFile(join(cwd, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\n\n[policy]\nexpire = 30\n');
  const mail = join(cwd, 'mail');
  for (const user of ['delay', 'expire', 'quota', 'plain'])
    await buildMaildir(mail, user, [{ content: MESSAGE }, { content: MESSAGE }, { content: MESSAGE }]);
  const d = await startDaemon(t, {
    cwd,
    args: [
      '--workers',
      '2',
      '--users',
      'users',
      '--config',
      'poplar.toml',
      '--listen',
      '127.0.0.1',
      '-p',
      '0',
      '-m',
      'mail',
    ],
  });
  // The bad line: logged with its number and field (by the primary and each worker's copy at debug).
  const skipped = await d.waitForLog((e) => e.msg === 'users file line skipped');
  assert.equal(skipped['line'], 6);
  assert.equal(skipped['problem'], 'poplar_app_passwords_only: expected yes or no');
  assert.match((await logIn(d.port, 'typo')).reply, /^-ERR \[AUTH\] invalid user name or password/);

  // CAPA: the [policy] value with USER before login; the user's own after.
  const anon = await Pop3TestClient.connect(d.port);
  const before = (await anon.multi('CAPA')).lines;
  assert.ok(before.includes('EXPIRE 30 USER') && before.includes('LOGIN-DELAY 0 USER'), before.join('|'));
  anon.close();

  // LOGIN-DELAY: one session, then every later attempt within 600 s is refused, whichever worker
  // takes it (the ledger is the user's maildir's, not a worker's).
  const first = await logIn(d.port, 'delay');
  assert.match(first.reply, /^\+OK delay has 3 messages/);
  const own = (await first.client.multi('CAPA')).lines;
  assert.ok(own.includes('EXPIRE 30') && own.includes('LOGIN-DELAY 600'), own.join('|'));
  assert.match(await first.client.command('QUIT'), /^\+OK/);
  first.client.close();
  // Six tries: node:cluster hands connections round robin, so both workers get some.
  for (let i = 0; i < 6; i++) {
    const again = await logIn(d.port, 'delay');
    assert.match(
      again.reply,
      /^-ERR \[LOGIN-DELAY\] logged in too recently: wait \d+ more seconds \(the login delay is 600 seconds\)$/,
    );
    again.client.close();
  }
  const ledger = JSON.parse(await readFile(join(mail, 'delay', '.poplar-ledger'), 'utf8')) as {
    sessions: { method: string; address: string; tls: boolean; end?: number }[];
  };
  assert.equal(ledger.sessions.length, 1);
  const [session] = ledger.sessions;
  assert.ok(session !== undefined && typeof session.end === 'number');
  assert.deepEqual([session.method, session.address, session.tls], ['USER', '127.0.0.1', false]);

  // EXPIRE 0: what was retrieved goes at QUIT, in the Maildir too.
  const expire = await logIn(d.port, 'expire');
  assert.ok((await expire.client.multi('CAPA')).lines.includes('EXPIRE 0'));
  await expire.client.multi('RETR 1');
  await expire.client.multi('RETR 2');
  assert.equal(await expire.client.command('QUIT'), '+OK Poplar signing off (1 message left)');
  expire.client.close();
  const left = [
    ...(await readdir(join(mail, 'expire', 'cur'))),
    ...(await readdir(join(mail, 'expire', 'new'))),
  ];
  assert.equal(left.length, 1);

  // maxSessions 0: refused after the password, [AUTH].
  assert.equal((await logIn(d.port, 'off')).reply, '-ERR [AUTH] POP3 access is disabled for this user');

  // The download limit holds over sessions (and workers): the first message crosses it whole.
  const q1 = await logIn(d.port, 'quota');
  assert.match((await q1.client.multi('RETR 1')).status, /^\+OK/);
  assert.match(await q1.client.command('QUIT'), /^\+OK/);
  q1.client.close();
  const q2 = await logIn(d.port, 'quota');
  assert.match((await q2.client.multi('RETR 2')).status, /^\+OK/, 'one octet was left');
  assert.match(await q2.client.command('RETR 3'), /^-ERR \[SYS\/TEMP\] daily download limit reached/);
  assert.match(await q2.client.command('QUIT'), /^\+OK/);
  q2.client.close();
  const q3 = await logIn(d.port, 'quota');
  assert.match(await q3.client.command('TOP 3 0'), /^-ERR \[SYS\/TEMP\] daily download limit reached/);
  assert.match(await q3.client.command('LIST'), /^\+OK/);
  q3.client.close();

  // A user without fields: the [policy] defaults, nothing refused.
  const plain = await logIn(d.port, 'plain');
  assert.match(plain.reply, /^\+OK/);
  plain.client.close();
  assert.equal(await d.stop(), 0);
});
