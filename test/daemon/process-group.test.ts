// SIGTERM to the daemon's whole process group, as systemd's KillMode=control-group, `tini -g` and
// `kill -- -PGID` send it: the primary and its workers all get the signal at once, and the daemon
// still stops cleanly (exit 0, no stack trace, nothing logged at error level). A worker sent SIGTERM
// alone exits 0 and is replaced with a warning.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };
const WARN_LEVEL = 40;
const ERROR_LEVEL = 50;

for (const round of [1, 2, 3]) {
  test(
    `SIGTERM to the process group of a daemon with 2 workers: exit 0, no stack trace (${String(round)})`,
    LIMIT,
    async (t) => {
      const cwd = await tempDir(t);
      await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
      await buildMaildir(join(cwd, 'mail'), 'alice', [{ content: 'Subject: hi\r\n\r\nHello.\r\n' }]);
      const d = await startDaemon(t, {
        cwd,
        detached: true,
        args: ['--workers', '2', '--users', 'users', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'],
      });
      process.kill(-d.pid, 'SIGTERM');
      const status = await d.exited;
      await d.outputClosed;
      const context = `stdout: ${d.stdout()}\nstderr: ${d.stderr()}`;
      assert.deepEqual(status, { code: 0, signal: null }, context);
      assert.equal(d.stderr(), '', context);
      assert.doesNotMatch(d.stdout(), /ERR_IPC_CHANNEL_CLOSED|EPIPE|\n\s+at /, context);
      const errors = d.logs.filter((e) => e.level >= ERROR_LEVEL || e.level === -1);
      assert.deepEqual(errors, [], context);
      assert.ok(
        d.logs.some((e) => e.msg === 'stopped'),
        context,
      );
    },
  );
}

test('a worker sent SIGTERM on its own is replaced with a warning, not an error', LIMIT, async (t) => {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  const d = await startDaemon(t, {
    cwd,
    args: ['--workers', '2', '--users', 'users', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'],
  });
  const victim = d.logs.find((e) => e.msg === 'listening')?.['pid'] as number;
  process.kill(victim, 'SIGTERM');
  const died = await d.waitForLog((e) => e.msg === 'worker died; starting another');
  assert.equal(died['worker'], victim);
  assert.equal(died['code'], 0);
  assert.equal(died.level, WARN_LEVEL);
  // The replacement listens, started with the limits and mail root in force.
  await d.waitForLog((e) => e.msg === 'listening' && e['pid'] !== victim, {
    since: d.logs.indexOf(died),
  });
  assert.equal(await d.stop(), 0);
  assert.deepEqual(
    d.logs.filter((e) => e.level >= ERROR_LEVEL || e.level === -1),
    [],
  );
});

test(
  'when every worker dies at once, a primary without a monitor stays and starts new ones',
  LIMIT,
  async (t) => {
    const cwd = await tempDir(t);
    await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
    const d = await startDaemon(t, {
      cwd,
      args: [
        '--workers',
        '2',
        '--no-monitor',
        '--users',
        'users',
        '--listen',
        '127.0.0.1',
        '-p',
        '0',
        '-m',
        'mail',
      ],
    });
    const workers = [...new Set(d.logs.filter((e) => e.msg === 'listening').map((e) => e['pid'] as number))];
    assert.equal(workers.length, 2);
    const since = d.logs.length;
    for (const pid of workers) process.kill(pid, 'SIGKILL');
    // The listening socket went with the last worker: the first replacement binds port 0 afresh.
    const listening = await d.waitForLog(
      (e) => e.msg === 'listening' && !workers.includes(e['pid'] as number),
      {
        since,
      },
    );
    const client = await Pop3TestClient.connect(listening['port'] as number);
    assert.match(await client.login('alice', 'pw'), /^\+OK/);
    assert.match(await client.command('QUIT'), /^\+OK/);
    client.close();
    assert.equal(await d.stop(), 0);
  },
);
