// `npm start` execs the server, so the process npm starts is the server itself, and SIGTERM to npm's
// PID (which npm forwards to its child) stops the server and its workers: nothing keeps serving
// after npm is gone, and npm exits 0. Before, `sh -c` ran the server as its child: SIGTERM ended npm
// and the shell, and the server went on under PID 1.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/temp-dir.js';
import { childEnv, exitOf, isAlive, killGroup, parentPid, projectRoot, watchLogs } from './project.js';

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => {
      resolve(true);
    });
  });
}

test(
  'SIGTERM to the PID of `npm start` stops the server and its workers; npm exits 0',
  { timeout: 120_000 },
  async (t) => {
    const dir = await tempDir(t);
    const npm = spawn(
      'npm',
      ['start', '--', '-p', '0', '--monitor-port', '0', '--workers', '2', '-m', join(dir, 'mail')],
      // A process group of its own, so that a failed test can kill npm, the server and its workers.
      { cwd: projectRoot(), env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    const exited = exitOf(npm);
    const logs = watchLogs(npm);
    const pids: number[] = [];
    t.after(async () => {
      killGroup(npm.pid);
      for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      await exited;
    });
    // npm may have to build first when build/ is not up to date.
    const started = await logs.waitFor((e) => e['msg'] === 'poplar started', 100_000);
    const server = started['pid'] as number;
    const port = (started['addresses'] as { port: number }[])[0]?.port ?? 0;
    const workers = logs.entries.filter((e) => e['msg'] === 'listening').map((e) => e['pid'] as number);
    pids.push(server, ...workers);
    assert.equal(new Set(workers).size, 2, logs.output());
    assert.equal(parentPid(server), npm.pid, 'the process npm started is the server (exec)');
    assert.equal(await refused(port), false);

    npm.kill('SIGTERM');
    assert.deepEqual(await exited, { code: 0, signal: null }, logs.output());
    await logs.closed;
    assert.ok(
      logs.entries.some((e) => e['msg'] === 'stopped'),
      logs.output(),
    );
    for (const pid of pids) assert.equal(isAlive(pid), false, `process ${String(pid)} still runs`);
    assert.equal(await refused(port), true, 'the POP3 port still accepts connections');
  },
);
