import { fileURLToPath } from 'node:url';

/**
 * The command line that runs one of the project's own modules as a child process, whether the
 * tests run compiled (build/**.js) or from source under tsx (src/**.ts, with --import tsx kept).
 *
 * `relative` is resolved against `base` (pass `import.meta.url`) and written with a `.js` ending.
 */
export function nodeScript(relative: string, base: string): { command: string; args: string[] } {
  const isSource = base.endsWith('.ts');
  const url = new URL(isSource ? relative.replace(/\.js$/, '.ts') : relative, base);
  // `--import tsx` is resolved from the child's working directory, which may be a temp dir:
  // pass the loader by absolute URL instead.
  const execArgv = process.execArgv.map((arg) => (arg === 'tsx' ? import.meta.resolve('tsx') : arg));
  return { command: process.execPath, args: [...execArgv, fileURLToPath(url)] };
}

/** The `poplar` executable's entry module, for spawning the daemon from any test file. */
export function poplarCommand(argv: readonly string[]): { command: string; args: string[] } {
  const { command, args } = nodeScript('../../src/cli/main.js', import.meta.url);
  return { command, args: [...args, ...argv] };
}
