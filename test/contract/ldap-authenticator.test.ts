import type { TestContext } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { DatabaseAuthenticator } from '../../src/auth/userdb/authenticator.js';
import { LdapUsers } from '../../src/auth/userdb/ldap.js';
import { isValidUserName } from '../../src/user.js';
import type { UserPolicyOverrides } from '../../src/policy.js';
import { formatPolicyValue, POLICY_FIELDS, POLICY_KEYS } from '../../src/policy-fields.js';

/** A policy as the entry's poplarUser attributes hold it (the users file's values). */
const attributesOf = (policy: UserPolicyOverrides | undefined): Record<string, string> | undefined =>
  policy === undefined
    ? undefined
    : Object.fromEntries(
        POLICY_KEYS.filter((key) => policy[key] !== undefined).map((key) => [
          POLICY_FIELDS[key].ldap,
          formatPolicyValue(key, policy[key] as never),
        ]),
      );
import { perFile } from '../helpers/engines/engine-process.js';
import { SERVICE_DN, SERVICE_PASSWORD, startSlapd } from '../helpers/engines/slapd.js';
import {
  describeAuthenticator,
  type AuthenticatorCapability,
  type AuthenticatorUnderTest,
} from './authenticator.contract.js';

// One real slapd for the file; each backend built gets its own organizational unit as its base DN.
// Names that are not valid are left out: they never reach the directory.
const slapd = perFile((cleanup) => startSlapd(cleanup));
let units = 0;

async function inLdap(
  t: TestContext,
  users: Readonly<Record<string, string>>,
  store: (password: string, index: number) => Promise<string>,
  options: {
    readonly passwordAttribute?: string;
    readonly scheme: string;
    readonly offers: readonly AuthenticatorCapability[];
    readonly policies: Readonly<Record<string, UserPolicyOverrides>>;
  },
): Promise<AuthenticatorUnderTest> {
  const directory = await slapd();
  const baseDn = await directory.addOu(`contract${++units}`);
  let index = 0;
  for (const [uid, password] of Object.entries(users)) {
    if (!isValidUserName(uid)) continue;
    const policy = attributesOf(options.policies[uid]);
    await directory.addUser(
      { uid, userPassword: await store(password, index++), ...(policy === undefined ? {} : { policy }) },
      baseDn,
    );
  }
  const backend = new LdapUsers({
    url: directory.url,
    baseDn,
    bindDn: SERVICE_DN,
    bindPassword: SERVICE_PASSWORD,
    ...(options.passwordAttribute === undefined ? {} : { passwordAttribute: options.passwordAttribute }),
  });
  const authenticator = new DatabaseAuthenticator(backend, { scheme: options.scheme, cacheTtlMs: 3_600_000 });
  t.after(() => authenticator.close());
  return { authenticator, offers: options.offers };
}

const MIXED = ['SSHA', 'SSHA512', 'SHA512-CRYPT', 'PBKDF2', 'ARGON2ID', 'BLF-CRYPT', 'SCRAM-SHA-256'];

describeAuthenticator(
  'DatabaseAuthenticator on LDAP, userPassword of mixed schemes',
  (t, users, _o, policies) =>
    inLdap(t, users, (password, i) => hashPassword(password, MIXED[i % MIXED.length] ?? 'SSHA'), {
      passwordAttribute: 'userPassword',
      scheme: 'PBKDF2',
      offers: [],
      policies,
    }),
);

describeAuthenticator(
  'DatabaseAuthenticator on LDAP, {PLAIN} userPassword, passwordScheme PLAIN',
  (t, users, _o, policies) =>
    inLdap(t, users, (password) => Promise.resolve(`{PLAIN}${password}`), {
      passwordAttribute: 'userPassword',
      scheme: 'PLAIN',
      offers: ['APOP', 'CRAM-MD5'],
      policies,
    }),
);

// Bind mode: slapd checks the {SSHA} it holds itself; only password logins can work.
describeAuthenticator('DatabaseAuthenticator on LDAP, bind as the user', (t, users, _o, policies) =>
  inLdap(t, users, async (password) => (await slapd()).sshaOf(password), {
    scheme: 'PLAIN',
    offers: [],
    policies,
  }),
);
