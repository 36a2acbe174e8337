// Password and token prompts on a terminal (a pseudo-terminal from util-linux `script`): no echo,
// Enter ends, asked twice; and the piped path, unchanged.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseStoredPassword } from '../../src/auth/passwords/registry.js';
import { runPoplar, startDaemon } from '../helpers/daemon.js';
import { nodeScript, poplarCommand } from '../helpers/node-script.js';
import { monitorPort } from '../helpers/poplarctl.js';
import { runInTerminal, type Terminal } from '../helpers/terminal.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';

const LIMIT = { timeout: 120_000 };
const TOKEN = '123456789abcdef1';

/** `poplar ARGS` on a terminal, or undefined (test skipped) without `script`. */
async function poplarOnTerminal(t: TestContext, args: readonly string[]): Promise<Terminal | undefined> {
  if ((await requireBinary(t, 'script')) === undefined) return undefined;
  const { command, args: argv } = poplarCommand(args);
  return runInTerminal(t, command, argv);
}

/** Answers the two prompts, each once it is shown. */
async function answerTwice(term: Terminal, first: string, second: string, what = 'password'): Promise<void> {
  const shown = await term.waitFor(`${what[0]?.toUpperCase()}${what.slice(1)}: `);
  term.type(`${first}\r`);
  await term.waitFor(`Retype ${what}: `, shown);
  term.type(`${second}\r`);
}

test('hash-password on a terminal: hidden, ended by Enter, asked twice', LIMIT, async (t) => {
  const term = await poplarOnTerminal(t, ['hash-password', '--scheme', 'SSHA256']);
  if (term === undefined) return;
  // A typo erased with Backspace is not part of the password.
  await answerTwice(term, 'secrex\x7ft one', 'secret one');
  assert.equal(await term.exited, 0);
  const out = term.output();
  assert.ok(!out.includes('secret'), `the password is not echoed: ${JSON.stringify(out)}`);
  const field = /\{SSHA256\}\S+/.exec(out)?.[0] ?? '';
  const stored = parseStoredPassword(field);
  if (typeof stored === 'string') assert.fail(stored);
  assert.equal(await stored.scheme.verify('secret one', stored.data), true);
});

test(
  'hash-password on a terminal: both answers typed ahead at once, CR LF as one Enter',
  LIMIT,
  async (t) => {
    const term = await poplarOnTerminal(t, ['hash-password', '--scheme', 'PLAIN']);
    if (term === undefined) return;
    await term.waitFor('Password: ');
    // A paste of both answers arrives before the second prompt; CR LF must not make an empty answer.
    term.type('ahead pw\r\nahead pw\r\n');
    assert.equal(await term.exited, 0);
    assert.match(term.output(), /Retype password: \r\n\{PLAIN\}ahead pw\r\n$/);
  },
);

test('hash-password on a terminal: answers that differ, an empty one, Ctrl-C', LIMIT, async (t) => {
  const differ = await poplarOnTerminal(t, ['hash-password']);
  if (differ === undefined) return;
  await answerTwice(differ, 'one', 'two');
  assert.equal(await differ.exited, 2);
  assert.match(differ.output(), /poplar hash-password: the passwords do not match\r\n/);
  assert.doesNotMatch(differ.output(), /PBKDF2/);

  const empty = await poplarOnTerminal(t, ['hash-password']);
  await empty?.waitFor('Password: ');
  empty?.type('\r');
  assert.equal(await empty?.exited, 2);
  assert.match(empty?.output() ?? '', /an empty password is not allowed/);

  const cancelled = await poplarOnTerminal(t, ['hash-password']);
  await cancelled?.waitFor('Password: ');
  cancelled?.type('abc\x03');
  assert.equal(await cancelled?.exited, 130);
  assert.doesNotMatch(cancelled?.output() ?? '', /abc|PBKDF2/);
});

test('hash-password piped: stdin as before; PLAIN refuses what would not round-trip', LIMIT, async (t) => {
  const piped = await runPoplar(t, ['hash-password', '--scheme', 'PLAIN', '--user', 'c'], { input: 'pw\n' });
  assert.deepEqual([piped.code, piped.stdout, piped.stderr], [0, 'c:{PLAIN}pw\n', '']);
  const refusals = await Promise.all(
    ['pw:with:colons\n', 'pw\twith\x01control\n', ''].map((input) =>
      runPoplar(t, ['hash-password', '--scheme', 'plain'], { input }),
    ),
  );
  for (const run of refusals.slice(0, 2)) {
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      /^poplar hash-password: a \{PLAIN\} password cannot hold ":" or control characters/,
    );
  }
  assert.equal(refusals[2]?.stderr, 'poplar hash-password: give one non-empty password on stdin\n');
  // Hashed, the same password is fine: the field holds no colon.
  const hashed = await runPoplar(t, ['hash-password', '--scheme', 'SSHA256'], { input: 'pw:with:colons\n' });
  assert.equal(hashed.code, 0);
  assert.match(hashed.stdout, /^\{SSHA256\}[^:]+\n$/);
});

test('hash-password --help prints the usage and exits 0', LIMIT, async (t) => {
  for (const flag of ['--help', '-h']) {
    const run = await runPoplar(t, ['hash-password', flag]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: poplar hash-password \[--scheme SCHEME\] \[--user NAME\]\n/);
    assert.equal(run.stderr, '');
  }
});

test('poplarctl users add and admins add on a terminal ask twice, without echo', LIMIT, async (t) => {
  if ((await requireBinary(t, 'script')) === undefined) return;
  const cwd = await tempDir(t);
  const d = await startDaemon(t, { args: ['-m', 'mail', '-p', '0'], cwd });
  const port = String(monitorPort(d.started));
  const { command, args } = nodeScript('../../src/cli/poplarctl-main.js', import.meta.url);
  const ctl = (words: readonly string[]): Terminal =>
    runInTerminal(t, command, [...args, '--port', port, ...words], { POPLAR_TOKEN: TOKEN });

  const add = ctl(['users', 'add', 'dave']);
  await answerTwice(add, 'dave secret', 'dave secret');
  assert.equal(await add.exited, 0);
  assert.match(add.output(), /user dave saved\r\n/);
  assert.ok(!add.output().includes('dave secret'));
  const users = await readFile(join(cwd, 'mail', '.poplar-users'), 'utf8');
  assert.match(users, /^dave:\{PBKDF2\}/m);

  const admin = ctl(['admins', 'add', 'ops']);
  await answerTwice(admin, 'opsToken-0000001', 'opsToken-0000002', 'token');
  assert.equal(await admin.exited, 2);
  assert.match(admin.output(), /poplarctl: the tokens do not match\r\n/);
  assert.ok(!admin.output().includes('opsToken'));
  assert.doesNotMatch(await readFile(join(cwd, 'mail', '.poplar-admins'), 'utf8'), /^ops:/m);
  assert.equal(await d.stop(), 0);
});
