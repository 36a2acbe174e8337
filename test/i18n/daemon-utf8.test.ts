// The real daemon with a UTF-8 user in its users file, and real clients: Python's poplib (CAPA,
// UTF8, USER/PASS in UTF-8, decomposed) and curl (a UTF-8 user in the URL, SASL PLAIN).
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runPoplar, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';
import { clientEnv, describeRun, runClient } from '../interop/run-client.js';

const NAME = 'zoë'; // composed, as the users file holds it
const NAME_NFD = 'zoe\u0308';
const PASSWORD = 'contraseña ñandú';
const PASSWORD_NFD = 'contrasen\u0303a n\u0303andu\u0301';
const MESSAGE = 'From: a@example.org\r\nSubject: =?UTF-8?Q?=C3=B1?=\r\n\r\nhola\r\n';

interface Started {
  readonly d: RunningDaemon;
  readonly cwd: string;
  readonly mail: string;
}

/**
 * A daemon whose users file holds `zoë`, written by `poplar hash-password` from the decomposed name
 * and password (it prints the composed name, and hashes the prepared password), and a maildir for
 * `zoë` with one message; a second user `用户` has no maildir yet.
 */
async function start(t: TestContext): Promise<Started> {
  const cwd = await tempDir(t);
  const mail = join(cwd, 'mail');
  const line = await runPoplar(t, ['hash-password', '--user', NAME_NFD], { input: `${PASSWORD_NFD}\n` });
  assert.equal(line.code, 0, line.stderr);
  assert.ok(line.stdout.startsWith(`${NAME}:{PBKDF2}`), line.stdout);
  const other = await runPoplar(t, ['hash-password', '--user', '用户'], { input: 'pw 密码\n' });
  await writeFile(join(cwd, 'users'), `${line.stdout}${other.stdout}`);
  await buildMaildir(mail, NAME, [{ content: MESSAGE }]);
  const d = await startDaemon(t, {
    args: ['--users', 'users', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail', '--log-level', 'debug'],
    cwd,
  });
  return { d, cwd, mail };
}

const POPLIB = String.raw`
import json, poplib, sys
host, port, name, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
pop = poplib.POP3(host, port, timeout=20)
out['capa'] = pop.capa()
out['utf8'] = pop.utf8().decode('utf-8')
pop._putcmd('USER ' + name)          # poplib writes commands in UTF-8 (POP3.encoding)
out['user'] = pop._getresp().decode('utf-8')
out['pass'] = pop.pass_(password).decode('utf-8')
out['stat'] = pop.stat()
resp, lines, octets = pop.retr(1)
out['retr'] = [b'\r\n'.join(lines).decode('utf-8'), octets]
out['quit'] = pop.quit().decode('utf-8')
print(json.dumps(out))
`;

test('poplib: CAPA shows UTF8 USER; UTF8, then a decomposed UTF-8 name and password log in', async (t) => {
  const python = await requireBinary(t, 'python3');
  if (python === undefined) return;
  const { d, cwd } = await start(t);
  const result = await runClient(
    python,
    ['-c', POPLIB, '127.0.0.1', String(d.port), NAME_NFD, PASSWORD_NFD],
    {
      env: clientEnv(cwd),
    },
  );
  assert.equal(result.code, 0, describeRun('python3', result));
  const out = JSON.parse(result.stdout.toString('utf8')) as Record<string, unknown>;
  assert.deepEqual((out['capa'] as Record<string, string[]>)['UTF8'], ['USER']);
  assert.equal(out['utf8'], '+OK UTF-8 mode, user names and passwords may be UTF-8');
  assert.equal(out['user'], '+OK send PASS');
  assert.equal(out['pass'], `+OK ${NAME} has 1 message (${MESSAGE.length} octets)`);
  assert.deepEqual(out['stat'], [1, MESSAGE.length]);
  assert.deepEqual(out['retr'], [MESSAGE.slice(0, -2), MESSAGE.length]);
  const login = await d.waitForLog((e) => e.msg === 'login');
  assert.equal(login['user'], NAME);
});

test('curl: a UTF-8 user and password in the URL (SASL PLAIN), and the Maildir folder made for a new one', async (t) => {
  const curl = await requireBinary(t, 'curl');
  if (curl === undefined) return;
  const { d, cwd, mail } = await start(t);
  const run = (user: string, password: string, path: string) =>
    runClient(
      curl,
      [
        '-q',
        '--silent',
        '--show-error',
        '--verbose',
        '--max-time',
        '20',
        '--noproxy',
        '*',
        `pop3://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${d.port}/${path}`,
      ],
      { env: clientEnv(cwd) },
    );
  const retr = await run(NAME, PASSWORD, '1');
  assert.equal(retr.code, 0, describeRun('curl', retr));
  assert.equal(retr.stdout.toString('utf8'), MESSAGE);
  assert.match(retr.stderr, /^> AUTH PLAIN/m);
  // Decomposed in the URL: the same user.
  const nfd = await run(NAME_NFD, PASSWORD_NFD, '');
  assert.equal(nfd.code, 0, describeRun('curl', nfd));
  assert.equal(nfd.stdout.toString('latin1'), `1 ${MESSAGE.length}\r\n`);
  // A wrong password: curl fails, the daemon answered [AUTH].
  const wrong = await run(NAME, 'contraseña', '');
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /^< -ERR \[AUTH\] invalid user name or password/m);
  // A user without a maildir: the first login makes one, named in UTF-8.
  assert.ok(!existsSync(join(mail, '用户')));
  const first = await run('用户', 'pw 密码', '');
  assert.equal(first.code, 0, describeRun('curl', first));
  for (const sub of ['cur', 'new', 'tmp']) assert.ok(existsSync(join(mail, '用户', sub)), sub);
  assert.deepEqual(
    readdirSync(mail)
      .filter((n) => !n.startsWith('.'))
      .sort(),
    ['用户', NAME].sort(),
  );
});
