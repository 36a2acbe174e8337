// Limits on the shape of src/ that are not import rules (those are in .dependency-cruiser.mjs, run
// by `npm run lint`): no source file over 400 lines, and a public API (src/index.ts, which
// build/src/index.d.ts declares) of at most 50 exported names.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository root: this file runs from test/unit/ (tsx) or build/test/unit/. */
const ROOT = new URL(import.meta.url.includes('/build/') ? '../../../' : '../../', import.meta.url);
const MAX_LINES = 400;
const MAX_EXPORTS = 50;

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

/**
 * Files over the limit that issue 11 is splitting at this moment: the first test leaves them out,
 * the second (a todo, a known gap) checks them, and fails the run once they are split; then take
 * them off this list (an empty list drops the second test).
 */
const BEING_SPLIT: readonly string[] = [];

test(`no source file in src/ is over ${MAX_LINES} lines`, async () => {
  const files = await sourceFiles();
  assert.ok(
    files.some((f) => f.path === 'src/index.ts'),
    'src/ was read',
  );
  const over = files
    .filter((f) => f.lines > MAX_LINES && !BEING_SPLIT.includes(f.path))
    .map((f) => `${f.path}: ${f.lines} lines`);
  assert.deepEqual(over, []);
});

if (BEING_SPLIT.length > 0) {
  test(
    `the files being split are at most ${MAX_LINES} lines too`,
    { todo: `being split (issue 11): ${BEING_SPLIT.join(', ')}` },
    async () => {
      const files = (await sourceFiles()).filter((f) => BEING_SPLIT.includes(f.path));
      assert.equal(files.length, BEING_SPLIT.length, 'every file on the list exists');
      const over = files.filter((f) => f.lines > MAX_LINES).map((f) => `${f.path}: ${f.lines} lines`);
      assert.deepEqual(over, []);
    },
  );
}

test(`src/index.ts exports at most ${MAX_EXPORTS} names (values and types)`, () => {
  const index = fileURLToPath(new URL('src/index.ts', ROOT));
  const program = ts.createProgram([index], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ['node'],
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(index);
  assert.ok(source !== undefined);
  const module = checker.getSymbolAtLocation(source);
  assert.ok(module !== undefined, 'src/index.ts is a module');
  const names = checker.getExportsOfModule(module).map((s) => s.name);
  assert.ok(names.includes('createServer'), names.join(' '));
  assert.ok(names.length <= MAX_EXPORTS, `${names.length} exported names: ${names.sort().join(' ')}`);
});
