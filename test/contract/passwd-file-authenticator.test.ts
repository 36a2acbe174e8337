import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { OAuthVerifier } from '../../src/auth/oauth/verifier.js';
import { PasswdFileAuthenticator } from '../../src/auth/passwd-file.js';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { isValidUserName } from '../../src/user.js';
import { formatPolicyFields } from '../../src/policy-fields.js';
import type { UserPolicyOverrides } from '../../src/policy.js';
import { tempDir } from '../helpers/temp-dir.js';
import {
  describeAuthenticator,
  type AuthenticatorCapability,
  type AuthenticatorUnderTest,
} from './authenticator.contract.js';

/**
 * A users file with each user's password stored in the scheme `schemeOf` picks for its line; the lines
 * with names that are not valid are written too (the file skips them).
 */
async function passwdFile(
  t: TestContext,
  users: Readonly<Record<string, string>>,
  schemeOf: (index: number) => string,
  options: {
    readonly oauth?: OAuthVerifier;
    readonly offers: readonly AuthenticatorCapability[];
    readonly policies: Readonly<Record<string, UserPolicyOverrides>>;
  },
): Promise<AuthenticatorUnderTest> {
  const lines = await Promise.all(
    Object.entries(users).map(async ([name, password], index) => {
      const scheme = schemeOf(index);
      const policy = options.policies[name];
      // The policy as extra fields, among Dovecot's own (which Poplar ignores).
      const extra =
        policy === undefined
          ? ''
          : `:1000:1000::/home/${name}::userdb_quota_rule=*:storage=1G ${formatPolicyFields(policy)}`;
      return `${name}:${scheme === 'PLAIN' ? `{PLAIN}${password}` : await hashPassword(password, scheme)}${extra}`;
    }),
  );
  const path = join(await tempDir(t), 'users');
  await writeFile(path, `${lines.join('\n')}\n`);
  const authenticator = new PasswdFileAuthenticator(path, options.oauth ? { oauth: options.oauth } : {});
  const problems = await authenticator.reload();
  assert.equal(problems.length, Object.keys(users).filter((name) => !isValidUserName(name)).length);
  t.after(() => {
    authenticator.close();
  });
  return { authenticator, offers: options.offers };
}

// APOP and CRAM-MD5 are offered only when every user is {PLAIN}; SCRAM-SHA-256 only when every
// user is {SCRAM-SHA-256}; bearer tokens when there is a verifier.
describeAuthenticator('PasswdFileAuthenticator, every user {PLAIN}', (t, users, _oauth, policies) =>
  passwdFile(t, users, () => 'PLAIN', { offers: ['APOP', 'CRAM-MD5'], policies }),
);

describeAuthenticator('PasswdFileAuthenticator, every user {SCRAM-SHA-256}', (t, users, _oauth, policies) =>
  passwdFile(t, users, () => 'SCRAM-SHA-256', { offers: ['SCRAM-SHA-256'], policies }),
);

describeAuthenticator(
  'PasswdFileAuthenticator, {PBKDF2} with a token verifier',
  (t, users, oauth, policies) =>
    passwdFile(t, users, () => 'PBKDF2', { oauth, offers: ['BEARER'], policies }),
);

const MIXED = ['PLAIN', 'SCRAM-SHA-256', 'SSHA512', 'SHA512-CRYPT', 'ARGON2ID', 'BLF-CRYPT'];
describeAuthenticator('PasswdFileAuthenticator, mixed schemes', (t, users, _oauth, policies) =>
  passwdFile(t, users, (index) => MIXED[index % MIXED.length] ?? 'PLAIN', { offers: [], policies }),
);
