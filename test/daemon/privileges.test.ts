// --user and --group: started as root, the daemon binds its ports and then every process (the
// primary, each worker, a worker that replaces a killed one; every thread of each) runs as the
// account, read from /proc/PID/task/*/status; logins and RETR work on a maildir the account owns;
// the files Poplar creates belong to it. A start that cannot switch is refused with one line.
// These tests need root: without it they are skipped, except in CI (CI=true), where they fail.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, chown, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDaemon, runToEnd, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { poplarCommand } from '../helpers/node-script.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { onCI } from '../interop/require-binary.js';

const LIMIT = { timeout: 120_000 };
/** Debian's and most systems' unprivileged account. */
const NOBODY = { user: 'nobody', uid: 65534, gid: 65534 };
const MESSAGE = 'Subject: hi\r\n\r\nHello, unprivileged.\r\n';

/** Skips the test unless it runs as root; in CI, where it must run, fails it instead. */
function requireRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  const reason = 'switching users needs root (CI runs the tests as root)';
  if (onCI()) throw new Error(`${reason}; in CI these tests must run`);
  t.skip(reason);
  return false;
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  for (const entry of await readdir(path, { recursive: true })) await chown(join(path, entry), uid, gid);
}

/** A folder nobody may enter, with a users file it may read and a maildir it owns. */
async function setUp(t: TestContext): Promise<string> {
  const cwd = await tempDir(t);
  await chmod(cwd, 0o755);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw-alice\n', { mode: 0o644 });
  await buildMaildir(join(cwd, 'mail'), 'alice', [{ content: MESSAGE }]);
  await chownTree(join(cwd, 'mail'), NOBODY.uid, NOBODY.gid);
  return cwd;
}

/** uid and gid lines (real, effective, saved, file system) and the groups of every thread of `pid`. */
async function credentials(pid: number): Promise<string[]> {
  const out: string[] = [];
  for (const task of await readdir(`/proc/${String(pid)}/task`)) {
    const status = await readFile(`/proc/${String(pid)}/task/${task}/status`, 'utf8');
    const lines = status.split('\n').filter((l) => /^(Uid|Gid|Groups):/.test(l));
    out.push(...lines.map((l) => l.replace(/\s+/g, ' ').trim()));
  }
  return out;
}

async function assertRunsAsNobody(pid: number): Promise<void> {
  const lines = await credentials(pid);
  assert.ok(lines.length >= 3, `no credentials read for ${String(pid)}`);
  for (const line of lines) {
    assert.match(
      line,
      /^(Uid: 65534 65534 65534 65534|Gid: 65534 65534 65534 65534|Groups: 65534)$/,
      `pid ${String(pid)}`,
    );
  }
}

async function retr(d: RunningDaemon): Promise<{ body: string; pid: number }> {
  const since = d.logs.length;
  const client = await Pop3TestClient.connect(d.port);
  try {
    const port = client.socket.localPort;
    assert.match(await client.login('alice', 'pw-alice'), /^\+OK/);
    const message = await client.multi('RETR 1');
    assert.match(message.status, /^\+OK/);
    assert.match(await client.command('QUIT'), /^\+OK/);
    const opened = await d.waitForLog((e) => e.msg === 'connection opened' && e['port'] === port, { since });
    return { body: message.lines.join('\n'), pid: opened['pid'] as number };
  } finally {
    client.close();
  }
}

const pidsThatLogged = (d: RunningDaemon, msg: string): number[] => [
  ...new Set(d.logs.filter((e) => e.msg === msg).map((e) => e['pid'] as number)),
];

test(
  'with --user nobody the primary and every worker run as nobody; a replaced worker does too and serves',
  LIMIT,
  async (t) => {
    if (!requireRoot(t)) return;
    const cwd = await setUp(t);
    const d = await startDaemon(t, {
      cwd,
      args: [
        '--user',
        'nobody',
        '--workers',
        '2',
        '--users',
        'users',
        '-m',
        'mail',
        '--listen',
        '127.0.0.1',
        '-p',
        '0',
      ],
    });
    assert.equal(d.started['user'], 'nobody');
    assert.equal(d.started['group'], 'nogroup');
    const workers = pidsThatLogged(d, 'listening').filter((pid) => pid !== d.pid);
    assert.equal(workers.length, 2);
    for (const pid of [d.pid, ...workers]) await assertRunsAsNobody(pid);
    assert.deepEqual(pidsThatLogged(d, 'privileges dropped').sort(), [d.pid, ...workers].sort());
    assert.match((await retr(d)).body, /Hello, unprivileged/);
    // The users file's folder is root's: monitor edits could not replace the file, and the log says so.
    assert.ok(
      d.logs.some(
        (e) =>
          e.level === 40 &&
          e.msg === `${cwd} is not writable by user nobody: monitor edits of users will fail`,
      ),
    );

    // Created after the switch: the admins file and its token file belong to nobody.
    for (const file of ['.poplar-admins', '.poplar-admins.token']) {
      const info = await stat(join(cwd, 'mail', file));
      assert.deepEqual([info.uid, info.gid], [NOBODY.uid, NOBODY.gid], file);
    }

    // The primary, no longer root, still hands the bound port to a replacement worker.
    const victim = workers[0] as number;
    const since = d.logs.length;
    process.kill(victim, 'SIGKILL');
    const listening = await d.waitForLog(
      (e) => e.msg === 'listening' && e['pid'] !== victim && e['pid'] !== d.pid,
      {
        since,
      },
    );
    const replacement = listening['pid'] as number;
    await assertRunsAsNobody(replacement);
    for (let tries = 0, pid = 0; pid !== replacement; tries++) {
      assert.ok(tries < 10, `no session reached the replacement worker ${String(replacement)}`);
      const served = await retr(d);
      assert.match(served.body, /Hello, unprivileged/);
      pid = served.pid;
    }
    assert.equal(await d.stop(), 0);
  },
);

test('in one process with --user, demo files are made for nobody, who then serves them', LIMIT, async (t) => {
  if (!requireRoot(t)) return;
  const cwd = await tempDir(t);
  await chmod(cwd, 0o755);
  await chown(cwd, NOBODY.uid, NOBODY.gid); // the mail root is made inside it
  const d = await startDaemon(t, { cwd, args: ['--user', 'nobody', '-m', 'mail', '-p', '0'] });
  await assertRunsAsNobody(d.pid);
  for (const path of ['mail', 'mail/.poplar-users', 'mail/foo', 'mail/foo/cur', 'mail/.poplar-admins']) {
    const info = await stat(join(cwd, path));
    assert.deepEqual([info.uid, info.gid], [NOBODY.uid, NOBODY.gid], path);
  }
  const client = await Pop3TestClient.connect(d.port);
  assert.match(await client.login('foo', 'bar'), /^\+OK foo has 1 message/);
  assert.match((await client.multi('RETR 1')).status, /^\+OK/);
  assert.match(await client.command('QUIT'), /^\+OK/);
  client.close();
  assert.equal(await d.stop(), 0);
});

test('as root without --user, outside demo mode, the daemon warns that it runs as root', LIMIT, async (t) => {
  if (!requireRoot(t)) return;
  const cwd = await setUp(t);
  const d = await startDaemon(t, {
    cwd,
    args: ['--users', 'users', '-m', 'mail', '--listen', '127.0.0.1', '-p', '0'],
  });
  const warning = await d.waitForLog((e) => e.level === 40 && e.msg.startsWith('running as root'));
  assert.match(warning.msg, /--user/);
  assert.equal(await d.stop(), 0);
});

test('a start that cannot switch is refused with one line and exit 1', LIMIT, async (t) => {
  if (!requireRoot(t)) return;
  const cwd = await setUp(t);
  const base = [
    '--users',
    'users',
    '-m',
    'mail',
    '--listen',
    '127.0.0.1',
    '-p',
    '0',
    '--monitor-port',
    '0',
    '--workers',
    '1',
  ];
  const run = (args: string[], uid?: number) => {
    const { command, args: argv } = poplarCommand([...base, ...args]);
    const env = { ...process.env };
    delete env['NODE_TEST_CONTEXT'];
    return runToEnd(t, spawn(command, argv, { cwd, env, ...(uid === undefined ? {} : { uid, gid: uid }) }));
  };
  const cases: [string[], RegExp, number?][] = [
    [['--user', 'no-such-user-7q'], /^poplar: user "no-such-user-7q" \(--user\) does not exist\n$/],
    [
      ['--user', 'nobody', '--group', 'no-such-group-7q'],
      /^poplar: group "no-such-group-7q" \(--group\) does not exist\n$/,
    ],
    [['--user', 'root'], /^poplar: user "root" \(--user\) is root: name an unprivileged user\n$/],
    [
      ['--user', 'daemon'],
      /^poplar: --user daemon needs root: poplar runs as uid 65534 and cannot switch;/,
      NOBODY.uid,
    ],
  ];
  await writeFile(join(cwd, 'root-users'), 'alice:{PLAIN}pw-alice\n', { mode: 0o600 });
  cases.push([
    ['--user', 'nobody', '--users', 'root-users'],
    new RegExp(`^poplar: users file ${join(cwd, 'root-users')} is not readable by user nobody\n$`),
  ]);
  for (const [args, stderr, uid] of cases) {
    const result = await run(args, uid);
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, stderr);
    assert.doesNotMatch(result.stdout, /poplar started/);
  }
  const groupAlone = await run(['--group', 'nogroup']);
  assert.equal(groupAlone.code, 2);
  assert.match(groupAlone.stderr, /^poplar: --group needs --user: name the account to switch to as well\n$/);
});
