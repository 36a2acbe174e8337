// The `poplar` daemon as a child process: demo mode, flags, the config file, refusals.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, stat, readFile, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { hasIpv6Loopback, runPoplar, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';

const execFileAsync = promisify(execFile);

const sortedAddresses = (d: RunningDaemon): string[] => d.addresses.map((a) => a.address).sort();

/**
 * Logs in as the demo user and returns the STAT reply. QUIT releases the maildrop before its
 * answer, so the next call (another address, at once) is not told [IN-USE].
 */
async function demoStat(port: number, host = '127.0.0.1'): Promise<string> {
  const client = await Pop3TestClient.connect(port, host);
  try {
    await client.login('foo', 'bar');
    const stat = await client.command('STAT');
    await client.command('QUIT');
    return stat;
  } finally {
    client.close();
  }
}

/** The project's package.json, found by walking up from this file (it runs from test/ or build/test/). */
async function projectPackage(): Promise<{ name: string; version: string }> {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(await readFile(new URL('package.json', dir), 'utf8')) as {
        name: string;
        version: string;
      };
      if (pkg.name === '@poplar-mail/poplar') return pkg;
    } catch {
      // Not here: look further up.
    }
  }
  throw new Error('package.json of poplar not found');
}

/** Names in `<root>/foo/{cur,new,tmp}`. */
async function demoMaildir(root: string): Promise<{ cur: string[]; new: string[]; tmp: string[] }> {
  const list = (sub: string): Promise<string[]> => readdir(join(root, 'foo', sub));
  return { cur: await list('cur'), new: await list('new'), tmp: await list('tmp') };
}

test('demo mode in an empty directory: creates directories/foo with a welcome message, warns, loopback only', async (t) => {
  const cwd = await tempDir(t);
  const hasIpv6 = await hasIpv6Loopback();
  const d = await startDaemon(t, { args: ['-p', '0'], cwd });

  assert.equal(d.started['demo'], true);
  assert.equal(d.started['maildir'], join(await realpath(cwd), 'directories'));
  assert.deepEqual(await readdir(cwd), ['directories']);
  // Without --users and --admins, the users and the admins are kept next to the mailboxes.
  assert.deepEqual((await readdir(join(cwd, 'directories'))).sort(), [
    '.poplar-admins',
    '.poplar-secret',
    '.poplar-users',
    'foo',
  ]);
  for (const file of ['.poplar-admins', '.poplar-secret', '.poplar-users']) {
    const info = await stat(join(cwd, 'directories', file));
    assert.equal(info.mode & 0o777, 0o600, `${file} is private`);
  }
  const users = await readFile(join(cwd, 'directories', '.poplar-users'), 'utf8');
  assert.match(
    users,
    /^foo:\{PBKDF2\}\$1\$[^$]+\$\d+\$[0-9a-f]{40}\n$/,
    'the demo password is stored hashed',
  );
  assert.deepEqual((await readdir(join(cwd, 'directories', 'foo'))).sort(), ['cur', 'new', 'tmp']);
  const box = await demoMaildir(join(cwd, 'directories'));
  assert.equal(box.new.length, 1);
  assert.deepEqual([box.cur, box.tmp], [[], []]);
  const welcome = await readFile(join(cwd, 'directories', 'foo', 'new', box.new[0] ?? ''), 'utf8');
  assert.match(
    welcome,
    /^From: Poplar <postmaster@localhost>\nTo: foo@localhost\nSubject: Welcome to Poplar\n/,
  );

  const warning = d.logs.find((e) => e.level === 40 && e.msg.startsWith('demo mode'));
  assert.ok(warning, 'a warning about demo mode is logged');
  assert.equal(warning['user'], 'foo');
  assert.ok(d.logs.some((e) => e.msg === 'demo mailbox created'));

  assert.deepEqual(sortedAddresses(d), hasIpv6 ? ['127.0.0.1', '::1'] : ['127.0.0.1']);
  for (const a of d.addresses) assert.ok(a.port > 0, `bound port of ${a.address}`);
  assert.equal(await demoStat(d.port), `+OK 1 ${welcome.replaceAll('\n', '\r\n').length}`);
  if (hasIpv6) {
    const v6 = d.addresses.find((a) => a.address === '::1');
    assert.equal(await demoStat(v6?.port ?? 0, '::1'), `+OK 1 ${welcome.replaceAll('\n', '\r\n').length}`);
  }
  assert.equal(await d.stop(), 0);
});

test('demo mode keeps an existing demo maildir: no second welcome message', async (t) => {
  const cwd = await tempDir(t);
  await buildMaildir(join(cwd, 'directories'), 'foo', [{ content: 'Subject: mine\r\n\r\nkept\r\n' }]);
  const d = await startDaemon(t, { args: ['-p', '0'], cwd });
  assert.equal(d.logs.filter((e) => e.msg === 'demo mailbox created').length, 0);
  assert.equal(await demoStat(d.port), '+OK 1 23');
  assert.equal(await d.stop(), 0);
});

test('curl fetches the welcome message from the demo daemon', async (t) => {
  const curl = await requireBinary(t, 'curl');
  if (curl === undefined) return;
  const cwd = await tempDir(t);
  const d = await startDaemon(t, { args: ['-p', '0'], cwd });
  const [name = ''] = await readdir(join(cwd, 'directories', 'foo', 'new'));
  const welcome = await readFile(join(cwd, 'directories', 'foo', 'new', name), 'utf8');

  const { stdout } = await execFileAsync(curl, [
    '-sS',
    '--max-time',
    '20',
    `pop3://foo:bar@127.0.0.1:${d.port}/1`,
  ]);
  assert.equal(stdout.replaceAll('\r\n', '\n'), welcome);
  assert.match(stdout, /^From: Poplar <postmaster@localhost>\r?\n/);
  await d.waitForLog((e) => e.msg === 'login' && e['user'] === 'foo');
  assert.equal(await d.stop(), 0);
});

for (const [flag, dir] of [
  ['-m', 'mail'],
  ['-m', 'mail/'],
  ['--maildir', 'mail'],
  ['--maildir', 'mail/'],
] as const) {
  test(`${flag} ${dir} sets the mail root`, async (t) => {
    const cwd = await tempDir(t);
    const d = await startDaemon(t, { args: ['-p', '0', flag, dir], cwd });
    assert.equal(d.started['maildir'], join(await realpath(cwd), 'mail'));
    assert.deepEqual(await readdir(cwd), ['mail'], 'nothing is created in ./directories');
    const box = await demoMaildir(join(cwd, 'mail'));
    assert.equal(box.new.length, 1);
    assert.match(await demoStat(d.port), /^\+OK 1 \d+$/);
    assert.equal(await d.stop(), 0);
  });
}

test('an absolute --maildir works from any working directory', async (t) => {
  const cwd = await tempDir(t);
  const root = join(await tempDir(t), 'abs', 'root');
  const d = await startDaemon(t, { args: ['--port', '0', '--maildir', root], cwd });
  assert.equal(d.started['maildir'], root);
  assert.deepEqual(await readdir(cwd), []);
  assert.equal((await demoMaildir(root)).new.length, 1);
  assert.equal(await d.stop(), 0);
});

for (const flag of ['-p', '--port']) {
  test(`${flag} 0 listens on a free port`, async (t) => {
    const cwd = await tempDir(t);
    const d = await startDaemon(t, { args: [flag, '0', '--listen', '127.0.0.1'], cwd });
    assert.equal(d.addresses.length, 1);
    assert.equal(d.addresses[0]?.address, '127.0.0.1');
    assert.notEqual(d.port, 0);
    assert.notEqual(d.port, 1100, 'not the default port');
    const client = await Pop3TestClient.connect(d.port);
    assert.match(client.greeting, /^\+OK Poplar POP3 server ready/);
    client.close();
    assert.equal(await d.stop(), 0);
  });
}

for (const [args, message] of [
  [['-p', 'http'], 'poplar: --port must be a whole number from 0 to 65535, not "http"\n'],
  [['-p', '70000'], 'poplar: --port must be a whole number from 0 to 65535, not "70000"\n'],
  [['--port=-1'], 'poplar: --port must be a whole number from 0 to 65535, not "-1"\n'],
  [['-p', '-5'], 'poplar: --port must be a whole number from 0 to 65535, not "-5"\n'],
  [['--port', '-5'], 'poplar: --port must be a whole number from 0 to 65535, not "-5"\n'],
  [['--workers', '-1'], 'poplar: --workers must be a whole number from 1 to 64, not "-1"\n'],
  [['--workers', '1000'], 'poplar: --workers must be a whole number from 1 to 64, not "1000"\n'],
  [['--workers', 'abc'], 'poplar: --workers must be a whole number from 1 to 64, not "abc"\n'],
  [['--monitor-port', '-1'], 'poplar: --monitor-port must be a whole number from 0 to 65535, not "-1"\n'],
  [
    ['--log-level', 'loud'],
    'poplar: --log-level must be one of fatal, error, warn, info, debug, trace, silent\n',
  ],
  [['--metrics-listen', '9100'], 'poplar: --metrics-listen must be ADDR:PORT (IPv6 as [ADDR]:PORT)\n'],
  [['--tls-cert', 'c.pem'], 'poplar: --tls-cert and --tls-key go together\n'],
  [
    ['--tls-cert', 'c.pem', '--tls-key', 'k.pem', '-p', '1995', '--tls-port', '1995'],
    'poplar: --tls-port must differ from --port (both 1995)\n',
  ],
  [['-p', '1110', '--monitor-port', '1110'], 'poplar: --monitor-port must differ from --port (both 1110)\n'],
] as const) {
  test(`${args.join(' ')} is refused`, async (t) => {
    const cwd = await tempDir(t);
    const run = await runPoplar(t, args, { cwd });
    assert.equal(run.code, 2);
    assert.equal(run.stderr, message);
    assert.equal(run.stdout, '');
    assert.deepEqual(await readdir(cwd), []);
  });
}

for (const address of ['0.0.0.0', '::', '192.0.2.1']) {
  test(`demo mode refuses --listen ${address}`, async (t) => {
    const cwd = await tempDir(t);
    const run = await runPoplar(t, ['-p', '0', '--listen', '127.0.0.1', '--listen', address], { cwd });
    assert.equal(run.code, 1);
    assert.equal(
      run.stderr,
      `poplar: refusing to listen on ${address} with the demo user foo:bar; ` +
        'give a users file with --users, or listen on loopback only\n',
    );
    assert.ok(!run.stdout.includes('poplar started'));
    assert.deepEqual(await readdir(cwd), [], 'no demo maildir is created');
  });
}

test('--listen ::1 alone listens on the IPv6 loopback only', async (t) => {
  if (!(await hasIpv6Loopback())) {
    t.skip('no IPv6 loopback on this machine');
    return;
  }
  const cwd = await tempDir(t);
  const d = await startDaemon(t, { args: ['-p', '0', '--listen', '::1'], cwd });
  assert.deepEqual(
    d.addresses.map((a) => [a.address, a.family]),
    [['::1', 'IPv6']],
  );
  assert.match(await demoStat(d.port, '::1'), /^\+OK 1 \d+$/);
  assert.equal(await d.stop(), 0);
});

test('-p 0 and --monitor-port 0 pick one port for every address, with one worker or two', async (t) => {
  for (const workers of ['1', '2']) {
    const cwd = await tempDir(t);
    const d = await startDaemon(t, {
      args: [
        ...['-p', '0', '--workers', workers, '--listen', '127.0.0.1', '--listen', '127.0.0.2'],
        ...['--monitor-port', '0', '--monitor-listen', '127.0.0.1', '--monitor-listen', '127.0.0.2'],
      ],
      cwd,
    });
    assert.equal(d.addresses.length, 2);
    assert.equal(new Set(d.addresses.map((a) => a.port)).size, 1, JSON.stringify(d.addresses));
    const monitor = d.started['monitor'] as { port: number }[];
    assert.equal(monitor.length, 2);
    assert.equal(new Set(monitor.map((m) => m.port)).size, 1, JSON.stringify(monitor));
    assert.match(await demoStat(d.port, '127.0.0.2'), /^\+OK 1 \d+$/);
    assert.equal(await d.stop(), 0);
  }
});

for (const flag of ['-h', '--help']) {
  test(`${flag} prints the usage and exits 0`, async (t) => {
    const cwd = await tempDir(t);
    const run = await runPoplar(t, [flag], { cwd });
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: poplar \[options\]\n/);
    for (const option of [
      '-p, --port PORT',
      '-m, --maildir DIR',
      '--listen ADDR',
      '--users FILE',
      '--config FILE',
    ])
      assert.ok(run.stdout.includes(option), `usage mentions ${option}`);
    assert.equal(run.stderr, '');
    assert.deepEqual(await readdir(cwd), [], 'nothing is created');
  });
}

for (const flag of ['-v', '--version']) {
  test(`${flag} prints the version from package.json`, async (t) => {
    const pkg = await projectPackage();
    const run = await runPoplar(t, [flag], { cwd: await tempDir(t) });
    assert.equal(run.code, 0);
    assert.equal(run.stdout, `poplar ${pkg.version}\n`);
    assert.match(run.stdout, /^poplar \d+\.\d+\.\d+/);
    assert.equal(run.stderr, '');
  });
}

for (const args of [['--bogus'], ['-x'], ['stray-argument'], ['--port']]) {
  test(`a bad command line (${args.join(' ')}) exits 2 with one line and a hint, not the usage`, async (t) => {
    const cwd = await tempDir(t);
    const run = await runPoplar(t, args, { cwd });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^poplar: [^\n]+\ntry poplar --help for the options\n$/);
    assert.equal(run.stdout, '');
    assert.deepEqual(await readdir(cwd), []);
  });
}

test('an unknown option is named in the message', async (t) => {
  const run = await runPoplar(t, ['--bogus'], { cwd: await tempDir(t) });
  assert.equal(run.code, 2);
  assert.ok(run.stderr.includes("'--bogus'"), run.stderr);
});

test('--config: port, maildir, users, listen and [limits] come from the TOML file', async (t) => {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users.txt'), 'alice:{PLAIN}alice-pw\n');
  await buildMaildir(join(cwd, 'mail-from-config'), 'alice', [{ content: 'Subject: hi\r\n\r\nhello\r\n' }]);
  await writeFile(
    join(cwd, 'poplar.toml'),
    [
      'port = 0',
      'maildir = "mail-from-config"',
      'users = "users.txt"',
      'listen = ["127.0.0.1"]',
      '',
      '[limits]',
      'authFailureDelayMs = 0',
      'maxAuthFailures = 1',
      '',
    ].join('\n'),
  );
  const d = await startDaemon(t, { args: ['--config', 'poplar.toml'], cwd });
  assert.equal(d.started['demo'], false);
  assert.equal(d.started['maildir'], join(await realpath(cwd), 'mail-from-config'));
  assert.deepEqual(sortedAddresses(d), ['127.0.0.1']);
  assert.notEqual(d.port, 1100, 'port 0 from the file, not the default');
  assert.ok(d.logs.some((e) => e.msg === 'users loaded' && e['users'] === 1));

  const alice = await Pop3TestClient.connect(d.port);
  assert.equal(await alice.command('USER alice'), '+OK send PASS');
  assert.equal(await alice.command('PASS alice-pw'), '+OK alice has 1 message (22 octets)');
  assert.equal(await alice.command('QUIT'), '+OK Poplar signing off (1 message left)');
  alice.close();

  // maxAuthFailures = 1: the first failure closes the connection.
  const guesser = await Pop3TestClient.connect(d.port);
  assert.equal(await guesser.command('USER alice'), '+OK send PASS');
  assert.equal(
    await guesser.command('PASS wrong'),
    '-ERR [AUTH] invalid user name or password, too many failures',
  );
  assert.equal(await guesser.closed(), '');
  assert.equal(await d.stop(), 0);
});

test('--config: flags win over the file', async (t) => {
  const cwd = await tempDir(t);
  await writeFile(
    join(cwd, 'poplar.toml'),
    ['port = 0', 'maildir = "mail-from-config"', 'logLevel = "warn"', 'listen = ["::1"]', ''].join('\n'),
  );
  // logLevel "warn" would hide the 'poplar started' line: it appears only because the flag wins.
  const d = await startDaemon(t, {
    args: ['--config', 'poplar.toml', '--log-level', 'info', '-m', 'mail-from-flag', '--listen', '127.0.0.1'],
    cwd,
  });
  assert.equal(d.started['maildir'], join(await realpath(cwd), 'mail-from-flag'));
  assert.deepEqual(sortedAddresses(d), ['127.0.0.1']);
  assert.deepEqual(await readdir(cwd), ['mail-from-flag', 'poplar.toml'].sort());
  assert.equal(await d.stop(), 0);
});

for (const [name, toml, message] of [
  ['an unknown setting', 'port = 0\ncolour = "blue"\n', 'poplar.toml: unknown setting "colour"'],
  [
    'idleTimeoutMs below the RFC minimum',
    'port = 0\n[limits]\nidleTimeoutMs = 1000\n',
    'poplar.toml: limit idleTimeoutMs must be a whole number from 600000 to',
  ],
  [
    'two unknown settings, one near a known one',
    'prot = 1\ncolour = "blue"\n[limits]\nmaxConectionsPerIp = 3\n',
    'poplar.toml: unknown setting "prot" (did you mean "port"?); unknown setting "colour"; ' +
      'unknown limit "maxConectionsPerIp" (did you mean "maxConnectionsPerIp"?)\n',
  ],
  ['monitorPort = true', 'monitorPort = true\n', 'poplar.toml: monitorPort must be a whole number, or false'],
  ['an unknown limit', 'port = 0\n[limits]\nmaxFoo = 3\n', 'poplar.toml: unknown limit "maxFoo"'],
  ['a port that is not a number', 'port = "pop3"\n', 'poplar.toml: port must be a whole number'],
  ['a bad log level', 'logLevel = "loud"\n', 'poplar.toml: logLevel must be one of'],
  [
    'listen that is not a list',
    'listen = "127.0.0.1"\n',
    'poplar.toml: listen must be a non-empty list of addresses',
  ],
  ['an empty listen list', 'listen = []\n', 'poplar.toml: listen must be a non-empty list of addresses'],
] as const) {
  test(`a config file with ${name} is refused, naming the option`, async (t) => {
    const cwd = await tempDir(t);
    await writeFile(join(cwd, 'poplar.toml'), toml);
    const run = await runPoplar(t, ['-p', '0', '--config', 'poplar.toml'], { cwd });
    assert.equal(run.code, 2);
    assert.ok(run.stderr.startsWith('poplar: '), run.stderr);
    assert.ok(run.stderr.includes(message), `stderr ${JSON.stringify(run.stderr)} includes ${message}`);
    assert.equal(run.stdout, '');
    assert.deepEqual(await readdir(cwd), ['poplar.toml']);
  });
}

test('a config file that does not parse or does not exist is refused', async (t) => {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'broken.toml'), 'port = = 1\n');
  const broken = await runPoplar(t, ['--config', 'broken.toml'], { cwd });
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /^poplar: config file broken\.toml: /);
  const missing = await runPoplar(t, ['--config', 'missing.toml'], { cwd });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^poplar: cannot read config file missing\.toml: .*ENOENT/);
});

test('an address that cannot be bound stops the daemon with exit 1, also after another listener opened', async (t) => {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  // 192.0.2.1 (TEST-NET-1) is not an address of this machine: listening on it fails.
  const run = await runPoplar(
    t,
    ['-p', '0', '--users', 'users', '--listen', '127.0.0.1', '--listen', '192.0.2.1'],
    {
      cwd,
    },
  );
  assert.equal(run.signal, null, 'exits by itself instead of hanging with the other listener open');
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^poplar: cannot listen for POP3 on 192\.0\.2\.1 port \d+: .*EADDRNOTAVAIL/);
  assert.ok(!run.stdout.includes('poplar started'));
});

test('a users file that cannot be read stops the daemon with exit 1, naming the file', async (t) => {
  const cwd = await tempDir(t);
  const run = await runPoplar(t, ['-p', '0', '--users', 'no-such-users', '--listen', '127.0.0.1'], { cwd });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^poplar: .*no-such-users/);
  assert.ok(!run.stdout.includes('poplar started'));
  assert.deepEqual(await readdir(cwd), []);
});
