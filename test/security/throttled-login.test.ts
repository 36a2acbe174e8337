// Security probe finding 7: a login that passed its password check but waits out a throttle
// penalty is checked again after the wait. A user deleted (the monitor's deleteUser) or given a new
// password meanwhile gets -ERR [AUTH], not a session.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { PasswdFileAuthenticator } from '../../src/auth/passwd-file.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { WaitableLogger } from '../helpers/recording-logger.js';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';

const INVALID = '-ERR [AUTH] invalid user name or password';

async function setUp(t: TestContext) {
  const path = join(await tempDir(t), 'users');
  await writeFile(path, 'alice:{PLAIN}pw-alice\nbob:{PLAIN}pw-bob\ncarol:{PLAIN}pw-carol\n');
  const users = new PasswdFileAuthenticator(path);
  await users.reload();
  t.after(() => {
    users.close();
  });
  const logger = new WaitableLogger();
  const { port } = await startServer(t, {
    authenticator: users,
    logger,
    mailboxes: {},
    // Long enough for the test to change the users file while a login waits.
    limits: { authFailureDelayMs: 1000, maxAuthFailures: 10 },
  });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  /** A failed login from this address, so that the next attempt waits out a penalty. */
  const fail = async (): Promise<void> => {
    assert.equal(await client.command('USER nobody'), '+OK send PASS');
    assert.equal(await client.command('PASS wrong'), INVALID);
  };
  /** Logs in as `user` from a throttled address; `meanwhile` runs while the penalty is served. */
  const throttledLogin = async (user: string, meanwhile: () => Promise<unknown>): Promise<string> => {
    const throttled = logger.messages.filter((m) => m === 'throttled login attempt').length;
    const login = Pop3TestClient.connect(port).then(async (other) => {
      try {
        assert.equal(await other.command(`USER ${user}`), '+OK send PASS');
        return await other.command(`PASS pw-${user}`);
      } finally {
        other.close();
      }
    });
    await logger.logged('throttled login attempt', throttled + 1);
    await meanwhile();
    return login;
  };
  return { users, fail, throttledLogin };
}

test('a user deleted while their login waits out a throttle penalty gets -ERR [AUTH]', async (t) => {
  const { users, fail, throttledLogin } = await setUp(t);
  await fail();
  assert.equal(await throttledLogin('alice', () => users.deleteUser('alice')), INVALID);
});

test('a user whose password changes while their login waits gets -ERR [AUTH]', async (t) => {
  const { users, fail, throttledLogin } = await setUp(t);
  await fail();
  assert.equal(await throttledLogin('bob', () => users.setPassword('bob', 'new', 'PLAIN')), INVALID);
});

test('a throttled login whose user is left alone, or another user changed, still logs in', async (t) => {
  const { users, fail, throttledLogin } = await setUp(t);
  await fail();
  assert.equal(
    await throttledLogin('carol', () => users.deleteUser('alice')),
    '+OK carol has 0 messages (0 octets)',
  );
});
