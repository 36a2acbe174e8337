// Security probe finding 5: SHA-crypt's cost grows with the password's length, and the hash pool's
// queue had no bound. A password over maxPasswordBytes is refused unhashed (USER/PASS, SASL PLAIN
// and LOGIN); when maxQueuedJobs hashes wait already, a login gets -ERR [SYS/TEMP] at once; and a
// waiting hash whose client went away is never computed.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { PasswdFileAuthenticator } from '../../src/auth/passwd-file.js';
import { configureHashPool, defaultHashPool } from '../../src/auth/passwords/hash-pool.js';
import { findScheme, hashPassword } from '../../src/auth/passwords/registry.js';
import { PASSWORD_LOGINS } from '../helpers/password-logins.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const TEMPORARY = '-ERR [SYS/TEMP] authentication is temporarily unavailable, try again later';

async function serveFile(t: TestContext, lines: readonly string[], limits = {}): Promise<number> {
  const path = join(await tempDir(t), 'users');
  await writeFile(path, lines.map((line) => `${line}\n`).join(''));
  const users = new PasswdFileAuthenticator(path);
  await users.reload();
  t.after(() => {
    users.close();
  });
  const { port } = await startServer(t, {
    authenticator: users,
    mailboxes: {},
    limits: { maxAuthFailures: 100, ...limits },
  });
  return port;
}

async function connect(t: TestContext, port: number): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  return client;
}

describe('maxPasswordBytes', () => {
  const LIMIT = 64;
  const exact = 'p'.repeat(LIMIT);
  const REFUSED: Record<string, string> = {
    'USER/PASS': `-ERR [AUTH] password too long: at most ${LIMIT} octets`,
    'AUTH PLAIN': `-ERR [AUTH] authentication failed: password too long: at most ${LIMIT} octets`,
    'AUTH LOGIN': `-ERR [AUTH] authentication failed: password too long: at most ${LIMIT} octets`,
  };

  for (const [method, login] of Object.entries(PASSWORD_LOGINS)) {
    test(`${method}: one byte over the limit is refused unhashed, for a user and an unknown name alike; the limit itself logs in`, async (t) => {
      const port = await serveFile(t, [`alice:{PLAIN}${exact}`], { maxPasswordBytes: LIMIT });
      const plain = findScheme('PLAIN');
      assert.ok(plain !== undefined);
      const verify = t.mock.method(plain, 'verify');
      const client = await connect(t, port);
      for (const password of [`${exact}p`, 'é'.repeat(LIMIT / 2 + 1)]) {
        for (const user of ['alice', 'nobody']) {
          assert.equal(
            await login(client, user, password),
            REFUSED[method],
            `${user}, ${password.length} characters`,
          );
        }
      }
      assert.equal(verify.mock.callCount(), 0, 'nothing was hashed');
      assert.equal(await login(client, 'alice', exact), '+OK alice has 0 messages (0 octets)');
    });
  }

  test('the default is 1024 octets', async (t) => {
    const port = await serveFile(t, [`alice:{PLAIN}${'p'.repeat(1024)}`]);
    const client = await connect(t, port);
    // On a continuation line: the command line itself is capped at maxCommandBytes (1024).
    assert.equal(await client.command('AUTH PLAIN'), '+ ');
    assert.equal(
      await client.command(b64(`\0alice\0${'p'.repeat(1025)}`)),
      '-ERR [AUTH] authentication failed: password too long: at most 1024 octets',
    );
    assert.equal(await client.command('AUTH PLAIN'), '+ ');
    assert.equal(
      await client.command(b64(`\0alice\0${'p'.repeat(1024)}`)),
      '+OK alice has 0 messages (0 octets)',
    );
  });
});

describe('the hash pool queue', () => {
  // A worker that takes jobs and never answers: the first job holds the only worker.
  const SILENT_WORKER = new URL(
    `data:text/javascript,${encodeURIComponent("import { parentPort } from 'node:worker_threads'; parentPort.on('message', () => {});")}`,
  );
  after(() => configureHashPool({}));

  /** Polls the pool until `predicate` holds (the server queues a job a few turns after PASS arrives). */
  async function until(predicate: () => boolean): Promise<void> {
    while (!predicate()) await new Promise((resolve) => setImmediate(resolve));
  }

  test("full: a login gets -ERR [SYS/TEMP] at once; a dropped client's waiting job is cancelled", async (t) => {
    // Made on the real worker before the silent one is configured.
    const field = await hashPassword('pw', 'SHA512-CRYPT');
    // A long job deadline: a waiting job that is not cancelled stays queued, and the test times out.
    await configureHashPool({ size: 1, maxQueuedJobs: 1, jobTimeoutMs: 600_000, workerUrl: SILENT_WORKER });
    // Before the server's own after hook (they run in order): fails the held job, so that it can close.
    t.after(() => configureHashPool({}));
    const port = await serveFile(t, [`s1:${field}`]);
    const pool = (): ReturnType<typeof defaultHashPool> => defaultHashPool();

    const running = await connect(t, port);
    assert.equal(await running.command('USER s1'), '+OK send PASS');
    running.send('PASS first');
    await until(() => pool().stats().busy === 1);

    const waiting = await Pop3TestClient.connect(port);
    assert.equal(await waiting.command('USER s1'), '+OK send PASS');
    waiting.send('PASS second');
    await until(() => pool().stats().queued === 1);

    const refused = await connect(t, port);
    assert.equal(await refused.command('USER nobody'), '+OK send PASS');
    assert.equal(await refused.command('PASS third'), TEMPORARY, 'an unknown name alike');
    assert.equal(await refused.command('USER s1'), '+OK send PASS');
    assert.equal(await refused.command('PASS third'), TEMPORARY);

    // A reset, as the probe's attacker sent: the socket closes and the session's signal aborts. (A
    // FIN alone is a half-close: the client may still read the answer, so its hash goes on.)
    waiting.socket.resetAndDestroy();
    await until(() => pool().stats().queued === 0);
    assert.equal(pool().stats().busy, 1, 'the running job goes on; only the waiting one left');
  });
});
