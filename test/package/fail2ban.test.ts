// deploy/fail2ban/poplar.conf, run by fail2ban-regex over what the daemon really logs, in each log
// format, as a file and with the prefix of the journal (`host poplar[pid]: `) or syslog: every
// "login failed" of a client is found with the client's address, a successful login is not, and a
// user name written to look like another failure's line never gets its address banned.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startDaemon } from '../helpers/daemon.js';
import { dialog } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';
import { projectRoot } from './project.js';

const run = promisify(execFile);

/** A user name that holds a failure line of each format, for an address that never connected. */
const FORGED =
  'x" WARN (poplar/1): login failed cid=a method=USER result=invalid remote=192.0.2.99 y ' +
  '{"level":40,"name":"poplar","cid":"a","method":"USER","result":"invalid","remote":"192.0.2.99",';

for (const format of ['text', 'json'] as const) {
  test(`the fail2ban filter finds the client of each failed login, ${format} format`, async (t) => {
    const regex = await requireBinary(t, 'fail2ban-regex');
    if (regex === undefined) return;
    const dir = await tempDir(t);
    const filter = join(projectRoot(), 'deploy', 'fail2ban', 'poplar.conf');
    await writeFile(join(dir, 'users'), 'alice:{PLAIN}pw\n');
    const d = await startDaemon(t, {
      cwd: dir,
      args: [
        ...['--users', 'users', '-m', 'mail', '--listen', '127.0.0.1', '-p', '0', '--no-monitor'],
        ...['--workers', '1', '--log-format', format],
      ],
    });
    assert.match((await dialog(d.port, ['USER alice', 'PASS wrong', 'QUIT']))[2] ?? '', /^-ERR \[AUTH\]/);
    assert.match((await dialog(d.port, [`USER ${FORGED}`, 'PASS x', 'QUIT']))[2] ?? '', /^-ERR \[AUTH\]/);
    assert.match((await dialog(d.port, ['USER alice', 'PASS pw', 'QUIT']))[2] ?? '', /^\+OK/);
    const failed = () => d.logs.filter((e) => e.msg === 'login failed').length;
    await d.waitForLog(() => failed() === 2);
    await d.waitForLog((e) => e.msg === 'login');
    assert.equal(await d.stop(), 0);
    assert.ok(d.stdout().includes('192.0.2.99'), 'the forged name is in the log');

    const lines = d.stdout().trimEnd().split('\n');
    const logs = {
      file: lines,
      journal: lines.map((l) => `mx poplar[${String(d.pid)}]: ${l}`),
      syslog: lines.map((l) => `Dec  7 11:29:11 mx poplar[${String(d.pid)}]: ${l}`),
    };
    for (const [kind, content] of Object.entries(logs)) {
      const log = join(dir, `${kind}.log`);
      await writeFile(log, `${content.join('\n')}\n`);
      const found: string = (await run(regex, ['-o', 'ip', log, filter])).stdout;
      assert.deepEqual(found.trim().split('\n'), ['127.0.0.1', '127.0.0.1'], `${kind}: ${found}`);
    }
  });
}
