// What the daemon's log lines say: every connection's end has a reason, a failed login is a
// warning, logins and logouts name the address, and the monitor's audit lines name its client.
import assert from 'node:assert/strict';
import { appendFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon, type LogEntry, type RunningDaemon } from '../helpers/daemon.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { MonitorClient } from '../../src/monitor/client.js';

const INFO = 30;
const WARN = 40;
const DEMO_TOKEN = '123456789abcdef1';

/** The `connection opened` entry of the client whose local port is `port`. */
function openedFor(d: RunningDaemon, port: number | undefined): Promise<LogEntry> {
  return d.waitForLog((e) => e.msg === 'connection opened' && e['port'] === port);
}

/** The reason in the `connection closed` entry of that connection. */
async function closeReason(d: RunningDaemon, opened: LogEntry): Promise<unknown> {
  const closed = await d.waitForLog((e) => e.msg === 'connection closed' && e['cid'] === opened['cid']);
  return closed['reason'];
}

test('connection closed says why: quit, client, kicked, timeout, error, shutdown', async (t) => {
  const cwd = await tempDir(t);
  await writeFile(
    join(cwd, 'poplar.toml'),
    '[limits]\nloginTimeoutMs = 1500\nauthFailureDelayMs = 0\nmaxAuthFailures = 2\n',
  );
  const d = await startDaemon(t, { cwd, args: ['-p', '0', '--config', 'poplar.toml'] });
  const monitorPort = (d.started['monitor'] as { address: string; port: number }[]).find(
    (a) => a.address === '127.0.0.1',
  )?.port;
  assert.ok(monitorPort !== undefined);

  const quitter = await Pop3TestClient.connect(d.port);
  const quitOpened = await openedFor(d, quitter.socket.localPort);
  await quitter.login('foo', 'bar');
  await quitter.command('QUIT');
  await quitter.closed();
  assert.equal(await closeReason(d, quitOpened), 'quit');
  const login = await d.waitForLog((e) => e.msg === 'login' && e['cid'] === quitOpened['cid']);
  assert.deepEqual([login['user'], login['remote'], login['result']], ['foo', '127.0.0.1', 'ok']);
  const logout = await d.waitForLog((e) => e.msg === 'logout' && e['cid'] === quitOpened['cid']);
  assert.equal(logout['remote'], '127.0.0.1');

  const leaver = await Pop3TestClient.connect(d.port);
  const leaverOpened = await openedFor(d, leaver.socket.localPort);
  leaver.socket.destroy();
  assert.equal(await closeReason(d, leaverOpened), 'client');

  const kicked = await Pop3TestClient.connect(d.port);
  const kickedOpened = await openedFor(d, kicked.socket.localPort);
  await kicked.login('foo', 'bar');
  const monitor = new MonitorClient({ host: '127.0.0.1', port: monitorPort, token: DEMO_TOKEN });
  await monitor.config('endSessions', 'foo');
  assert.equal(await closeReason(d, kickedOpened), 'kicked');
  const audit = await d.waitForLog((e) => e.msg === 'sessions ended');
  assert.equal(audit['remote'], '127.0.0.1', audit.raw);

  const slow = await Pop3TestClient.connect(d.port);
  const slowOpened = await openedFor(d, slow.socket.localPort);
  assert.equal(await closeReason(d, slowOpened), 'timeout');

  const guesser = await Pop3TestClient.connect(d.port);
  const guesserOpened = await openedFor(d, guesser.socket.localPort);
  for (let i = 0; i < 2; i++) {
    await guesser.command('USER foo');
    await guesser.command('PASS wrong');
  }
  assert.equal(await closeReason(d, guesserOpened), 'error');
  const failed = d.logs.filter((e) => e.msg === 'login failed' && e['cid'] === guesserOpened['cid']);
  assert.equal(failed.length, 2);
  for (const entry of failed) {
    assert.equal(entry.level, WARN, entry.raw);
    assert.equal(entry['remote'], '127.0.0.1');
  }

  const open = await Pop3TestClient.connect(d.port);
  const openOpened = await openedFor(d, open.socket.localPort);
  await open.login('foo', 'bar');
  assert.equal(await d.stop(), 0);
  assert.equal(await closeReason(d, openOpened), 'shutdown');
});

test('err is always an error object (type, message, stack), here when the users file is gone', async (t) => {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}alice-pw\n');
  const d = await startDaemon(t, { cwd, args: ['-p', '0', '--listen', '127.0.0.1', '--users', 'users'] });
  await rename(join(cwd, 'users'), join(cwd, 'users.away'));
  const entry = await d.waitForLog((e) => e.msg === 'users file not reloaded');
  const err = entry['err'] as Record<string, unknown>;
  assert.equal(typeof err, 'object', entry.raw);
  assert.equal(err['type'], 'Error');
  assert.match(String(err['message']), /ENOENT/);
  assert.equal(err['code'], 'ENOENT');
  assert.equal(typeof err['stack'], 'string');
  assert.equal(await d.stop(), 0);
});

test('with 2 workers, one change of the users file is one users loaded line at info level', async (t) => {
  const cwd = await tempDir(t);
  const d = await startDaemon(t, { cwd, args: ['-p', '0', '--workers', '2'] });
  const loadedLines = (since = 0): LogEntry[] =>
    d.logs.slice(since).filter((e) => e.msg === 'users loaded' && e.level >= INFO);
  assert.equal(loadedLines().length, 1, 'the start: the primary only');

  const monitorPort = (d.started['monitor'] as { address: string; port: number }[]).find(
    (a) => a.address === '127.0.0.1',
  )?.port;
  assert.ok(monitorPort !== undefined);
  const since = d.logs.length;
  const monitor = new MonitorClient({ host: '127.0.0.1', port: monitorPort, token: DEMO_TOKEN });
  // Answered once every worker has re-read the file.
  await monitor.config('setUser', Buffer.from('bob\0bob-password'));
  // An edit by hand afterwards: once its line is in, every line of the monitor's change is too.
  const usersFile = join(cwd, 'directories', '.poplar-users');
  await appendFile(usersFile, 'carol:{PLAIN}carol-pw\n');
  await d.waitForLog((e) => e.msg === 'users loaded' && e['users'] === 3, { since });
  assert.deepEqual(
    loadedLines(since).map((e) => [e['users'], e['pid']]),
    [
      [2, d.pid],
      [3, d.pid],
    ],
  );
  assert.equal(await d.stop(), 0);
});
