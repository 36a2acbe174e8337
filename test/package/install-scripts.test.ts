// npm 11 runs no install script of a dependency that package.json's allowScripts does not name, and
// ends every install with a warning listing the ones it skipped (esbuild's postinstall, which only
// swaps its JavaScript launcher for the native binary: tsx works without it). package.json denies
// it, so `npm ci` and `npm start` on a fresh clone print no such warning. npm 10 runs the scripts and
// warns about nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { childEnv, projectRoot } from './project.js';

const run = promisify(execFile);

test('every dependency with an install script is approved or denied in allowScripts', async (t) => {
  const env = childEnv();
  const { stdout: version } = await run('npm', ['--version'], { env });
  if (Number(version.split('.')[0]) < 11) {
    t.skip(`npm ${version.trim()} has no allowScripts`);
    return;
  }
  const { stdout } = await run('npm', ['install-scripts', 'ls'], { cwd: projectRoot(), env });
  assert.equal(stdout.trim(), 'No packages with unreviewed install scripts.');
});
