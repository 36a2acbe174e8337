// A users file with hostile lines: huge lines, NULs, binary, duplicate users, CRs inside lines,
// path-like names, shell metacharacters. The daemon starts, logs each bad line's number (and
// nothing of its content), serves the good users, and none of the bad lines lets anyone in.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { Prng } from './fuzz-engine.js';
import { monitorRequest, snapshot, startSecurityDaemon } from './fixture.js';

interface Line {
  readonly text: string;
  /** A good line: the user logs in with this password. */
  readonly good?: { readonly user: string; readonly password: string };
  /** A bad line: it is reported, and these attempts do not log in. */
  readonly bad?: readonly { readonly user: string; readonly password: string }[];
}

const binary = (() => {
  const r = new Prng(7);
  // Random bytes, with a colon and a scheme so the line looks like an entry, decoded as the daemon does.
  return Buffer.concat([r.bytes(200), Buffer.from(':{PLAIN}bin-pw:'), r.bytes(50)])
    .toString('utf8')
    .replaceAll('\n', ' ');
})();

const LINES: readonly Line[] = [
  { text: '# users for the hostile-input test' },
  { text: 'alice:{PLAIN}alice-pw-1', good: { user: 'alice', password: 'alice-pw-1' } },
  { text: 'x'.repeat(3_000_000), bad: [] },
  { text: `big:{SHA512-CRYPT}$6$${'a'.repeat(1_000_000)}`, bad: [{ user: 'big', password: 'aaaa' }] },
  { text: `long${'n'.repeat(70)}:{PLAIN}pw`, bad: [{ user: `long${'n'.repeat(70)}`, password: 'pw' }] },
  { text: 'nul\0name:{PLAIN}nul-pw', bad: [{ user: 'nul', password: 'nul-pw' }] },
  { text: 'nulpw:{PLAIN}nul\0pw', bad: [{ user: 'nulpw', password: 'nul\0pw' }] },
  { text: binary, bad: [] },
  // A second definition of alice: the first one stays in force, this password opens nothing.
  { text: 'alice:{PLAIN}alice-second-pw', bad: [{ user: 'alice', password: 'alice-second-pw' }] },
  // CRs inside a line (old Mac line ends): one damaged line, not two users.
  {
    text: 'carol:{PLAIN}carol-pw\rmallory:{PLAIN}mallory-pw\r',
    bad: [
      { user: 'carol', password: 'carol-pw' },
      { user: 'carol', password: 'carol-pw\rmallory' },
      { user: 'mallory', password: 'mallory-pw' },
    ],
  },
  { text: 'bel:{PLAIN}bel\x07pw', bad: [{ user: 'bel', password: 'bel\x07pw' }] },
  { text: '../escape:{PLAIN}esc-pw', bad: [{ user: '../escape', password: 'esc-pw' }] },
  { text: '/etc/passwd:{PLAIN}etc-pw', bad: [{ user: '/etc/passwd', password: 'etc-pw' }] },
  { text: 'a/b:{PLAIN}ab-pw', bad: [{ user: 'a/b', password: 'ab-pw' }] },
  { text: '..:{PLAIN}dots-pw', bad: [{ user: '..', password: 'dots-pw' }] },
  { text: '.hidden:{PLAIN}hidden-pw', bad: [{ user: '.hidden', password: 'hidden-pw' }] },
  { text: '$(touch pwned):{PLAIN}sh-pw', bad: [{ user: '$(touch pwned)', password: 'sh-pw' }] },
  { text: '`touch pwned2`:{PLAIN}sh-pw', bad: [{ user: '`touch pwned2`', password: 'sh-pw' }] },
  { text: 'tab\tname:{PLAIN}tab-pw', bad: [{ user: 'tab\tname', password: 'tab-pw' }] },
  { text: ' space:{PLAIN}space-pw', bad: [{ user: 'space', password: 'space-pw' }] },
  // A UTF-8 name (issue 15) is good in its normalised (composed) spelling; another spelling of it is
  // a bad line, and its password opens nothing, not even under the composed name.
  { text: 'caf\u00e9:{PLAIN}cafe-pw', good: { user: 'caf\u00e9', password: 'cafe-pw' } },
  {
    text: 'cafe\u0301:{PLAIN}cafe2-pw',
    bad: [
      { user: 'cafe\u0301', password: 'cafe2-pw' },
      { user: 'caf\u00e9', password: 'cafe2-pw' },
    ],
  },
  { text: '\u0430lice:{PLAIN}cyr-pw', bad: [{ user: '\u0430lice', password: 'cyr-pw' }] },
  { text: ':{PLAIN}empty-name-pw', bad: [] },
  { text: 'noscheme:plain-pw', bad: [{ user: 'noscheme', password: 'plain-pw' }] },
  { text: 'unknown:{ROT13}cyna-cj', bad: [{ user: 'unknown', password: 'cyna-cj' }] },
  { text: 'nocolon', bad: [] },
  // Shell metacharacters in the password and in the fields Poplar ignores: a good line, taken
  // literally and never run.
  {
    text: 'shell:{PLAIN}pw;touch pwned3|x&y:$(touch pwned4):`touch pwned5`::/home/$(id):/bin/sh -c "touch pwned6"',
    good: { user: 'shell', password: 'pw;touch pwned3|x&y' },
  },
  // A file written on Windows: CRLF line ends are fine.
  { text: 'bob:{PLAIN}bob pw 2\r', good: { user: 'bob', password: 'bob pw 2' } },
];

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** Logs in with AUTH PLAIN (any byte goes through base64); resolves to the reply. */
async function plainLogin(port: number, user: string, password: string): Promise<string> {
  const client = await Pop3TestClient.connect(port);
  try {
    const reply = await client.command(`AUTH PLAIN ${b64(`\0${user}\0${password}`)}`);
    if (reply.startsWith('+OK')) await client.command('QUIT');
    return reply;
  } finally {
    client.close();
  }
}

/** Logs in with AUTH LOGIN, whose continuations carry any byte, NUL included; resolves to the reply. */
async function loginLogin(port: number, user: string, password: string): Promise<string> {
  const client = await Pop3TestClient.connect(port);
  try {
    assert.equal(await client.command('AUTH LOGIN'), '+ VXNlcm5hbWU6');
    assert.equal(await client.command(b64(user)), '+ UGFzc3dvcmQ6');
    const reply = await client.command(b64(password));
    if (reply.startsWith('+OK')) await client.command('QUIT');
    return reply;
  } finally {
    client.close();
  }
}

/** USER/PASS where the name and password fit in a command line; otherwise undefined. */
async function userPassLogin(port: number, user: string, password: string): Promise<string | undefined> {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(user + password) || user.length > 255) return undefined;
  const client = await Pop3TestClient.connect(port);
  try {
    await client.command(`USER ${user}`);
    const reply = await client.command(`PASS ${password}`);
    if (reply.startsWith('+OK')) await client.command('QUIT');
    return reply;
  } finally {
    client.close();
  }
}

test('a users file with hostile lines: bad lines are reported by number and open nothing, good users log in', async (t) => {
  const s = await startSecurityDaemon(t, {
    users: `${LINES.map((l) => l.text).join('\n')}\n`,
    startTimeoutMs: 30_000,
  });
  const cwdBefore = await readdir(s.cwd);

  const badNumbers = LINES.flatMap((l, i) => (l.bad === undefined ? [] : [i + 1]));
  const skipped = s.d.logs.filter((e) => e.msg === 'users file line skipped');
  assert.deepEqual(
    skipped.map((e) => e['line']),
    badNumbers,
    'every bad line, and only those, is reported by its number',
  );
  for (const e of skipped) {
    assert.deepEqual(Object.keys(e).sort(), [
      'file',
      'hostname',
      'level',
      'line',
      'msg',
      'name',
      'pid',
      'problem',
      'raw',
      'time',
    ]);
    assert.ok(e.raw.length < 300, `a short entry that does not copy the line: ${e.raw.slice(0, 300)}`);
  }
  const goods = LINES.flatMap((l) => (l.good === undefined ? [] : [l.good]));
  const loaded = s.d.logs.find((e) => e.msg === 'users loaded');
  assert.equal(loaded?.['users'], goods.length);

  for (const { user, password } of goods) {
    assert.match(await plainLogin(s.pop3Port, user, password), /^\+OK /, `${user} logs in with AUTH PLAIN`);
    assert.match(await loginLogin(s.pop3Port, user, password), /^\+OK /, `${user} with AUTH LOGIN`);
    assert.match((await userPassLogin(s.pop3Port, user, password)) ?? '', /^\+OK /, `${user} with USER/PASS`);
  }
  for (const line of LINES) {
    for (const { user, password } of line.bad ?? []) {
      const what = `${JSON.stringify(user)} / ${JSON.stringify(password)}`;
      assert.match(await plainLogin(s.pop3Port, user, password), /^-ERR/, `AUTH PLAIN ${what}`);
      assert.match(await loginLogin(s.pop3Port, user, password), /^-ERR/, `AUTH LOGIN ${what}`);
      const reply = await userPassLogin(s.pop3Port, user, password);
      if (reply !== undefined) assert.match(reply, /^-ERR/, `USER/PASS ${what}`);
    }
  }
  // Nothing the metacharacters spell was run: no new file next to the users file or anywhere below.
  assert.deepEqual(await readdir(s.cwd), cwdBefore);
  for (const path of (await snapshot(s.cwd)).keys()) assert.ok(!path.includes('pwned'), path);
  assert.ok(!s.d.logs.some((e) => e.level >= 50));
});

test('a password set through the monitor over a bad line replaces that line, and the user logs in', async (t) => {
  const s = await startSecurityDaemon(t, {
    users:
      'alice:{PLAIN}alice-pw-1\ncarl:{PLAIN}old-pw:1000:\0:/home/carl\ndora:{PLAIN}dora-pw:1001:1001::/home/dora\n',
  });
  assert.deepEqual(
    s.d.logs.filter((e) => e.msg === 'users file line skipped').map((e) => e['line']),
    [2],
  );
  assert.match(await plainLogin(s.pop3Port, 'carl', 'old-pw'), /^-ERR/);
  assert.equal((await monitorRequest(s.monitorPort, 'config', 0x04, 'carl\0new-pw-2')).status, 'ok');
  assert.equal((await monitorRequest(s.monitorPort, 'config', 0x04, 'dora\0new-pw-3')).status, 'ok');
  assert.match(
    await plainLogin(s.pop3Port, 'carl', 'new-pw-2'),
    /^\+OK /,
    'the change the monitor reported is in force',
  );
  assert.match(await plainLogin(s.pop3Port, 'dora', 'new-pw-3'), /^\+OK /);
  const lines = (await readFile(s.usersFile, 'utf8')).split('\n');
  assert.match(lines[1] ?? '', /^carl:\{PBKDF2\}[^:\0]+$/, 'the damaged line was replaced whole');
  assert.match(
    lines[2] ?? '',
    /^dora:\{PBKDF2\}[^:]+:1001:1001::\/home\/dora$/,
    'a good line keeps its other fields',
  );
});
