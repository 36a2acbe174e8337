// User names and monitor paths that try to leave the mail root, and symbolic links that point out
// of it, against the real daemon. Nothing outside the mail root may be read, created or changed:
// a canary folder next to the root is compared before and after.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import {
  ADMIN_TOKEN,
  CANARY_SECRET,
  monitorRequest,
  snapshot,
  startSecurityDaemon,
  type SecurityDaemon,
} from './fixture.js';
import { HOSTILE_NAMES } from './fuzz-engine.js';

const PASSWORD = 'alice-Pw-4411';
const ALICE_MESSAGE = 'Subject: mine\r\n\r\nalice only\r\n';
const SIZE = ALICE_MESSAGE.length;
const USERS = ['alice', 'mallory', 'eve', 'trudy', 'oscar'].map((u) => `${u}:{PLAIN}${PASSWORD}`).join('\n');
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** Runs `commands` on a new connection; resolves to the replies (status lines; bodies after a +OK RETR/LIST). */
async function session(port: number, commands: readonly string[]): Promise<string[]> {
  const client = await Pop3TestClient.connect(port);
  try {
    const replies = [client.greeting];
    for (const command of commands) {
      if (client.isEnded) break;
      const isMulti = /^(RETR \d+|LIST|UIDL)$/i.test(command);
      if (isMulti) {
        const { status, lines } = await client.multi(command);
        replies.push([status, ...lines].join('\n'));
      } else {
        replies.push(await client.command(command.replace('{APOP}', apopDigest(client.greeting))));
      }
    }
    return replies;
  } catch (error) {
    // The server may close after a refusal: what it said so far is the answer.
    return [client.greeting, `closed: ${(error as Error).message}`];
  } finally {
    client.close();
  }
}

/** The APOP digest of alice's password for a greeting. */
function apopDigest(greeting: string): string {
  const stamp = /<[^>]+>/.exec(greeting)?.[0] ?? '';
  return createHash('md5')
    .update(stamp + PASSWORD)
    .digest('hex');
}

/** The ways to log in with alice's password, as `name`. */
function loginAttempts(name: string): { method: string; commands: string[] }[] {
  // A line break in a command line ends it: `USER alice<CRLF>bob` is USER alice, then bob. Such
  // names go through SASL only, where base64 carries them whole.
  const inLine = /[\r\n]/.test(name)
    ? []
    : [
        { method: 'USER/PASS', commands: [`USER ${name}`, `PASS ${PASSWORD}`] },
        { method: 'APOP', commands: [`APOP ${name} {APOP}`] },
      ];
  return [
    ...inLine,
    { method: 'AUTH PLAIN as authcid', commands: [`AUTH PLAIN ${b64(`\0${name}\0${PASSWORD}`)}`] },
    // The right user and password, with a hostile authorization identity: refused, not followed.
    { method: 'AUTH PLAIN as authzid', commands: [`AUTH PLAIN ${b64(`${name}\0alice\0${PASSWORD}`)}`] },
    { method: 'AUTH LOGIN', commands: ['AUTH LOGIN', b64(name), b64(PASSWORD)] },
  ];
}

/** Runs `tasks` at most `width` at a time (the daemon allows 20 connections per address). */
async function inBatches<T>(tasks: readonly (() => Promise<T>)[], width = 8): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < tasks.length; i += width) {
    results.push(...(await Promise.all(tasks.slice(i, i + width).map((task) => task()))));
  }
  return results;
}

async function everything(s: SecurityDaemon): Promise<Map<string, string>> {
  // The daemon's whole folder but the mail root (users, admins, config, canary...), and the root.
  const all = await snapshot(s.cwd);
  for (const key of all.keys()) if (key.startsWith('mail/') || key === 'mail') all.delete(key);
  for (const [key, value] of await snapshot(s.root)) all.set(`mail/${key}`, value);
  return all;
}

test('hostile user names never log in through any method, and nothing is created or read outside the root', async (t) => {
  const s = await startSecurityDaemon(t, {
    users: `${USERS}\n`,
    prepare: async ({ root }) => {
      await buildMaildir(root, 'alice', [{ content: ALICE_MESSAGE, folder: 'cur' }]);
    },
  });
  // The controls: each method logs alice in with this password, so a refusal below is the name's doing.
  for (const { method, commands } of loginAttempts('alice')) {
    const replies = await session(s.pop3Port, [...commands, 'QUIT']);
    assert.match(
      replies.at(-2) ?? '',
      /^\+OK alice has 1 message/,
      `${method} works for alice: ${replies.join(' | ')}`,
    );
  }
  const before = await everything(s);
  // The controls' login lines may come after their replies: wait for all of them before counting.
  let controlLogins = 0;
  const controls = loginAttempts('alice').length;
  await s.d.waitForLog((e) => e.msg === 'login' && ++controlLogins === controls);
  const loginsBefore = s.d.logs.filter((e) => e.msg === 'login').length;

  const names = HOSTILE_NAMES;
  const attempts = names.flatMap((name) =>
    loginAttempts(name).map(({ method, commands }) => async () => ({
      name,
      method,
      replies: await session(s.pop3Port, [...commands, 'STAT', 'LIST', 'RETR 1']),
    })),
  );
  for (const { name, method, replies } of await inBatches(attempts)) {
    const what = `${method} as ${JSON.stringify(name)}: ${JSON.stringify(replies)}`;
    // No login, and so no STAT, LIST or RETR answered.
    assert.ok(
      !replies.some((r) => /^\+OK (\S+ has \d+ messages|\d+ \d+$|\d+ messages|\d+ octets)/.test(r)),
      what,
    );
    assert.ok(!replies.join('\n').includes('CANARY'), what);
  }
  assert.equal(s.d.logs.filter((e) => e.msg === 'login').length, loginsBefore, 'no login was logged');
  assert.deepEqual(await everything(s), before, 'nothing changed in the mail root or next to it');
});

test('USER takes a name with a Unicode space or BOM around it as another name, not as alice', async (t) => {
  const s = await startSecurityDaemon(t, { users: `${USERS}\n` });
  for (const name of ['alice\ufeff', '\u00a0alice', 'alice\u2028', 'alice\u3000']) {
    const replies = await session(s.pop3Port, [`USER ${name}`, `PASS ${PASSWORD}`, 'QUIT']);
    assert.match(replies[2] ?? '', /^-ERR \[AUTH\]/, `${JSON.stringify(name)}: ${replies.join(' | ')}`);
  }
});

test('monitor CONFIG with names and paths that try to leave the root: refused, nothing changed', async (t) => {
  const s = await startSecurityDaemon(t, {
    users: `${USERS}\n`,
    prepare: async ({ root }) => {
      await buildMaildir(root, 'alice', [{ content: ALICE_MESSAGE, folder: 'cur' }]);
    },
  });
  const before = await everything(s);
  const config = async (target: number, data: Buffer | string): Promise<string> =>
    (await monitorRequest(s.monitorPort, 'config', target, data)).status;

  for (const name of HOSTILE_NAMES) {
    const what = JSON.stringify(name);
    assert.equal(
      await config(0x04, Buffer.concat([Buffer.from(name), Buffer.from([0]), Buffer.from('pw-1')])),
      'badData',
      `add user ${what}`,
    );
    assert.equal(await config(0x05, name), 'badData', `delete user ${what}`);
    assert.equal(await config(0x02, `${name}\0Adm1n-token-0001`), 'badData', `add admin ${what}`);
    assert.equal(await config(0x03, name), 'badData', `delete admin ${what}`);
  }
  const paths: (string | Buffer)[] = [
    '',
    '\0',
    'mail\0',
    '../x-nonexistent',
    'x-nonexistent/../..\0',
    'a/b',
    'canary/secret.txt', // a file, not a folder
    '/etc/passwd',
    join(s.cwd, 'canary', 'secret.txt'),
    '\u2025/\u2025',
    '\uff0e\uff0e',
    'mail/alice/../../nonexistent',
    'x'.repeat(4097),
    Buffer.from([0x2e, 0x2e, 0x2f, 0xff]), // ../ and a byte that is not UTF-8
  ];
  for (const path of paths) {
    assert.equal(await config(0x00, path), 'badData', `mail root ${JSON.stringify(path.toString())}`);
  }
  assert.ok(!s.d.logs.some((e) => e.msg === 'mail root changed'));
  assert.deepEqual(await everything(s), before, 'nothing changed in the mail root or next to it');
  // alice's mail is still served from the same root.
  const replies = await session(s.pop3Port, ['USER alice', `PASS ${PASSWORD}`, 'RETR 1', 'QUIT']);
  assert.equal(replies[3], [`+OK ${SIZE} octets`, 'Subject: mine', '', 'alice only'].join('\n'));
  // The token in every request above was right: the refusals are about the data.
  assert.equal((await monitorRequest(s.monitorPort, 'get', 0x00, '', ADMIN_TOKEN)).status, 'ok');
});

/**
 * Symbolic links in a maildir that point outside the root: a link among the messages is skipped,
 * a maildir or folder that is a link is refused, and a message file swapped for a link is gone.
 */
test('symbolic links pointing out of the mail root', async (t) => {
  const s = await startSecurityDaemon(t, {
    users: `${USERS}\n`,
    prepare: async ({ root, canary }) => {
      // alice: a link among her messages, in cur/ and in new/.
      const { dir } = await buildMaildir(root, 'alice', [{ content: ALICE_MESSAGE, folder: 'cur' }]);
      await symlink(join(canary, 'secret.txt'), join(dir, 'cur', '1700000001.link.host:2,'));
      await symlink(join(canary, 'secret.txt'), join(dir, 'new', '1700000002.link.host'));
      // mallory: the maildir itself is a link to a folder of the canary's, a maildir with a message.
      await buildMaildir(canary, 'm', [{ content: CANARY_SECRET, folder: 'cur' }]);
      await symlink(join(canary, 'm'), join(root, 'mallory'));
      // eve: cur/ is a link to a folder of the canary's holding a message.
      await buildMaildir(canary, 'e', [{ content: CANARY_SECRET, folder: 'cur' }]);
      await mkdir(join(root, 'eve', 'new'), { recursive: true });
      await mkdir(join(root, 'eve', 'tmp'));
      await symlink(join(canary, 'e', 'cur'), join(root, 'eve', 'cur'));
      // trudy: new/ is a link to a folder of the canary's holding a message.
      await mkdir(join(canary, 't'));
      await writeFile(join(canary, 't', '1700000003.canary.host'), CANARY_SECRET);
      await mkdir(join(root, 'trudy', 'cur'), { recursive: true });
      await mkdir(join(root, 'trudy', 'tmp'));
      await symlink(join(canary, 't'), join(root, 'trudy', 'new'));
      // oscar: an ordinary maildir, whose message becomes a link during the session.
      await buildMaildir(root, 'oscar', [
        { content: ALICE_MESSAGE, folder: 'cur', name: '1700000004.oscar.host:2,' },
      ]);
    },
  });
  /** Runs `check` and asserts that the canary folder is as it was before. */
  const outsideUntouched = async (check: () => Promise<void>): Promise<void> => {
    const before = await snapshot(s.canary);
    await check();
    assert.deepEqual(await snapshot(s.canary), before, 'the canary folder is untouched');
  };
  const login = async (user: string): Promise<string[]> =>
    session(s.pop3Port, ['USER ' + user, `PASS ${PASSWORD}`, 'LIST', 'RETR 1', 'RETR 2', 'QUIT']);

  await t.test('a link among the messages (cur/ or new/) is neither listed nor served', () =>
    outsideUntouched(async () => {
      const replies = await login('alice');
      assert.equal(replies[2], `+OK alice has 1 message (${SIZE} octets)`);
      assert.equal(replies[3], `+OK 1 message (${SIZE} octets)\n1 ${SIZE}`);
      assert.ok(!replies.join('\n').includes('CANARY'), replies.join(' | '));
      // The link in new/ was left where it was, not moved into cur/.
      assert.deepEqual(await readdir(join(s.root, 'alice', 'new')), ['1700000002.link.host']);
    }),
  );

  for (const [title, user] of [
    ['a maildir that is a link out of the root is not served, and nothing is created there', 'mallory'],
    ['a cur/ folder that is a link out of the root is not served', 'eve'],
    ['a new/ folder that is a link out of the root: nothing is moved out of it', 'trudy'],
  ] as const) {
    await t.test(title, () =>
      outsideUntouched(async () => {
        const replies = await login(user);
        assert.ok(!replies.join('\n').includes('CANARY'), replies.join(' | '));
      }),
    );
  }

  await t.test('a message replaced by a link during the session is not served', () =>
    outsideUntouched(async () => {
      const client = await Pop3TestClient.connect(s.pop3Port);
      t.after(() => {
        client.close();
      });
      await client.login('oscar', PASSWORD);
      // A local user with write access to the maildir swaps the file for a link after the scan.
      const cur = join(s.root, 'oscar', 'cur');
      await rename(join(cur, '1700000004.oscar.host:2,'), join(s.cwd, 'moved-away'));
      await symlink(join(s.canary, 'secret.txt'), join(cur, '1700000004.oscar.host:2,'));
      const retr = await client.multi('RETR 1');
      assert.ok(!retr.lines.join('\n').includes('CANARY'), `${retr.status} ${retr.lines.join(' | ')}`);
    }),
  );
});
