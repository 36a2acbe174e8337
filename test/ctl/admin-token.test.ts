// Outside demo mode (--users) the public token 123456789abcdef1 opens nothing: without --admins
// the admins file is made with a random token, shown once in a 0600 file, and never made again;
// an admins file that still holds the public token (made by an older Poplar) is warned about and
// that token refused. Demo mode's default admin is tested in daemon-monitor.test.ts (the first
// test) and poplarctl.test.ts (every daemon there runs in demo mode with the public token).
import assert from 'node:assert/strict';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { startDaemon, type LogEntry, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { monitorPort, runCtl, type CtlOptions, type CtlResult } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';

const PUBLIC_TOKEN = '123456789abcdef1';
const LIMIT = { timeout: 120_000 };
const REFUSED_TOKEN = /^poplarctl: the server refused the token/;
const GENERATED = (e: LogEntry): boolean => typeof e['tokenFile'] === 'string';
const HOLDS_PUBLIC = (e: LogEntry): boolean => e.msg.includes('holds the public demo token');

/** A users file with alice ({PLAIN}) and her mailbox; the arguments that serve it. */
async function usersSetup(cwd: string): Promise<string[]> {
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}alice-pw-1\n');
  await buildMaildir(join(cwd, 'mail'), 'alice', []);
  return ['--users', 'users', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'];
}

function ctlOf(t: TestContext, d: RunningDaemon) {
  const port = String(monitorPort(d.started));
  return (args: readonly string[], options?: CtlOptions): Promise<CtlResult> =>
    runCtl(t, ['--host', '127.0.0.1', '--port', port, ...args], options);
}

function assertRefused(run: CtlResult): void {
  assert.match(run.stderr, REFUSED_TOKEN);
  assert.equal(run.code, 1);
}

function assertOk(run: CtlResult, stdout: string): void {
  assert.equal(run.stderr, '');
  assert.equal(run.stdout, stdout);
  assert.equal(run.code, 0);
}

test(
  'with --users and no --admins: a random token in a 0600 file, the public token refused, nothing made twice',
  LIMIT,
  async (t) => {
    const cwd = await tempDir(t);
    const args = await usersSetup(cwd);
    const adminsFile = join(cwd, 'mail', '.poplar-admins');
    const tokenFile = join(cwd, 'mail', '.poplar-admins.token');

    const first = await startDaemon(t, { args, cwd });
    const token = (await readFile(tokenFile, 'utf8')).replace(/\n$/, '');
    assert.match(token, /^[A-Za-z0-9]{16}$/);
    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600, 'the token file is 0600');
    assert.equal((await stat(adminsFile)).mode & 0o777, 0o600, 'the admins file is 0600');
    const admins = await readFile(adminsFile, 'utf8');
    assert.match(admins, /^root:\{SSHA256\}[A-Za-z0-9+/]+={0,2}\n$/);
    assert.ok(!admins.includes(token), 'the admins file holds the token hashed');
    const [generated, ...more] = first.logs.filter(GENERATED);
    assert.ok(generated, 'the token file is named in the log');
    assert.equal(more.length, 0);
    assert.equal(generated.level, 40, 'a warning');
    assert.equal(generated['tokenFile'], join('mail', '.poplar-admins.token'));
    assert.match(generated.msg, /poplarctl --token-file mail\/\.poplar-admins\.token/);
    assert.ok(!first.logs.some(HOLDS_PUBLIC));

    const ctl = ctlOf(t, first);
    const users = await readFile(join(cwd, 'users'), 'utf8');
    const [publicStats, publicAdd, publicAdmin] = await Promise.all([
      ctl(['-C', PUBLIC_TOKEN]),
      ctl(['users', 'add', 'alice'], { env: { POPLAR_TOKEN: PUBLIC_TOKEN }, input: 'attacker-pw\n' }),
      ctl(['-U', `evil:Evil-Token-0001`, PUBLIC_TOKEN]),
    ]);
    assertRefused(publicStats);
    assertRefused(publicAdd);
    assertRefused(publicAdmin);
    assert.equal(await readFile(join(cwd, 'users'), 'utf8'), users, 'alice keeps her password');
    assert.equal(await readFile(adminsFile, 'utf8'), admins, 'no admin added');
    assertOk(await ctl(['--token-file', tokenFile, '-C']), 'historic connections: 0\n');
    // Nor can an admin put the public token back.
    const putBack = await ctl(['admins', 'add', 'again'], {
      env: { POPLAR_TOKEN: token },
      input: `${PUBLIC_TOKEN}\n`,
    });
    assert.equal(putBack.code, 1);
    assert.match(putBack.stderr, /status 0x04/);
    assert.equal(await first.stop(), 0);
    for (const output of [first.stdout(), first.stderr()]) {
      assert.ok(!output.includes(token), 'the daemon never logs the generated token');
    }

    // A second start, even without the token file, keeps the admins file and makes no token.
    await rm(tokenFile);
    const second = await startDaemon(t, { args, cwd });
    assert.ok(!second.logs.some(GENERATED), 'no new token');
    assert.equal(await readFile(adminsFile, 'utf8'), admins, 'the same admins');
    await assert.rejects(stat(tokenFile), { code: 'ENOENT' });
    const again = ctlOf(t, second);
    assertOk(await again(['-C', token]), 'historic connections: 0\n');
    assertRefused(await again(['-C', PUBLIC_TOKEN]));
    assert.equal(await second.stop(), 0);
  },
);

test(
  'an admins file that still holds the public token (an older Poplar made it): warned about, the token refused',
  LIMIT,
  async (t) => {
    const cwd = await tempDir(t);
    const args = await usersSetup(cwd);
    const adminsFile = join(cwd, 'mail', '.poplar-admins');
    const old = `root:${await hashPassword(PUBLIC_TOKEN, 'SSHA256')}\n`;
    await writeFile(adminsFile, old, { mode: 0o600 });

    const d = await startDaemon(t, { args, cwd });
    const warning = d.logs.find(HOLDS_PUBLIC);
    assert.ok(warning, 'warned about');
    assert.equal(warning.level, 40);
    assert.equal(warning['admin'], 'root');
    assert.equal(warning['file'], join('mail', '.poplar-admins'));
    assert.match(warning.msg, /delete mail\/\.poplar-admins to have a random token generated/);
    assert.ok(!d.logs.some(GENERATED), 'the file is not replaced behind the operator');
    assertRefused(await ctlOf(t, d)(['-C', PUBLIC_TOKEN]));
    assert.equal(await d.stop(), 0);
    assert.equal(await readFile(adminsFile, 'utf8'), old);

    // --admins FILE: another admin's token works, the public one does not, whoever holds it.
    const opsToken = 'Ops-Token-000001';
    await writeFile(
      join(cwd, 'admins'),
      `ops:${await hashPassword(opsToken, 'SSHA256')}\nbackdoor:${await hashPassword(PUBLIC_TOKEN, 'SSHA256')}\n`,
      { mode: 0o600 },
    );
    const given = await startDaemon(t, { args: [...args, '--admins', 'admins'], cwd });
    const named = given.logs.find(HOLDS_PUBLIC);
    assert.ok(named, 'warned about');
    assert.equal(named['admin'], 'backdoor');
    assert.match(named.msg, /delete backdoor with poplarctl admins del/);
    const ctl = ctlOf(t, given);
    assertRefused(await ctl(['-C', PUBLIC_TOKEN]));
    assertOk(await ctl(['-C', opsToken]), 'historic connections: 0\n');
    assertOk(
      await ctl(['admins', 'del', 'backdoor'], { env: { POPLAR_TOKEN: opsToken } }),
      'admin backdoor deleted\n',
    );
    assert.equal(await given.stop(), 0);
  },
);

test(
  'with --users and no admins file yet, the monitor may leave loopback: its token is random',
  LIMIT,
  async (t) => {
    const cwd = await tempDir(t);
    const args = await usersSetup(cwd);
    const d = await startDaemon(t, { args: [...args, '--monitor-listen', '0.0.0.0'], cwd });
    const token = (await readFile(join(cwd, 'mail', '.poplar-admins.token'), 'utf8')).replace(/\n$/, '');
    const ctl = (tok: string): Promise<CtlResult> =>
      runCtl(t, ['--host', '127.0.0.1', '--port', String(monitorPort(d.started, '0.0.0.0')), '-C', tok]);
    assertOk(await ctl(token), 'historic connections: 0\n');
    assertRefused(await ctl(PUBLIC_TOKEN));
    assert.equal(await d.stop(), 0);
  },
);
