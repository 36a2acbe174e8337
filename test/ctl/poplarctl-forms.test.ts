// poplarctl against a real daemon: every argument form of the C project's client (HOST and PORT
// after the token), one action per call, users list / admins list, kick of a user with no session.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { startDaemon } from '../helpers/daemon.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { monitorPort, runCtl, type CtlResult } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';

const TOKEN = '123456789abcdef1';
const LIMIT = { timeout: 120_000 };

function assertRun(
  run: CtlResult,
  code: number,
  stdout: string | RegExp,
  stderr: string | RegExp = '',
): void {
  if (typeof stdout === 'string') assert.equal(run.stdout, stdout);
  else assert.match(run.stdout, stdout);
  if (typeof stderr === 'string') assert.equal(run.stderr, stderr);
  else assert.match(run.stderr, stderr);
  assert.equal(run.code, code, run.stderr);
}

test('the argument forms of the C client, one action per call, --version', LIMIT, async (t) => {
  const cwd = await tempDir(t);
  const d = await startDaemon(t, { args: ['-m', 'mail', '-p', '0'], cwd });
  const port = String(monitorPort(d.started));
  const ctl = (args: readonly string[]): Promise<CtlResult> => runCtl(t, args);

  await t.test('OPTION TOKEN HOST PORT: the port is the third word after the option', async () => {
    // Without the third word poplarctl would try the default port 1081.
    const [third, host, bytes, user] = await Promise.all([
      ctl(['-C', TOKEN, '127.0.0.1', port]),
      ctl(['-c', TOKEN, 'localhost', port]),
      ctl(['-b', TOKEN, '127.0.0.1', port]),
      ctl(['-ucarol:carol-pw', TOKEN, '127.0.0.1', port]),
    ]);
    assertRun(third, 0, 'historic connections: 0\n');
    assertRun(host, 0, 'concurrent connections: 0\n');
    assertRun(bytes, 0, /^transferred bytes: \d+\n$/);
    assertRun(user, 0, 'user carol saved\n');
    // The words after the token win over --host/--port, as the last word given.
    assertRun(await ctl(['--port', '1', '-C', TOKEN, '127.0.0.1', port]), 0, 'historic connections: 0\n');
  });

  await t.test('two actions in one call: refused with one line, nothing sent', async () => {
    const since = d.logs.length;
    const twice: [readonly string[], string][] = [
      [['-c', '-C', TOKEN, '127.0.0.1', port], '-c and -C'],
      [['-c', TOKEN, '-C', TOKEN], '-c and -C'],
      [['-cC', TOKEN], '-c and -C'],
      [['-C', TOKEN, '-C', TOKEN], '-C and -C'],
      [['-u', 'a:b', '-d', 'a', TOKEN], '-u and -d'],
      [['-C', 'stats'], '-C and stats'],
      [['stats', 'sessions'], 'stats and sessions'],
    ];
    const runs = await Promise.all(twice.map(([args]) => ctl(['--port', port, ...args])));
    twice.forEach(([args, which], i) => {
      const run = runs[i];
      assert.ok(run);
      assertRun(
        run,
        2,
        '',
        `poplarctl: one action per call: ${which} were given\nRun 'poplarctl -h' for help.\n`,
      );
      assert.ok(args.length > 0);
    });
    assert.deepEqual(
      d.logs.slice(since).filter((e) => e['component'] === 'monitor'),
      [],
      'no request reached the monitor',
    );
  });

  await t.test('--version and -v print the version; -h shows the HOST PORT form', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-v']) assertRun(await ctl([flag]), 0, `poplarctl ${pkg.version}\n`);
    assertRun(await ctl(['-h']), 0, /^Usage: poplarctl OPTION TOKEN \[HOST \[PORT\]\]/);
  });
  assert.equal(await d.stop(), 0);
});

test(
  'users list and admins list print names only; kick of a user with no session exits 68',
  LIMIT,
  async (t) => {
    const cwd = await tempDir(t);
    const d = await startDaemon(t, { args: ['-m', 'mail', '-p', '0'], cwd });
    const port = String(monitorPort(d.started));
    const env = { POPLAR_TOKEN: TOKEN };
    const ctl = (args: readonly string[], input?: string): Promise<CtlResult> =>
      runCtl(t, ['--port', port, ...args], input === undefined ? { env } : { env, input });

    assertRun(await ctl(['users', 'list']), 0, 'foo\n');
    assertRun(await ctl(['users', 'add', 'zoe'], 'zoe secret 1\n'), 0, 'user zoe saved\n');
    assertRun(await ctl(['users', 'add', 'alice'], 'alice secret 2\n'), 0, 'user alice saved\n');
    assertRun(await ctl(['admins', 'add', 'ops'], 'opsToken-0000001\n'), 0, 'admin ops added\n');
    const [users, usersJson, admins] = await Promise.all([
      ctl(['users', 'list']),
      ctl(['--json', 'users', 'list']),
      ctl(['admins', 'list']),
    ]);
    assertRun(users, 0, 'alice\nfoo\nzoe\n');
    assertRun(usersJson, 0, '["alice","foo","zoe"]\n');
    assertRun(admins, 0, 'ops\nroot\n');
    for (const run of [users, usersJson, admins]) {
      for (const secret of ['secret', 'opsToken', 'PBKDF2', 'SSHA256', '{'])
        assert.ok(!run.stdout.includes(secret));
    }
    assertRun(
      await ctl(['users', 'list', 'extra']),
      2,
      '',
      "poplarctl: users list takes no name\nRun 'poplarctl -h' for help.\n",
    );
    // The list is the server's, so a wrong token gets nothing.
    assertRun(
      await runCtl(t, ['--port', port, 'admins', 'list'], { env: { POPLAR_TOKEN: 'wrongToken-00001' } }),
      1,
      '',
      /refused the token/,
    );

    assertRun(await ctl(['kick', 'alice']), 68, '', 'poplarctl: no sessions of alice\n');
    assertRun(
      await ctl(['--json', 'kick', 'alice']),
      68,
      '{"ok":false,"error":"no sessions of alice"}\n',
      /no sessions/,
    );
    const client = await Pop3TestClient.connect(d.port);
    t.after(() => {
      client.close();
    });
    await client.login('alice', 'alice secret 2');
    assertRun(await ctl(['kick', 'alice']), 0, 'ended 1 session of alice\n');
    assert.equal(await client.readLine(), '-ERR [SYS/TEMP] session ended by the administrator');
    assert.equal(await client.closed(), '');
    assert.equal(await d.stop(), 0);
  },
);

test('users list with worker processes reads the primary’s users file', LIMIT, async (t) => {
  const cwd = await tempDir(t);
  const d = await startDaemon(t, { args: ['-m', 'mail', '-p', '0', '--workers', '2'], cwd });
  const port = String(monitorPort(d.started));
  const env = { POPLAR_TOKEN: TOKEN };
  assertRun(
    await runCtl(t, ['--port', port, 'users', 'add', 'bea'], { env, input: 'bea pw\n' }),
    0,
    'user bea saved\n',
  );
  assertRun(await runCtl(t, ['--port', port, 'users', 'list'], { env }), 0, 'bea\nfoo\n');
  assert.equal(await d.stop(), 0);
});

// The public token never works with a users file: an admin of its own.
const OPS_TOKEN = 'opsToken-0000001';

test('users list follows the pages of a list longer than one reply', LIMIT, async (t) => {
  const cwd = await tempDir(t);
  // 1500 names of 60 characters: about 94 KB of JSON, so at least two GET 0x21 pages.
  const names = Array.from({ length: 1500 }, (_, i) => `u${String(i).padStart(4, '0')}${'x'.repeat(55)}`);
  await writeFile(join(cwd, 'users'), names.map((n) => `${n}:{PLAIN}pw\n`).join(''));
  await writeFile(join(cwd, 'admins'), `ops:${await hashPassword(OPS_TOKEN, 'SSHA256')}\n`, { mode: 0o600 });
  const d = await startDaemon(t, {
    cwd,
    args: ['--users', 'users', '--admins', 'admins', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'],
  });
  const run = await runCtl(t, ['--port', String(monitorPort(d.started)), 'users', 'list'], {
    env: { POPLAR_TOKEN: OPS_TOKEN },
  });
  assert.deepEqual([run.code, run.stderr], [0, '']);
  const listed = run.stdout.split('\n');
  assert.equal(listed.pop(), '');
  assert.equal(listed.length, names.length, 'every name, none twice');
  assert.ok(listed.every((name, i) => name === names[i]));
  assert.equal(await d.stop(), 0);
});
