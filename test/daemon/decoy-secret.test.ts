// The daemon's decoy secret (security probe finding 2): made once in <maildir>/.poplar-secret (0600)
// and handed to every worker, so that SCRAM-SHA-256's made-up salt for a name that does not exist
// is the same from every worker and after a restart, as a real user's is.
import assert from 'node:assert/strict';
import { mkdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { runPoplar, startDaemon } from '../helpers/daemon.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const ARGS = ['--users', 'users', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'];

/** The salt in SCRAM's server-first message for `user` (the connection is closed without an answer). */
async function saltOf(port: number, user: string): Promise<string> {
  const client = await Pop3TestClient.connect(port);
  try {
    const line = await client.command(`AUTH SCRAM-SHA-256 ${b64(`n,,n=${user},r=abcdefghijkl`)}`);
    assert.match(line, /^\+ /);
    const serverFirst = Buffer.from(line.slice(2), 'base64').toString('utf8');
    return /,s=([^,]+),/.exec(serverFirst)?.[1] ?? assert.fail(serverFirst);
  } finally {
    client.close();
  }
}

for (const workers of ['2', '1']) {
  test(`with ${workers} worker(s), an unknown name gets one salt from every worker and the same after a restart`, async (t) => {
    const cwd = await realpath(await tempDir(t));
    await writeFile(join(cwd, 'users'), `dave:${await hashPassword('pw-dave', 'SCRAM-SHA-256')}\n`);
    const salts = async (): Promise<Set<string>> => {
      const daemon = await startDaemon(t, { args: [...ARGS, '--workers', workers], cwd });
      const seen = new Set<string>();
      // Connections go to the workers in turn: eight reach both.
      for (let i = 0; i < 8; i++) seen.add(await saltOf(daemon.port, 'nobody'));
      assert.equal(await daemon.stop(), 0);
      return seen;
    };
    const first = await salts();
    assert.equal(first.size, 1, `salts for nobody: ${[...first].join(' ')}`);
    const path = join(cwd, 'mail', '.poplar-secret');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.match(await readFile(path, 'utf8'), /^[0-9a-f]{64}\n$/);
    assert.deepEqual(await salts(), first, 'after a restart');
  });
}

test('a decoy secret file that holds no secret stops the daemon at start, naming it', async (t) => {
  const cwd = await realpath(await tempDir(t));
  await writeFile(join(cwd, 'users'), 'alice:{PLAIN}pw\n');
  await mkdir(join(cwd, 'mail'), { mode: 0o700 });
  await writeFile(join(cwd, 'mail', '.poplar-secret'), 'not hex\n', { mode: 0o600 });
  const run = await runPoplar(t, ARGS, { cwd });
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`decoy secret file ${join(cwd, 'mail', '.poplar-secret')} does not hold`),
  );
});
