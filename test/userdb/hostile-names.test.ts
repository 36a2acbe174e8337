// Names that are not valid user names (SQL and LDAP filter metacharacters, NUL, 1000 bytes) never
// reach the database: they are refused as any wrong login, also while the database is down.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DatabaseAuthenticator, type UserdbBackend } from '../../src/auth/userdb/authenticator.js';
import { PostgresUsers } from '../../src/auth/userdb/postgres.js';
import { perFile } from '../helpers/engines/engine-process.js';
import { startPostgres } from '../helpers/engines/postgres.js';

const HOSTILE = ['%', '*', ')(', 'a)(uid=*', "x' OR '1'='1", 'a\0b', 'a'.repeat(1000), '_%', 'alice%'];
const postgres = perFile(startPostgres);
const request = (username: string, password: string) => ({
  mechanism: 'USER' as const,
  username,
  password,
  remoteAddress: '127.0.0.1',
  isTls: true,
  signal: new AbortController().signal,
});

test('hostile names stored in PostgreSQL never log in, and a LIKE in the query cannot widen a name', async (t) => {
  const db = await postgres();
  await db.createMailboxTable('hostile.mailbox');
  for (const name of ['alice', ...HOSTILE.filter((n) => !n.includes('\0') && n.length < 255)])
    await db.addMailbox(name, '{PLAIN}pw', { table: 'hostile.mailbox' });
  // A careless query (LIKE): a name is still a bound parameter, and `%` never gets there.
  const users = new DatabaseAuthenticator(
    new PostgresUsers({
      url: db.url({ withPassword: true }),
      passwordQuery: 'SELECT password FROM hostile.mailbox WHERE username LIKE $1',
    }),
    { cacheTtlMs: 60_000 },
  );
  t.after(() => users.close());
  assert.deepEqual(await users.authenticate(request('alice', 'pw')), { ok: true, user: { name: 'alice' } });
  for (const name of HOSTILE) {
    assert.deepEqual(await users.authenticate(request(name, 'pw')), { ok: false, reason: 'invalid' }, name);
  }
});

test('hostile names never reach the backend, also while it is down: [AUTH], never [SYS/TEMP]', async () => {
  const asked: string[] = [];
  const down: UserdbBackend = {
    kind: 'postgresql',
    location: 'postgresql://test',
    hasPasswords: true,
    findUser: (name) => {
      asked.push(name);
      return Promise.reject(new Error('connect ECONNREFUSED'));
    },
    ping: () => Promise.reject(new Error('down')),
    close: () => Promise.resolve(),
  };
  const users = new DatabaseAuthenticator(down, { cacheTtlMs: 60_000 });
  for (const name of HOSTILE) {
    assert.deepEqual(await users.authenticate(request(name, 'pw')), { ok: false, reason: 'invalid' }, name);
  }
  assert.deepEqual(asked, []);
  assert.deepEqual(await users.authenticate(request('alice', 'pw')), { ok: false, reason: 'temporary' });
  assert.deepEqual(asked, ['alice']);
});
