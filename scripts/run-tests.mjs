// Runs every compiled test file (build/**/*.test.js) with node:test and fails when none ran.
// Node 20 neither expands globs nor fails on zero tests, hence this script. A `todo` test that
// passes fails the run too: its known gap was closed, and its todo marker must go.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';

// The test files run in child processes that take this process's flags (node 20's run() has no
// execArgv option). With --expose-gc, test/abuse/write-stall.test.ts checks that a dropped socket is
// collected; so this script starts itself again with that flag when it lacks it.
if (!process.execArgv.includes('--expose-gc')) {
  const self = fileURLToPath(import.meta.url);
  const args = ['--expose-gc', ...process.execArgv, self, ...process.argv.slice(2)];
  const { status } = spawnSync(process.execPath, args, { stdio: 'inherit' });
  process.exit(status ?? 1);
}

const only = process.argv.slice(2);
const files = readdirSync('build', { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => join('build', f))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

if (files.length === 0) {
  console.error('run-tests: no test files found under build/');
  process.exit(1);
}

let passed = 0;
let failed = 0;
let skipped = 0;
let todo = 0;
/** `todo` tests that passed: a known gap was closed, so the todo marker must go. They fail the run. */
const todoPassing = [];
const stream = run({ files, concurrency: Math.max(2, availableParallelism()), timeout: 120_000 });
stream.on('test:pass', (event) => {
  if (event.details.type === 'suite') return;
  if (event.skip) skipped += 1;
  else if (event.todo) todoPassing.push(`${event.name} (${relative('.', event.file ?? '')})`);
  else passed += 1;
});
stream.on('test:fail', (event) => {
  if (event.details.type === 'suite') return;
  // A failing `todo` test documents a known gap; node:test does not count it as a failure either.
  if (event.todo) todo += 1;
  else failed += 1;
});
stream.compose(spec).pipe(process.stdout);
stream.on('end', () => {
  for (const name of todoPassing) {
    console.error(`run-tests: a todo test passes, its gap is closed: remove its todo marker: ${name}`);
  }
  // A passing todo is counted among the failures too, so that this line agrees with the exit status.
  console.log(
    `${passed} passed, ${failed + todoPassing.length} failed, ${skipped} skipped, ` +
      `${todo} todo (known gaps, failing), ${todoPassing.length} todo passing (remove the marker)`,
  );
  if (passed === 0) console.error('run-tests: no test passed');
  process.exitCode = failed > 0 || todoPassing.length > 0 || passed === 0 ? 1 : 0;
});
