// Rebuilding (scripts/setup.mjs, run by `npm start`, `npm test` and `npm run build`) under a server
// that runs from the same tree: the build goes to a temporary folder and is renamed into place, so
// logins and worker replacements (which load modules and hash threads from build/) keep working
// during and after it; and a second build with nothing changed is skipped. Before, setup.mjs deleted
// build/ first: a worker killed during the build could not be replaced (ERR_MODULE_NOT_FOUND).
//
// It runs in a copy of the project with only src/ to compile (tsc takes seconds, not a minute), and
// the copy's build/ starts as the suite's own build/src.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, cp, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { dialog } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { childEnv, exitOf, isAlive, projectRoot, watchLogs, type LogWatch } from './project.js';

const ERROR_LEVEL = 50;
/** The one error line a worker killed on purpose brings. */
const DIED = 'worker died; starting another';
const isBad = (e: Record<string, unknown>): boolean =>
  ((e['level'] as number) >= ERROR_LEVEL && e['msg'] !== DIED) ||
  /ERR_MODULE_NOT_FOUND/.test(JSON.stringify(e));

/** A copy of the project that compiles src/ only, with the suite's build/src as its current build. */
async function projectCopy(dir: string): Promise<void> {
  const root = projectRoot();
  for (const path of ['src', 'bin', 'scripts/setup.mjs', 'package.json', 'package-lock.json']) {
    await cp(join(root, path), join(dir, path), { recursive: true });
  }
  await cp(join(root, 'build', 'src'), join(dir, 'build', 'src'), { recursive: true });
  const tsconfig = JSON.parse(await readFile(join(root, 'tsconfig.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ ...tsconfig, include: ['src/**/*.ts'] }));
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'));
}

async function canLogIn(port: number): Promise<string> {
  const replies = await dialog(port, ['USER alice', 'PASS pw', 'QUIT']);
  return replies[2] ?? '';
}

/** The pids of the workers that listen now (waits until `count` of them do). */
async function listeningWorkers(logs: LogWatch, count: number): Promise<Set<number>> {
  const pids = () =>
    new Set(logs.entries.filter((e) => e['msg'] === 'listening').map((e) => e['pid'] as number));
  await logs.waitFor(() => pids().size >= count);
  return pids();
}

/**
 * Kills one worker with SIGKILL and resolves once its replacement is up: it listens (it is handed
 * the mail root and limits when it is forked). Fails on an error line.
 */
async function replaceAWorker(logs: LogWatch, seen: Set<number>): Promise<void> {
  const victim = [...seen].find(isAlive);
  assert.ok(victim !== undefined, 'no live worker');
  process.kill(victim, 'SIGKILL');
  const next = await logs.waitFor(
    (e) => (e['msg'] === 'listening' && !seen.has(e['pid'] as number)) || isBad(e),
  );
  assert.equal(next['msg'], 'listening', JSON.stringify(next));
  seen.add(next['pid'] as number);
}

test(
  'a rebuild under a running server: logins and worker replacements keep working; an unchanged tree is not rebuilt',
  { timeout: 240_000 },
  async (t) => {
    const dir = await tempDir(t, 'poplar-rebuild-');
    await projectCopy(dir);
    await writeFile(join(dir, 'users'), `alice:{BLF-CRYPT}${bcrypt.hashSync('pw', 4)}\n`);
    const args = [
      '--workers',
      '2',
      '--users',
      'users',
      '--listen',
      '127.0.0.1',
      '-p',
      '0',
      '-m',
      'mail',
      '--no-monitor',
    ];
    const server = spawn(process.execPath, ['bin/poplar.js', ...args], { cwd: dir, env: childEnv() });
    const serverExit = exitOf(server);
    t.after(async () => {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
      await serverExit;
    });
    const logs = watchLogs(server);
    const started = await logs.waitFor((e) => e['msg'] === 'poplar started');
    const port = (started['addresses'] as { port: number }[])[0]?.port ?? 0;
    const workers = await listeningWorkers(logs, 2);
    assert.match(await canLogIn(port), /^\+OK/);

    await appendFile(join(dir, 'src', 'index.ts'), '\n// a change, so that setup.mjs builds\n');
    const build = spawn(process.execPath, ['scripts/setup.mjs'], { cwd: dir, env: childEnv() });
    const buildLogs = watchLogs(build);
    const building = { isRunning: true };
    const built = exitOf(build).then((status) => {
      building.isRunning = false;
      return status;
    });
    t.after(async () => {
      if (building.isRunning) build.kill('SIGKILL');
      await built;
    });
    let roundsDuringBuild = 0;
    while (building.isRunning) {
      await replaceAWorker(logs, workers);
      assert.match(await canLogIn(port), /^\+OK/, 'a login during the build');
      roundsDuringBuild += 1;
    }
    assert.deepEqual(await built, { code: 0, signal: null }, buildLogs.output());
    assert.match(buildLogs.output(), /building/);
    assert.ok(roundsDuringBuild > 0);
    // After the swap, a replacement loads the new build.
    await replaceAWorker(logs, workers);
    assert.match(await canLogIn(port), /^\+OK/, 'a login after the build');

    // Nothing changed since: the second build is skipped, build/ stays the same folder.
    const before = await stat(join(dir, 'build'));
    const again = spawn(process.execPath, ['scripts/setup.mjs'], { cwd: dir, env: childEnv() });
    const againLogs = watchLogs(again);
    assert.deepEqual(await exitOf(again), { code: 0, signal: null });
    assert.match(againLogs.output(), /build\/ is up to date/);
    assert.equal((await stat(join(dir, 'build'))).ino, before.ino);

    server.kill('SIGTERM');
    assert.deepEqual(await serverExit, { code: 0, signal: null });
    await logs.closed;
    assert.deepEqual(logs.entries.filter(isBad), [], logs.output());
  },
);
