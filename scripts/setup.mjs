// Makes a fresh clone runnable: installs the locked dependencies if they are missing, then
// compiles the TypeScript into build/. Used by `npm start` and `npm test`.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';

const run = (command, args) => {
  const result = spawnSync(command, args, { stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

if (!existsSync('node_modules/.package-lock.json')) {
  console.error('poplar: installing dependencies (npm ci)...');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
rmSync('build', { recursive: true, force: true });
run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']);
