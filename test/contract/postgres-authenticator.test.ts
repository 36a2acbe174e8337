import { DatabaseAuthenticator } from '../../src/auth/userdb/authenticator.js';
import { PostgresUsers } from '../../src/auth/userdb/postgres.js';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { perFile } from '../helpers/engines/engine-process.js';
import { startPostgres } from '../helpers/engines/postgres.js';
import {
  describeAuthenticator,
  type AuthenticatorCapability,
  type AuthenticatorUnderTest,
} from './authenticator.contract.js';
import type { TestContext } from 'node:test';

// One real PostgreSQL for the file; each backend built gets its own schema with Postfixadmin's
// mailbox table, and is read with the default passwordQuery's shape.
const postgres = perFile(startPostgres);
let schemas = 0;

async function inPostgres(
  t: TestContext,
  users: Readonly<Record<string, string>>,
  schemeOf: (index: number) => string,
  scheme: string,
  offers: readonly AuthenticatorCapability[],
): Promise<AuthenticatorUnderTest> {
  const db = await postgres();
  const table = `contract${++schemas}.mailbox`;
  await db.createMailboxTable(table);
  let index = 0;
  for (const [name, password] of Object.entries(users)) {
    const s = schemeOf(index++);
    await db.addMailbox(name, s === 'PLAIN' ? `{PLAIN}${password}` : await hashPassword(password, s), {
      table,
    });
  }
  const backend = new PostgresUsers({
    url: db.url(),
    password: db.password,
    passwordQuery: `SELECT password FROM ${table} WHERE username = $1 AND active = true`,
  });
  const authenticator = new DatabaseAuthenticator(backend, { scheme, cacheTtlMs: 3_600_000 });
  t.after(() => authenticator.close());
  return { authenticator, offers };
}

// APOP and CRAM-MD5 are offered when the configured scheme is PLAIN, SCRAM-SHA-256 when it is
// SCRAM-SHA-256: a database's users cannot all be seen, so the operator's choice says it.
describeAuthenticator('DatabaseAuthenticator on PostgreSQL, passwordScheme PLAIN', (t, users) =>
  inPostgres(t, users, () => 'PLAIN', 'PLAIN', ['APOP', 'CRAM-MD5']),
);

describeAuthenticator('DatabaseAuthenticator on PostgreSQL, passwordScheme SCRAM-SHA-256', (t, users) =>
  inPostgres(t, users, () => 'SCRAM-SHA-256', 'SCRAM-SHA-256', ['SCRAM-SHA-256']),
);

const MIXED = ['PLAIN', 'SCRAM-SHA-256', 'SSHA512', 'SHA512-CRYPT', 'ARGON2ID', 'BLF-CRYPT', 'PBKDF2'];
describeAuthenticator('DatabaseAuthenticator on PostgreSQL, mixed schemes', (t, users) =>
  inPostgres(t, users, (index) => MIXED[index % MIXED.length] ?? 'PLAIN', 'PBKDF2', []),
);
