// App passwords end to end, on the real daemon with two workers: poplarctl makes one, curl
// (SASL LOGIN by its own choice, SASL PLAIN with --sasl-ir), poplib (USER/PASS) and fetchmail
// (USER/PASS) log in with it, the list shows its last use and address, a revoke refuses it at once
// (the authentication cache does not keep it), deleting the user removes it, and the secret is
// never in a log line or in a file of the mail root in clear.
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { monitorPort, runCtl, type CtlResult } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';
import { clientEnv, describeRun, runClient, type ClientResult } from '../interop/run-client.js';

const TOKEN = 'Adm1n-token-0015';
const MAIN_PASSWORD = 'main-Secret-15';
const MESSAGE = 'Subject: hi\r\n\r\nHello.\r\n';
const SECRET_LINE = /^([a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4})$/m;

interface Setup {
  readonly cwd: string;
  readonly daemon: RunningDaemon;
  readonly port: number;
  ctl(args: readonly string[], input?: string): Promise<CtlResult>;
}

async function setUp(t: TestContext): Promise<Setup> {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), `alice:${await hashPassword(MAIN_PASSWORD, 'SSHA256')}\n`);
  await writeFile(join(cwd, 'admins'), `ops:${await hashPassword(TOKEN, 'SSHA256')}\n`, { mode: 0o600 });
  await writeFile(join(cwd, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\nmaxAuthFailures = 10\n');
  await buildMaildir(join(cwd, 'mail'), 'alice', [{ content: MESSAGE }]);
  const daemon = await startDaemon(t, {
    cwd,
    args: [
      ...['--config', 'poplar.toml', '--users', 'users', '--admins', 'admins'],
      ...['--listen', '127.0.0.1', '-p', '0', '-m', 'mail', '--workers', '2'],
    ],
  });
  const mport = monitorPort(daemon.started);
  return {
    cwd,
    daemon,
    port: daemon.port,
    ctl: (args, input) =>
      runCtl(t, ['--port', String(mport), ...args], {
        env: { POPLAR_TOKEN: TOKEN },
        ...(input === undefined ? {} : { input }),
      }),
  };
}

function curl(curlPath: string, home: string, port: number, password: string, extra: string[]) {
  return runClient(
    curlPath,
    ['-sS', '-v', ...extra, '-u', `alice:${password}`, `pop3://127.0.0.1:${port}/1`],
    { env: clientEnv(home) },
  );
}

const POPLIB = `
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=20)
p.user('alice')
try:
    print(p.pass_(sys.argv[2]).decode())
    print(p.stat())
except poplib.error_proto as e:
    print('refused', e)
p.quit()
`;

async function fetchmail(
  fetchmailPath: string,
  work: string,
  port: number,
  password: string,
): Promise<ClientResult> {
  const rcfile = join(work, 'fetchmailrc');
  await writeFile(
    rcfile,
    [
      'poll 127.0.0.1 auth password',
      `  user "alice" there with password "${password}"`,
      "  sslproto ''",
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  await chmod(rcfile, 0o600);
  const out = join(work, 'fetched');
  await mkdir(out, { recursive: true });
  const mda = join(work, 'mda.sh');
  await writeFile(mda, 'cat > "$1/$(date +%s%N)"\n');
  return runClient(
    fetchmailPath,
    [
      ...['-f', rcfile, '--nodetach', '--nosyslog', '--verbose', '--pidfile', join(work, 'fetchmail.pid')],
      ...['--idfile', join(work, 'fetchids'), '-p', 'POP3', '--service', String(port), '--all', '--keep'],
      ...['--mda', `/bin/sh ${mda} ${out}`, '127.0.0.1'],
    ],
    { env: clientEnv(join(work, 'home')) },
  );
}

/** Every file under `dir`, as bytes. */
async function filesUnder(dir: string): Promise<{ path: string; bytes: Buffer }[]> {
  const found: { path: string; bytes: Buffer }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    found.push({ path, bytes: await readFile(path) });
  }
  return found;
}

test(
  'an app password: added by poplarctl, used by curl, poplib and fetchmail, listed with its last use, revoked, gone with its user',
  { timeout: 120_000 },
  async (t) => {
    const curlPath = await requireBinary(t, 'curl');
    const python = await requireBinary(t, 'python3');
    const fetchmailPath = await requireBinary(t, 'fetchmail');
    if (curlPath === undefined || python === undefined || fetchmailPath === undefined) return;
    const setup = await setUp(t);
    const { cwd, daemon, port } = setup;
    const ctl = (args: readonly string[], input?: string) => setup.ctl(args, input);
    const home = join(cwd, 'home');
    await mkdir(home, { mode: 0o700 });

    const added = await ctl(['app-password', 'add', 'alice', 'phone']);
    assert.equal(added.code, 0, added.stderr);
    const secret = SECRET_LINE.exec(added.stdout)?.[1];
    assert.ok(secret !== undefined, added.stdout);
    assert.match(added.stdout, /^app password phone of alice \(shown only now/);
    const never = await ctl(['app-password', 'list', 'alice']);
    assert.match(never.stdout, /^phone +\S+Z +never$/m, never.stdout);

    // curl's own choice (SASL LOGIN or PLAIN), then PLAIN with the initial response.
    for (const extra of [[], ['--sasl-ir', '--login-options', 'AUTH=PLAIN']]) {
      const run = await curl(curlPath, home, port, secret, extra);
      assert.equal(run.code, 0, describeRun('curl', run));
      assert.equal(run.stdout.toString(), MESSAGE.replace(/\r\n/g, '\r\n'));
    }
    const plain = await curl(curlPath, home, port, secret, ['--sasl-ir', '--login-options', 'AUTH=PLAIN']);
    assert.match(plain.stderr, /> AUTH PLAIN [A-Za-z0-9+/=]+/);
    // The main password still works (no appPasswordsOnly).
    assert.equal((await curl(curlPath, home, port, MAIN_PASSWORD, [])).code, 0);

    await writeFile(join(cwd, 'poplib_login.py'), POPLIB);
    // Without dashes, in capitals: the same secret.
    const py = await runClient(
      python,
      [join(cwd, 'poplib_login.py'), String(port), secret.replace(/-/g, '').toUpperCase()],
      {
        env: clientEnv(home),
      },
    );
    assert.equal(py.code, 0, describeRun('poplib', py));
    assert.match(py.stdout.toString(), /^\+OK alice has 1 message/m);

    const fetched = await fetchmail(fetchmailPath, cwd, port, secret);
    assert.equal(fetched.code, 0, describeRun('fetchmail', fetched));
    assert.match(fetched.stdout.toString() + fetched.stderr, /POP3> PASS \*/);

    const listed = await ctl(['app-password', 'list', 'alice']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^LABEL +CREATED +LAST USE$/m);
    assert.match(listed.stdout, /^phone +\S+Z +\d{4}-\d\d-\d\dT\S+Z from 127\.0\.0\.1$/m, listed.stdout);
    const json = await ctl(['--json', 'app-password', 'list', 'alice']);
    const doc = JSON.parse(json.stdout) as {
      appPasswords: { label: string; lastUsed: { address: string } }[];
    };
    assert.equal(doc.appPasswords[0]?.lastUsed.address, '127.0.0.1');
    const logins = daemon.logs.filter((e) => e.msg === 'login' && e['appPassword'] === 'phone');
    assert.ok(logins.length >= 4, 'each app-password login names its label');

    const revoked = await ctl(['app-password', 'revoke', 'alice', 'phone']);
    assert.equal(revoked.stdout, 'app password phone of alice revoked\n');
    // Refused at once, by both workers, for every mechanism (the cache held no app-password login).
    for (const extra of [[], [], ['--sasl-ir', '--login-options', 'AUTH=PLAIN']]) {
      const run = await curl(curlPath, home, port, secret, extra);
      assert.equal(run.code, 67, describeRun('curl after revoke', run));
    }
    const again = await ctl(['app-password', 'revoke', 'alice', 'phone']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /alice has no app password labelled phone/);

    // Deleting the user revokes their app passwords: the same name, made again, inherits none.
    const second = SECRET_LINE.exec((await ctl(['app-password', 'add', 'alice', 'laptop'])).stdout)?.[1];
    assert.ok(second !== undefined);
    assert.equal((await ctl(['users', 'del', 'alice'])).code, 0);
    assert.equal((await ctl(['users', 'add', 'alice'], `${MAIN_PASSWORD}\n`)).code, 0);
    assert.equal((await curl(curlPath, home, port, second, [])).code, 67);
    assert.match((await ctl(['app-password', 'list', 'alice'])).stdout, /^alice has no app passwords$/m);
    assert.equal((await ctl(['app-password', 'list', 'nobody'])).code, 1);

    // Never in clear: not in a log line, not in a file of the mail root (with or without dashes).
    const output = daemon.stdout() + daemon.stderr();
    for (const s of [secret, second]) {
      for (const form of [s, s.replace(/-/g, '')]) {
        assert.ok(!output.includes(form), 'a secret in the log');
        for (const file of await filesUnder(join(cwd, 'mail')))
          assert.ok(!file.bytes.includes(form), `a secret in ${file.path}`);
      }
    }
  },
);

test(
  'poplar_app_passwords_only=yes in the users file: the right main password is refused as a wrong one; an app password logs in',
  { timeout: 120_000 },
  async (t) => {
    const python = await requireBinary(t, 'python3');
    if (python === undefined) return;
    const cwd = await tempDir(t);
    const hash = await hashPassword(MAIN_PASSWORD, 'SSHA256');
    await writeFile(join(cwd, 'users'), `carol:${hash}:::::: poplar_app_passwords_only=yes\n`);
    await writeFile(join(cwd, 'admins'), `ops:${await hashPassword(TOKEN, 'SSHA256')}\n`, { mode: 0o600 });
    await writeFile(join(cwd, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\nmaxAuthFailures = 10\n');
    await buildMaildir(join(cwd, 'mail'), 'carol', [{ content: MESSAGE }]);
    const daemon = await startDaemon(t, {
      cwd,
      args: [
        ...['--config', 'poplar.toml', '--users', 'users', '--admins', 'admins'],
        ...['--listen', '127.0.0.1', '-p', '0', '-m', 'mail', '--workers', '1'],
      ],
    });
    const ctl = (args: readonly string[]) =>
      runCtl(t, ['--port', String(monitorPort(daemon.started)), ...args], { env: { POPLAR_TOKEN: TOKEN } });
    const script = join(cwd, 'poplib_login.py');
    await writeFile(script, POPLIB.replace("p.user('alice')", "p.user('carol')"));
    const login = async (password: string): Promise<string> => {
      const run = await runClient(python, [script, String(daemon.port), password], { env: clientEnv(cwd) });
      assert.equal(run.code, 0, describeRun('poplib', run));
      return run.stdout.toString();
    };
    const right = await login(MAIN_PASSWORD);
    const wrong = await login('not-the-password');
    assert.equal(right, "refused b'-ERR [AUTH] invalid user name or password'\n");
    assert.equal(right, wrong, 'no hint that the main password was right');
    assert.ok(daemon.logs.some((e) => e.msg === 'main password refused: app passwords only'));
    const secret = SECRET_LINE.exec((await ctl(['app-password', 'add', 'carol', 'phone'])).stdout)?.[1];
    assert.ok(secret !== undefined);
    assert.match(await login(secret), /^\+OK carol has 1 message/m);
  },
);
