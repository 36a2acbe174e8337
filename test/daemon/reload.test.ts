// SIGHUP reloads the configuration: the TOML file and the flags are read again, the limits and the
// log level change in every worker (and in a worker that replaces a dead one) while open sessions
// go on; one log line lists what changed and what needs a restart (a port: the old one keeps
// serving); a broken file is refused and the old configuration stays, in workers started later too.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDaemon, type LogEntry, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };
const MESSAGE = 'Subject: hi\r\n\r\nStill here after the reload.\r\n';
/** A command longer than the lowered maxCommandBytes (300), shorter than the default (1024). */
const LONG_LINE = `NOOP ${'x'.repeat(600)}`;

async function setUp(t: TestContext, toml: string): Promise<{ cwd: string; toml: string }> {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw-alice\nbob:{PLAIN}pw-bob\n');
  await buildMaildir(join(cwd, 'mail'), 'alice', [{ content: MESSAGE }]);
  await writeFile(join(cwd, 'poplar.toml'), toml);
  return { cwd, toml: join(cwd, 'poplar.toml') };
}

/** The daemon with 2 workers, on the set-up's poplar.toml, users and mail. */
function startTwoWorkers(t: TestContext, cwd: string): Promise<RunningDaemon> {
  const files = ['--config', 'poplar.toml', '--users', 'users', '-m', 'mail'];
  return startDaemon(t, { cwd, args: ['--workers', '2', ...files, '--listen', '127.0.0.1', '-p', '0'] });
}

async function reload(d: RunningDaemon, predicate: (e: LogEntry) => boolean): Promise<LogEntry> {
  const since = d.logs.length;
  d.child.kill('SIGHUP');
  return d.waitForLog(predicate, { since });
}

const isReloaded = (e: LogEntry): boolean => e.msg.startsWith('configuration reloaded');

/**
 * Connects (to whichever worker takes it), sends CAPA (logged at debug level), then the long line;
 * resolves to the reply to the long line and the pid that served.
 */
async function longLine(d: RunningDaemon): Promise<{ reply: string; pid: number }> {
  const since = d.logs.length;
  const client = await Pop3TestClient.connect(d.port);
  try {
    const port = client.socket.localPort;
    assert.match((await client.multi('CAPA')).status, /^\+OK/);
    const reply = await client.command(LONG_LINE);
    const opened = await d.waitForLog((e) => e.msg === 'connection opened' && e['port'] === port, { since });
    return { reply, pid: opened['pid'] as number };
  } finally {
    client.close();
  }
}

test(
  'SIGHUP takes a new limit and log level in every worker, an open session goes on, and a replacement starts with them',
  LIMIT,
  async (t) => {
    const { cwd, toml } = await setUp(t, 'logLevel = "info"\n[limits]\nauthFailureDelayMs = 0\n');
    const d = await startTwoWorkers(t, cwd);
    const workers = [...new Set(d.logs.filter((e) => e.msg === 'listening').map((e) => e['pid'] as number))];
    assert.equal(workers.length, 2);
    const open = await Pop3TestClient.connect(d.port);
    t.after(() => {
      open.close();
    });
    assert.match(await open.login('alice', 'pw-alice'), /^\+OK/);
    assert.doesNotMatch((await longLine(d)).reply, /too long/);
    assert.ok(!d.logs.some((e) => e.level === 20), 'no debug lines at level info');

    await writeFile(toml, 'logLevel = "debug"\n[limits]\nauthFailureDelayMs = 0\nmaxCommandBytes = 300\n');
    const line = await reload(d, isReloaded);
    assert.equal(line.msg, 'configuration reloaded');
    assert.deepEqual(line['applied'], ['limits.maxCommandBytes', 'logLevel']);
    assert.deepEqual(line['needsRestart'], []);
    for (const pid of workers) {
      const applied = await d.waitForLog((e) => e.msg === 'limits applied' && e['pid'] === pid);
      assert.deepEqual(applied['limits'], { maxCommandBytes: 300 }, `worker ${String(pid)}`);
    }
    const served = await longLine(d);
    assert.match(served.reply, /^-ERR .*too long/);
    await d.waitForLog((e) => e.level === 20 && e['pid'] === served.pid);

    // The session opened before the reload goes on.
    const retr = await open.multi('RETR 1');
    assert.match(retr.status, /^\+OK/);
    assert.match(retr.lines.join('\n'), /Still here after the reload/);
    assert.match(await open.command('QUIT'), /^\+OK/);

    // A worker started after the reload has the new limit before it serves anyone.
    const victim = workers[0] as number;
    const since = d.logs.length;
    process.kill(victim, 'SIGKILL');
    const listening = await d.waitForLog(
      (e) => e.msg === 'listening' && !workers.includes(e['pid'] as number),
      {
        since,
      },
    );
    const replacement = listening['pid'] as number;
    for (let tries = 0, pid = 0; pid !== replacement; tries++) {
      assert.ok(tries < 10, `no connection reached the replacement worker ${String(replacement)}`);
      const attempt = await longLine(d);
      assert.match(attempt.reply, /^-ERR .*too long/, `worker ${String(attempt.pid)}`);
      pid = attempt.pid;
    }
    await d.waitForLog((e) => e.level === 20 && e['pid'] === replacement);
    assert.equal(await d.stop(), 0);
  },
);

test('a changed port is logged as needing a restart, and the old port keeps serving', LIMIT, async (t) => {
  const { cwd, toml } = await setUp(t, 'port = 0\n');
  const d = await startDaemon(t, {
    cwd,
    args: ['--config', 'poplar.toml', '--users', 'users', '-m', 'mail', '--listen', '127.0.0.1'],
  });
  await writeFile(toml, 'port = 1\n[limits]\nmaxCommandBytes = 300\n');
  const line = await reload(d, isReloaded);
  assert.equal(line.level, 40);
  assert.equal(line.msg, 'configuration reloaded; port changed but needs a restart');
  assert.deepEqual(line['applied'], ['limits.maxCommandBytes']);
  assert.deepEqual(line['needsRestart'], ['port']);
  assert.match((await longLine(d)).reply, /^-ERR .*too long/);
  const client = await Pop3TestClient.connect(d.port);
  assert.match(await client.login('alice', 'pw-alice'), /^\+OK/);
  assert.match(await client.command('QUIT'), /^\+OK/);
  client.close();
  assert.equal(await d.stop(), 0);
});

test(
  'a broken config file is refused on SIGHUP; the old one stays, in a replaced worker too',
  LIMIT,
  async (t) => {
    const { cwd, toml } = await setUp(t, '[limits]\nmaxCommandBytes = 300\n');
    const d = await startTwoWorkers(t, cwd);
    const open = await Pop3TestClient.connect(d.port);
    t.after(() => {
      open.close();
    });
    assert.match(await open.login('alice', 'pw-alice'), /^\+OK/);
    const port = open.socket.localPort;
    const holder = (await d.waitForLog((e) => e.msg === 'connection opened' && e['port'] === port))['pid'];

    await writeFile(toml, '[limits\nmaxCommandBytes = 2000\n');
    const refused = await reload(d, (e) => e.msg === 'configuration not reloaded; the old one stays in use');
    assert.equal(refused.level, 50);
    assert.match((refused['err'] as { message: string }).message, /poplar\.toml/);
    await writeFile(toml, '[limits]\nmaxCommandBytes = 99999999\n');
    await reload(d, (e) => e.msg === 'configuration not reloaded; the old one stays in use');
    assert.ok(!d.logs.some(isReloaded));
    assert.match((await longLine(d)).reply, /^-ERR .*too long/);
    assert.match((await open.multi('RETR 1')).status, /^\+OK/);

    // The file is still broken: a worker started now takes the primary's configuration, not the file.
    await writeFile(toml, 'not toml at all');
    const workers = [...new Set(d.logs.filter((e) => e.msg === 'listening').map((e) => e['pid'] as number))];
    const since = d.logs.length;
    process.kill(workers.find((pid) => pid !== holder) as number, 'SIGKILL');
    await d.waitForLog((e) => e.msg === 'listening' && !workers.includes(e['pid'] as number), { since });
    assert.match(await open.command('QUIT'), /^\+OK/);
    assert.equal(await d.stop(), 0);
  },
);
