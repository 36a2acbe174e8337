// Limits on the shape of src/ that are not import rules (those are in .dependency-cruiser.mjs, run
// by `npm run lint`): no source file over 400 lines. The public API's size is held by
// test/unit/public-api.test.ts.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';

/** The repository root: this file runs from test/unit/ (tsx) or build/test/unit/. */
const ROOT = new URL(import.meta.url.includes('/build/') ? '../../../' : '../../', import.meta.url);
const MAX_LINES = 400;

/** Every .ts file under src/ with its number of lines (as `wc -l` counts them). */
async function sourceFiles(): Promise<{ path: string; lines: number }[]> {
  const names = (await readdir(new URL('src/', ROOT), { recursive: true })).filter((f) => f.endsWith('.ts'));
  return Promise.all(
    names.sort().map(async (name) => {
      const text = await readFile(new URL(`src/${name}`, ROOT), 'utf8');
      return { path: `src/${name}`, lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0) };
    }),
  );
}

test(`no source file in src/ is over ${MAX_LINES} lines`, async () => {
  const files = await sourceFiles();
  assert.ok(
    files.some((f) => f.path === 'src/index.ts'),
    'src/ was read',
  );
  const over = files.filter((f) => f.lines > MAX_LINES).map((f) => `${f.path}: ${f.lines} lines`);
  assert.deepEqual(over, []);
});
