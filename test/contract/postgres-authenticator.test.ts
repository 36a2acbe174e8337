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
import type { UserPolicyOverrides } from '../../src/policy.js';
import { formatPolicyValue } from '../../src/policy-fields.js';

/** A policy as the test table's columns hold it: text, integers, bigint and boolean. */
const columnsOf = (policy: UserPolicyOverrides | undefined): Record<string, string | number | boolean> => {
  const columns: Record<string, string | number | boolean> = {};
  if (policy?.delete !== undefined) columns['poplar_delete'] = formatPolicyValue('delete', policy.delete);
  if (policy?.expire !== undefined) columns['poplar_expire'] = formatPolicyValue('expire', policy.expire);
  if (policy?.loginDelaySeconds !== undefined) columns['poplar_login_delay'] = policy.loginDelaySeconds;
  if (policy?.maxSessions !== undefined) columns['poplar_max_sessions'] = policy.maxSessions;
  if (policy?.downloadPerDay !== undefined) columns['poplar_download_per_day'] = policy.downloadPerDay;
  if (policy?.appPasswordsOnly !== undefined) columns['poplar_app_passwords_only'] = policy.appPasswordsOnly;
  return columns;
};

const POLICY_COLUMNS =
  'poplar_delete, poplar_expire, poplar_login_delay, poplar_max_sessions, poplar_download_per_day, poplar_app_passwords_only';

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
  policies: Readonly<Record<string, UserPolicyOverrides>>,
): Promise<AuthenticatorUnderTest> {
  const db = await postgres();
  const table = `contract${++schemas}.mailbox`;
  await db.createMailboxTable(table);
  await db.addPolicyColumns(table);
  let index = 0;
  for (const [name, password] of Object.entries(users)) {
    const s = schemeOf(index++);
    await db.addMailbox(name, s === 'PLAIN' ? `{PLAIN}${password}` : await hashPassword(password, s), {
      table,
      policy: columnsOf(policies[name]),
    });
  }
  const backend = new PostgresUsers({
    url: db.url(),
    password: db.password,
    passwordQuery: `SELECT password, ${POLICY_COLUMNS} FROM ${table} WHERE username = $1 AND active = true`,
  });
  const authenticator = new DatabaseAuthenticator(backend, { scheme, cacheTtlMs: 3_600_000 });
  t.after(() => authenticator.close());
  return { authenticator, offers };
}

// APOP and CRAM-MD5 are offered when the configured scheme is PLAIN, SCRAM-SHA-256 when it is
// SCRAM-SHA-256: a database's users cannot all be seen, so the operator's choice says it.
describeAuthenticator('DatabaseAuthenticator on PostgreSQL, passwordScheme PLAIN', (t, users, _o, policies) =>
  inPostgres(t, users, () => 'PLAIN', 'PLAIN', ['APOP', 'CRAM-MD5'], policies),
);

describeAuthenticator(
  'DatabaseAuthenticator on PostgreSQL, passwordScheme SCRAM-SHA-256',
  (t, users, _o, policies) =>
    inPostgres(t, users, () => 'SCRAM-SHA-256', 'SCRAM-SHA-256', ['SCRAM-SHA-256'], policies),
);

const MIXED = ['PLAIN', 'SCRAM-SHA-256', 'SSHA512', 'SHA512-CRYPT', 'ARGON2ID', 'BLF-CRYPT', 'PBKDF2'];
describeAuthenticator('DatabaseAuthenticator on PostgreSQL, mixed schemes', (t, users, _o, policies) =>
  inPostgres(t, users, (index) => MIXED[index % MIXED.length] ?? 'PLAIN', 'PBKDF2', [], policies),
);
