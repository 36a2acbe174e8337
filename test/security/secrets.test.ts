// Secrets never reach the logs, even at debug level: a mix of every way to log in (USER/PASS,
// APOP, AUTH PLAIN and LOGIN with initial responses and continuations, CRAM-MD5), failed logins,
// monitor requests with right and wrong tokens, users and admins added with secrets, and
// poplarctl. Then every byte the daemon wrote (stdout and stderr) is searched for each password,
// token, digest and the base64 of each AUTH payload.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { runCtl, type CtlResult } from '../helpers/poplarctl.js';
import { ADMIN_TOKEN, monitorRequest, startSecurityDaemon } from './fixture.js';

const secrets = new Set<string>([ADMIN_TOKEN]);
/** Registers a secret that no output may contain, and returns it. */
function secret(value: string): string {
  secrets.add(value);
  return value;
}
/** The base64 of an AUTH payload: a secret too. */
function b64(text: string): string {
  return secret(Buffer.from(text, 'utf8').toString('base64'));
}

const ALICE = secret('Al1ce-Secret-qW7');
const BOB = secret('Bob secret Z9 x');

async function connect(port: number): Promise<Pop3TestClient> {
  return Pop3TestClient.connect(port);
}

/** Sends `lines` one at a time, each after the previous reply; resolves to the replies. */
async function exchange(port: number, lines: readonly string[]): Promise<string[]> {
  const client = await connect(port);
  try {
    const replies: string[] = [];
    for (const line of lines) {
      if (client.isEnded) break;
      replies.push(await client.command(line.replace('{APOP}', apop(client.greeting, ALICE))));
    }
    return replies;
  } finally {
    client.close();
  }
}

function apop(greeting: string, password: string): string {
  const stamp = /<[^>]+>/.exec(greeting)?.[0] ?? '';
  return secret(
    createHash('md5')
      .update(stamp + password)
      .digest('hex'),
  );
}

test('no password, token, digest or AUTH payload ever appears in what the daemon writes, at debug level', async (t) => {
  const s = await startSecurityDaemon(t, {
    users: `alice:{PLAIN}${ALICE}\nbob:{PLAIN}${BOB}\n`,
    logLevel: 'debug',
    prepare: async ({ root }) => {
      await buildMaildir(root, 'alice', [{ content: 'Subject: hi\r\n\r\nhello\r\n' }]);
    },
  });
  const port = s.pop3Port;
  const ok = /^\+OK \w+ has \d+ messages?/;
  const bad = /^-ERR \[AUTH\]/;

  // USER/PASS: right, wrong, unknown user.
  assert.match((await exchange(port, ['USER alice', `PASS ${ALICE}`, 'QUIT']))[1] ?? '', ok);
  assert.match((await exchange(port, ['USER alice', `PASS ${secret('wrong-Pass-1x')}`]))[1] ?? '', bad);
  assert.match((await exchange(port, ['USER nobody', `PASS ${secret('wrong-Pass-2y')}`]))[1] ?? '', bad);
  // APOP: right and wrong.
  assert.match((await exchange(port, ['APOP alice {APOP}', 'QUIT']))[0] ?? '', ok);
  assert.match(
    (await exchange(port, [`APOP alice ${secret('0123456789abcdef0123456789abcdef')}`]))[0] ?? '',
    bad,
  );
  // AUTH PLAIN with an initial response, right and wrong, and with a continuation.
  assert.match((await exchange(port, [`AUTH PLAIN ${b64(`\0alice\0${ALICE}`)}`, 'QUIT']))[0] ?? '', ok);
  assert.match(
    (await exchange(port, [`AUTH PLAIN ${b64(`\0alice\0${secret('wrong-Pass-3z')}`)}`]))[0] ?? '',
    bad,
  );
  assert.match((await exchange(port, ['AUTH PLAIN', b64(`\0bob\0${BOB}`), 'QUIT']))[1] ?? '', ok);
  assert.match((await exchange(port, ['AUTH PLAIN', b64(`alice\0bob\0${BOB}`)]))[1] ?? '', bad);
  // AUTH LOGIN: the name as initial response, then the password; and all in continuations, wrong.
  assert.match((await exchange(port, [`AUTH LOGIN ${b64('bob')}`, b64(BOB), 'QUIT']))[1] ?? '', ok);
  assert.match(
    (await exchange(port, ['AUTH LOGIN', b64('alice'), b64(secret('wrong-Pass-4w'))]))[2] ?? '',
    bad,
  );
  // CRAM-MD5: the response is a keyed digest of the challenge.
  const cram = await connect(port);
  try {
    const challenge = await cram.command('AUTH CRAM-MD5');
    const text = Buffer.from(challenge.slice(2), 'base64').toString('utf8');
    const digest = createHmac('md5', ALICE).update(text).digest('hex');
    assert.match(await cram.command(b64(`alice ${secret(digest)}`)), ok);
    await cram.command('QUIT');
  } finally {
    cram.close();
  }

  // The monitor: the right token, a wrong one, a user and an admin added with their secrets.
  const mon = s.monitorPort;
  assert.equal((await monitorRequest(mon, 'get', 0x00)).status, 'ok');
  assert.equal((await monitorRequest(mon, 'get', 0x00, '', secret('Wrong-token-5678'))).status, 'authFailed');
  const carol = secret('Carol-pw-monitor1');
  assert.equal((await monitorRequest(mon, 'config', 0x04, `carol\0${carol}`)).status, 'ok');
  assert.equal(
    (await monitorRequest(mon, 'config', 0x04, `carol\0${carol}`, secret('Wrong-token-9abc'))).status,
    'authFailed',
  );
  assert.equal(
    (await monitorRequest(mon, 'config', 0x02, `ops2\0${secret('Ops2-token-00007')}`)).status,
    'ok',
  );

  // poplarctl, in both its forms: stdin, the environment, the command line, a token file.
  const ctl = (args: readonly string[], options: Parameters<typeof runCtl>[2] = {}): Promise<CtlResult> =>
    runCtl(t, ['--host', '127.0.0.1', '--port', String(mon), ...args], options);
  const env = { POPLAR_TOKEN: ADMIN_TOKEN };
  const dave = secret('Dave-pw-stdin-22');
  const erin = secret('Erin-pw-argv-333');
  const ops3 = secret('Ops3-token-00009');
  const runs = [
    await ctl(['users', 'add', 'dave'], { env, input: `${dave}\n` }),
    await ctl(['-u', `erin:${erin}`, ADMIN_TOKEN]),
    await ctl(['admins', 'add', 'ops3'], { env, input: `${ops3}\n` }),
    await ctl(['stats'], { env }),
    await ctl(['sessions'], { env: { POPLAR_TOKEN: secret('Wrong-token-defg') } }),
    await ctl(['-C', secret('Wrong-token-hijk')]),
  ];
  assert.deepEqual(
    runs.map((r) => r.code),
    [0, 0, 0, 0, 1, 1],
    runs.map((r) => r.stderr).join(''),
  );
  // The users added log in.
  for (const [user, password] of [
    ['carol', carol],
    ['dave', dave],
    ['erin', erin],
  ] as const) {
    assert.match((await exchange(port, [`USER ${user}`, `PASS ${password}`, 'QUIT']))[1] ?? '', ok, user);
  }
  const opened = s.d.logs.filter((e) => e.msg === 'connection opened').length;
  await s.d.waitForLog(() => s.d.logs.filter((e) => e.msg === 'connection closed').length === opened);

  // The logs did record these events (so the search below looked at a full log)...
  for (const msg of [
    'login',
    'login failed',
    'user set',
    'admin added',
    'monitor request with a wrong token',
    'command',
  ]) {
    assert.ok(
      s.d.logs.some((e) => e.msg === msg),
      `logged: ${msg}`,
    );
  }
  // ...and no secret is anywhere in the daemon's output, nor in poplarctl's, nor in the files.
  const outputs = [
    { name: 'daemon stdout', text: s.d.stdout() },
    { name: 'daemon stderr', text: s.d.stderr() },
    ...runs.map((r, i) => ({ name: `poplarctl run ${i + 1}`, text: r.stdout + r.stderr })),
    { name: 'users file', text: await readFile(s.usersFile, 'utf8') },
    { name: 'admins file', text: await readFile(s.adminsFile, 'utf8') },
  ];
  const leaks: string[] = [];
  for (const { name, text } of outputs) {
    for (const value of secrets) {
      // alice's and bob's {PLAIN} passwords are in the users file by the operator's choice.
      if (name === 'users file' && (value === ALICE || value === BOB)) continue;
      if (text.includes(value)) leaks.push(`${name} contains ${JSON.stringify(value)}`);
    }
  }
  assert.deepEqual(leaks, []);
  assert.ok(secrets.size >= 25, `searched for ${secrets.size} secrets`);
  assert.match(await readFile(join(s.cwd, 'users'), 'utf8'), /^carol:\{PBKDF2\}/m, 'stored hashed');
});
