// `poplarctl reload` (monitor CONFIG 0x07, Poplar's own) does what SIGHUP does: the TOML file is
// read again, a new limit is taken at once, the answer lists what changed and what needs a
// restart, and a broken file is refused (exit 1) with the old configuration kept.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { monitorPort, runCtl, type CtlResult } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';

const TOKEN = 'Reload-Ctl-Tok-1';
/** A command longer than the lowered maxCommandBytes (300), shorter than the default (1024). */
const LONG_LINE = `NOOP ${'x'.repeat(600)}`;

async function longLineReply(d: RunningDaemon): Promise<string> {
  const client = await Pop3TestClient.connect(d.port);
  try {
    return await client.command(LONG_LINE);
  } finally {
    client.close();
  }
}

function reload(t: TestContext, d: RunningDaemon, json = false): Promise<CtlResult> {
  const args = ['--port', String(monitorPort(d.started)), ...(json ? ['--json'] : []), 'reload'];
  return runCtl(t, args, { env: { POPLAR_TOKEN: TOKEN } });
}

test('poplarctl reload takes a new limit, lists what needs a restart, and refuses a broken file', async (t) => {
  const cwd = await tempDir(t);
  const toml = join(cwd, 'poplar.toml');
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  await writeFile(join(cwd, 'admins'), `ops:${await hashPassword(TOKEN, 'SSHA256')}\n`, { mode: 0o600 });
  await writeFile(toml, 'port = 0\n');
  const d = await startDaemon(t, {
    cwd,
    args: [
      '--config',
      'poplar.toml',
      '--users',
      'users',
      '--admins',
      'admins',
      '-m',
      'mail',
      '--listen',
      '127.0.0.1',
    ],
  });
  assert.doesNotMatch(await longLineReply(d), /too long/);

  await writeFile(toml, 'port = 1\n[limits]\nmaxCommandBytes = 300\n');
  const done = await reload(t, d, true);
  assert.equal(done.code, 0, done.stderr);
  assert.deepEqual(JSON.parse(done.stdout), { applied: ['limits.maxCommandBytes'], needsRestart: ['port'] });
  assert.match(await longLineReply(d), /^-ERR .*too long/);
  await d.waitForLog((e) => e.msg === 'configuration reloaded; port changed but needs a restart');

  await writeFile(toml, 'port = 1\n[limits]\nmaxCommandBytes = 2000\n');
  const again = await reload(t, d);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(
    again.stdout,
    'configuration reloaded; applied: limits.maxCommandBytes\nchanged but needs a restart: port\n',
  );

  await writeFile(toml, '[limits\n');
  const refused = await reload(t, d);
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    'poplarctl: the configuration was not reloaded (the old one stays in use): the server log says why (status 0x06)\n',
  );
  await d.waitForLog((e) => e.msg === 'configuration not reloaded; the old one stays in use');
  assert.doesNotMatch(await longLineReply(d), /too long/, 'the limit of the last good file stays');
  assert.equal(await d.stop(), 0);
});
