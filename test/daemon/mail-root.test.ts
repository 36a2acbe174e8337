// The mail root is checked at start: one that is a file (or under a file) stops the daemon with
// exit 1 and a message naming it, before anything listens; a missing one is logged as a warning
// outside demo mode, since a typo would otherwise serve empty mailboxes without a word.
import assert from 'node:assert/strict';
import { mkdir, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPoplar, startDaemon } from '../helpers/daemon.js';
import { tempDir } from '../helpers/temp-dir.js';

const WARN_LEVEL = 40;
const MISSING = 'mail root does not exist; it is created empty (check --maildir)';
const LISTEN = ['--listen', '127.0.0.1', '-p', '0'];

for (const [name, mode] of [
  ['with a users file', ['--users', 'users']],
  ['in demo mode', []],
  ['with 2 workers', ['--users', 'users', '--workers', '2']],
] as const) {
  test(`a mail root that is a file is refused at start, ${name}: exit 1, naming it`, async (t) => {
    const cwd = await realpath(await tempDir(t));
    await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
    await writeFile(join(cwd, 'afile'), 'not a folder\n');
    const run = await runPoplar(t, [...mode, ...LISTEN, '-m', 'afile'], { cwd });
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stderr, `poplar: mail root ${join(cwd, 'afile')} is not a directory\n`);
    assert.doesNotMatch(run.stdout, /poplar started/);
  });
}

test('a mail root under a file is refused at start, naming it', async (t) => {
  const cwd = await realpath(await tempDir(t));
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  await writeFile(join(cwd, 'afile'), 'not a folder\n');
  const run = await runPoplar(t, ['--users', 'users', ...LISTEN, '-m', 'afile/mail'], { cwd });
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stderr, `poplar: mail root ${join(cwd, 'afile', 'mail')} is not a directory\n`);
});

test('a missing mail root is warned about at start, with its path', async (t) => {
  const cwd = await realpath(await tempDir(t));
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  const d = await startDaemon(t, { cwd, args: ['--users', 'users', ...LISTEN, '-m', 'typo'] });
  const warning = d.logs.find((e) => e.msg === MISSING);
  assert.ok(warning !== undefined, d.stdout());
  assert.equal(warning.level, WARN_LEVEL);
  assert.equal(warning['maildir'], join(cwd, 'typo'));
  assert.ok(d.logs.indexOf(warning) < d.logs.indexOf(d.started));
  assert.equal(await d.stop(), 0);
});

test('an existing mail root, or a missing one in demo mode, gives no such warning', async (t) => {
  const cwd = await realpath(await tempDir(t));
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  await mkdir(join(cwd, 'mail'));
  for (const args of [
    ['--users', 'users', ...LISTEN, '-m', 'mail'],
    [...LISTEN, '-m', 'demo-root'],
  ]) {
    const d = await startDaemon(t, { cwd, args });
    assert.equal(
      d.logs.find((e) => e.msg === MISSING),
      undefined,
      d.stdout(),
    );
    assert.equal(await d.stop(), 0);
  }
});
