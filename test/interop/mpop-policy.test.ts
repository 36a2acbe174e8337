// mpop and RFC 2449's LOGIN-DELAY, against the real daemon: a users-file line with
// poplar_login_delay. mpop's first run logs in and fetches; a second run within the delay is
// refused with -ERR [LOGIN-DELAY], which mpop reports, and fetches nothing.
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from './require-binary.js';
import { clientEnv, describeRun, runClient } from './run-client.js';

test(
  'mpop: a second run within poplar_login_delay gets [LOGIN-DELAY] and says so',
  { timeout: 60_000 },
  async (t) => {
    const mpop = await requireBinary(t, 'mpop');
    if (mpop === undefined) return;
    const cwd = await tempDir(t);
    await writeFile(join(cwd, 'users'), 'alice:{PLAIN}mpop-Secret1:::::: poplar_login_delay=900\n');
    await buildMaildir(join(cwd, 'mail'), 'alice', [{ content: 'Subject: one\r\n\r\nfirst\r\n' }]);
    const d = await startDaemon(t, {
      cwd,
      args: ['--workers', '1', '--users', 'users', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'],
    });
    const home = join(cwd, 'home');
    const inbox = join(cwd, 'inbox');
    await mkdir(home, { mode: 0o700 });
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(inbox, sub), { recursive: true });
    const conf = join(cwd, 'mpoprc');
    await writeFile(
      conf,
      [
        'account default',
        'host 127.0.0.1',
        `port ${d.port}`,
        'tls off',
        'auth user',
        'user alice',
        'password mpop-Secret1',
        `uidls_file ${join(cwd, 'uidls')}`,
        `delivery maildir ${inbox}`,
        'keep on',
        'timeout 20',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await chmod(conf, 0o600);
    const run = () => runClient(mpop, ['-C', conf], { env: clientEnv(home) });

    const first = await run();
    assert.equal(first.code, 0, describeRun('mpop', first));
    assert.equal((await readdir(join(inbox, 'new'))).length, 1);

    const second = await run();
    assert.notEqual(second.code, 0, describeRun('mpop', second));
    const said = `${second.stderr}${second.stdout.toString()}`;
    assert.match(said, /LOGIN-DELAY/, describeRun('mpop', second));
    assert.match(said, /logged in too recently/, describeRun('mpop', second));
    assert.equal((await readdir(join(inbox, 'new'))).length, 1, 'nothing more fetched');
    t.diagnostic(`mpop said: ${said.trim()}`);
    assert.equal(await d.stop(), 0);
  },
);
