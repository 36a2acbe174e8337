// A worker that replaces a dead one starts from the primary's state, and what changes while it is
// being built (here a SIGHUP with a lower limit) reaches it before it listens: it never serves with
// settings older than the other workers'. The replacement is held half-way by its OAuth client
// secret file, made a FIFO: it has its state and waits for the test to write the secret.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };
/** A command longer than the lowered maxCommandBytes (300), shorter than the default (1024). */
const LONG_LINE = `NOOP ${'x'.repeat(600)}`;
/** Never asked: no bearer token is sent. */
const OAUTH =
  '[oauth]\nintrospectionUrl = "http://127.0.0.1:9/introspect"\nclientId = "poplar"\nclientSecretFile = "secret"\n';

/** The reply to the long line on a new connection, and the pid of the worker that served it. */
async function longLine(d: RunningDaemon): Promise<{ reply: string; pid: number }> {
  const since = d.logs.length;
  const client = await Pop3TestClient.connect(d.port);
  try {
    const port = client.socket.localPort;
    const reply = await client.command(LONG_LINE);
    const opened = await d.waitForLog((e) => e.msg === 'connection opened' && e['port'] === port, { since });
    return { reply, pid: opened['pid'] as number };
  } finally {
    client.close();
  }
}

test('a SIGHUP while a replacement worker is being built reaches it before it listens', LIMIT, async (t) => {
  if (process.platform === 'win32') {
    t.skip('FIFOs are a POSIX feature');
    return;
  }
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw-alice\n');
  await writeFile(join(cwd, 'secret'), 'oauth-secret\n');
  const toml = join(cwd, 'poplar.toml');
  await writeFile(toml, OAUTH);
  const d = await startDaemon(t, {
    cwd,
    args: [
      ...['--workers', '2', '--config', 'poplar.toml', '--users', 'users', '-m', 'mail'],
      ...['--listen', '127.0.0.1', '-p', '0'],
    ],
  });
  const workers = [...new Set(d.logs.filter((e) => e.msg === 'listening').map((e) => e['pid'] as number))];
  assert.equal(workers.length, 2);
  const [victim, survivor] = workers as [number, number];

  // Read by the primary at start; a replacement reads it again after it has its state.
  const fifo = join(cwd, 'secret');
  await rm(fifo);
  execFileSync('mkfifo', [fifo]);
  t.after(() => {
    // Opening the read end without waiting lets a writer still waiting below go on.
    try {
      closeSync(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
    } catch {
      // already removed
    }
  });
  process.kill(victim, 'SIGKILL');
  // Opens once the replacement opens the FIFO to read it: it was handed its state and waits.
  const writer = await open(fifo, 'w');

  await writeFile(toml, `[limits]\nmaxCommandBytes = 300\n${OAUTH}`);
  const since = d.logs.length;
  d.child.kill('SIGHUP');
  await d.waitForLog((e) => e.msg === 'configuration reloaded', { since });
  await d.waitForLog((e) => e.msg === 'limits applied' && e['pid'] === survivor, { since });

  await writer.writeFile('oauth-secret\n');
  await writer.close();
  const listening = await d.waitForLog(
    (e) => e.msg === 'listening' && !workers.includes(e['pid'] as number),
    { since },
  );
  const replacement = listening['pid'] as number;
  const applied = d.logs.findIndex((e) => e.msg === 'limits applied' && e['pid'] === replacement);
  assert.ok(applied !== -1 && applied < d.logs.indexOf(listening), 'limits applied before listening');
  assert.deepEqual(d.logs[applied]?.['limits'], { maxCommandBytes: 300 });
  for (let tries = 0, pid = 0; pid !== replacement; tries++) {
    assert.ok(tries < 10, `no connection reached the replacement worker ${String(replacement)}`);
    const attempt = await longLine(d);
    assert.match(attempt.reply, /^-ERR .*too long/, `worker ${String(attempt.pid)}`);
    pid = attempt.pid;
  }
  assert.equal(await d.stop(), 0);
});
