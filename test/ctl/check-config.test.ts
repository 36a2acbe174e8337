// poplar check-config (the daemon's start-up checks, then the effective configuration as TOML)
// and poplar auth-test (a login against the users file, like doveadm auth test).
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'smol-toml';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { runPoplar, type RunResult } from '../helpers/daemon.js';
import { poplarCommand } from '../helpers/node-script.js';
import { runInTerminal } from '../helpers/terminal.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';

const LIMIT = { timeout: 240_000 };

test(
  'check-config prints the effective configuration, which reads back to the same text',
  LIMIT,
  async (t) => {
    const cwd = await tempDir(t);
    await mkdir(join(cwd, 'mail'));
    await writeFile(join(cwd, 'users'), 'alice:{PLAIN}alice-pw\n');
    await writeFile(
      join(cwd, 'poplar.toml'),
      [
        'maildir = "mail"',
        'users = "users"',
        'logLevel = "warn"',
        '[limits]',
        'maxConnections = 50',
        '[oauth]',
        'introspectionUrl = "https://idp.example/introspect"',
        'clientId = "poplar"',
        'clientSecret = "oauth-client-secret-value"',
        '',
      ].join('\n'),
    );
    const first = await runPoplar(
      t,
      ['check-config', '--config', 'poplar.toml', '-p', '2110', '--workers', '1'],
      {
        cwd,
      },
    );
    assert.equal(first.code, 0, first.stderr);
    const out = first.stdout;
    // Flags win over the file, relative paths are absolute, and what differs from a default says so.
    assert.match(out, /^port = 2110 {2}# default: 1100$/m);
    assert.match(out, new RegExp(`^maildir = ${JSON.stringify(join(cwd, 'mail'))} {2}# default: `, 'm'));
    assert.match(out, new RegExp(`^users = ${JSON.stringify(join(cwd, 'users'))}`, 'm'));
    assert.match(out, /^monitorPort = 1081$/m, 'a default has no mark');
    assert.match(out, /^maxConnections = 50 {2}# default: 1000$/m);
    assert.match(out, /^maxCommandBytes = 1024$/m, 'every limit, defaults included');
    assert.match(out, /^listen = \["0\.0\.0\.0", "::"\]$/m, "the mode's default addresses");
    assert.match(out, /^# tlsCert: not set/m);
    // The secret is never printed; the rest of [oauth] is.
    assert.ok(!out.includes('oauth-client-secret-value'));
    assert.match(out, /^# clientSecret: set, not shown/m);
    assert.match(out, /^clientId = "poplar"$/m);
    assert.doesNotMatch(out, /alice-pw/);

    // Without the inline secret (which it never prints), the printout is a config file poplar reads
    // back to the same configuration, and so to the same text.
    const printed = join(cwd, 'printed.toml');
    await writeFile(printed, out);
    const parsed = parse(out);
    assert.equal(parsed['port'], 2110);
    const again = await runPoplar(t, ['check-config', '--config', printed], { cwd: await tempDir(t) });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      again.stdout,
      out.replace(/^# clientSecret: set, not shown.*\n/m, ''),
      'the same text, but for the secret it never printed',
    );
  },
);

test('check-config fails as the daemon would at start, with the same line and status', LIMIT, async (t) => {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'afile'), 'not a folder\n');
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  const cases: (readonly string[])[] = [
    ['-m', 'afile', '--users', 'users', '--listen', '127.0.0.1', '-p', '0', '--no-monitor', '--workers', '1'],
    [
      '--users',
      'missing-users',
      '-m',
      'mail',
      '--listen',
      '127.0.0.1',
      '-p',
      '0',
      '--no-monitor',
      '--workers',
      '1',
    ],
    ['--tls-cert', 'nocert.pem', '--tls-key', 'nokey.pem', '-p', '0', '--no-monitor', '--workers', '1'],
    ['--workers', '0'],
    ['--log-level', 'loud'],
  ];
  for (const args of cases) {
    const [checked, daemon] = await Promise.all([
      runPoplar(t, ['check-config', ...args], { cwd }),
      runPoplar(t, args, { cwd }),
    ]);
    assert.notEqual(checked.code, 0, args.join(' '));
    assert.equal(checked.code, daemon.code, args.join(' '));
    assert.equal(checked.stdout, '', 'nothing printed when the check fails');
    const line = checked.stderr.split('\n').find((l) => l.startsWith('poplar: '));
    assert.ok(line !== undefined, checked.stderr);
    assert.ok(daemon.stderr.includes(line), `${line} in ${daemon.stderr}`);
  }
});

test(
  'check-config warns of an empty {PLAIN} password and of a users file nobody can use',
  LIMIT,
  async (t) => {
    const cwd = await tempDir(t);
    await mkdir(join(cwd, 'mail'));
    await writeFile(join(cwd, 'users'), 'hank:{PLAIN}\n');
    const run = await runPoplar(t, ['check-config', '--users', 'users', '-m', 'mail'], { cwd });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /users file entry with an empty \{PLAIN\} password: hank can never log in/);
    assert.match(run.stderr, /users file has no usable entry: no one can log in/);
  },
);

test('auth-test: the backend, the stored scheme and the result, for several schemes', LIMIT, async (t) => {
  const cwd = await tempDir(t);
  const schemes = ['PLAIN', 'SHA512-CRYPT', 'BLF-CRYPT', 'ARGON2ID', 'SCRAM-SHA-256', 'PBKDF2'];
  const lines = await Promise.all(
    schemes.map(async (s) => `u-${s.toLowerCase()}:${await hashPassword(`pw ${s}`, s)}\n`),
  );
  await writeFile(join(cwd, 'users'), lines.join(''));
  const users = join(cwd, 'users');
  // A generous deadline: each run is a process that loads Poplar and hashes once, on a busy machine.
  const authTest = (words: readonly string[], input?: string) =>
    runPoplar(t, ['auth-test', ...words, '--users', users, '-m', 'mail'], {
      cwd,
      timeoutMs: 100_000,
      ...(input === undefined ? {} : { input }),
    });
  const runs: RunResult[] = [];
  // Two processes at a time (right, then wrong password), not twelve at once.
  for (const s of schemes)
    runs.push(
      ...(await Promise.all([
        authTest([`u-${s.toLowerCase()}`], `pw ${s}\n`),
        authTest([`u-${s.toLowerCase()}`, `wrong ${s}`]),
      ])),
    );
  schemes.forEach((s, i) => {
    const [right, wrong] = [runs[2 * i], runs[2 * i + 1]];
    const user = `u-${s.toLowerCase()}`;
    const head = `backend: passwd-file ${users}\nscheme: {${s}}\n`;
    assert.deepEqual([right?.code, right?.stdout], [0, `${head}passdb: ${user} auth succeeded\n`]);
    assert.deepEqual([wrong?.code, wrong?.stdout], [77, `${head}passdb: ${user} auth failed\n`]);
    for (const run of [right, wrong]) assert.ok(!`${run?.stdout}${run?.stderr}`.includes(`pw ${s}`));
  });
  const unknown = await authTest(['nobody', 'pw']);
  assert.deepEqual(
    [unknown.code, unknown.stdout],
    [77, `backend: passwd-file ${users}\nscheme: none (no such user)\npassdb: nobody auth failed\n`],
  );
  const [missing, usage, help] = await Promise.all([
    runPoplar(t, ['auth-test', 'alice', 'pw', '--users', join(cwd, 'nope')], { cwd }),
    runPoplar(t, ['auth-test'], { cwd }),
    runPoplar(t, ['auth-test', '--help'], { cwd }),
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^poplar auth-test: users file .*nope/m);
  assert.equal(usage.code, 2);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: poplar auth-test USER \[PASSWORD\]/);
});

test('auth-test on a terminal asks once, without echo', LIMIT, async (t) => {
  if ((await requireBinary(t, 'script')) === undefined) return;
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), `alice:${await hashPassword('alice secret', 'SSHA256')}\n`);
  const { command, args } = poplarCommand(['auth-test', 'alice', '--users', join(cwd, 'users')]);
  const term = runInTerminal(t, command, args);
  await term.waitFor('Password: ');
  term.type('alice secret\r');
  assert.equal(await term.exited, 0);
  assert.match(term.output(), /scheme: \{SSHA256\}\r\npassdb: alice auth succeeded\r\n$/);
  assert.doesNotMatch(term.output(), /Retype|alice secret/);
});
