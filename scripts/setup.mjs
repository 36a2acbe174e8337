// Makes a clone runnable: installs the locked dependencies if they are missing, then compiles the
// TypeScript into build/. Used by `npm start`, `npm test`, `npm run build` and `npm pack`.
//
// A server may be running from build/ (its workers and hash threads load modules from there at any
// time), so build/ is never deleted or written in place: tsc writes a sibling folder (build.next-PID,
// at the same depth, so the source maps' relative paths hold), and that folder is renamed into place
// right after the old one is renamed away. And the build is skipped when nothing it reads changed:
// build/.build-hash holds a hash of src/, test/, the tsconfig files and package-lock.json.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

const BUILD = 'build';
const STAMP = join(BUILD, '.build-hash');

const run = (command, args) => {
  const result = spawnSync(command, args, { stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

/** Every file tsc reads from the project, with its content, in a stable order. */
function inputsHash() {
  const hash = createHash('sha256');
  const add = (path) => {
    hash.update(`${path}\0`);
    hash.update(readFileSync(path));
    hash.update('\0');
  };
  for (const dir of ['src', 'test']) {
    if (!existsSync(dir)) continue;
    const files = readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name))
      .sort();
    for (const file of files) add(file);
  }
  const top = readdirSync('.').filter((f) => /^tsconfig.*\.json$/.test(f) || f === 'package-lock.json');
  for (const file of top.sort()) add(file);
  hash.update(process.version);
  return hash.digest('hex');
}

/** Removes build.old-* folders, and build.next-* folders whose build died (its process is gone). */
function removeLeftovers() {
  for (const name of readdirSync('.')) {
    const match = /^build\.(next|old)-(\d+)/.exec(name);
    if (match === null) continue;
    if (match[1] === 'next' && isRunning(Number(match[2]))) continue;
    rmSync(name, { recursive: true, force: true });
  }
}

function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

if (!existsSync('node_modules/.package-lock.json')) {
  console.error('poplar: installing dependencies (npm ci)...');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

const hash = inputsHash();
if (existsSync(STAMP) && readFileSync(STAMP, 'utf8') === hash) {
  console.error('poplar: build/ is up to date');
  process.exit(0);
}

console.error('poplar: building...');
const next = `${BUILD}.next-${String(process.pid)}`;
const old = `${BUILD}.old-${String(process.pid)}`;
removeLeftovers();
rmSync(next, { recursive: true, force: true });
const tsc = (project, outDir) => {
  const args = ['node_modules/typescript/bin/tsc', '-p', project, '--outDir', outDir];
  const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (result.status !== 0) {
    rmSync(next, { recursive: true, force: true });
    process.exit(result.status ?? 1);
  }
};
tsc('tsconfig.json', next);
// The dashboard's page (src/dashboard/web) is a browser program of its own: its TypeScript compiles
// with its own tsconfig (DOM, ES modules) next to the server's files, and its HTML and CSS are
// copied there, one flat folder that the dashboard's server serves.
const WEB = join('src', 'dashboard', 'web');
tsc(join(WEB, 'tsconfig.json'), join(next, WEB));
for (const name of readdirSync(WEB).filter((f) => /\.(html|css)$/.test(f))) {
  copyFileSync(join(WEB, name), join(next, WEB, name));
}
writeFileSync(join(next, '.build-hash'), hash);
// The two renames follow each other at once: build/ is missing for the time of two system calls. A
// concurrent setup may put its own build/ in between; then this one moves that aside too.
for (let tries = 0; ; tries += 1) {
  if (existsSync(BUILD)) renameSync(BUILD, `${old}-${String(tries)}`);
  try {
    renameSync(next, BUILD);
    break;
  } catch (error) {
    if (tries >= 5 || !['ENOTEMPTY', 'EEXIST'].includes(error.code)) throw error;
  }
}
removeLeftovers();
