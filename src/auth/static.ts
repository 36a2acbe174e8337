import { safeEqual } from './compare.js';
import { apopDigest, checkDigest, cramMd5Digest } from './digests.js';
import { authenticateBearerWith, type OAuthVerifier } from './oauth/verifier.js';
import { checkedDecoySecret, randomDecoySecret, scramSaltFor } from './decoy.js';
import type { ScramCredentials } from './passwords/types.js';
import { scramCredentialsOf } from './passwords/scram.js';
import { preparePassword } from './passwords/prepare.js';
import { isValidUserName, type MailUser } from '../user.js';
import type { UserPolicyOverrides } from '../policy.js';
import { hasPolicy } from '../policy-fields.js';
import { withUser } from './with-user.js';
import type {
  ApopAuthRequest,
  AuthenticatorWithApop,
  AuthenticatorWithBearer,
  AuthenticatorWithCramMd5,
  AuthenticatorWithLookup,
  AuthenticatorWithScram,
  AuthResult,
  BearerAuthRequest,
  CramMd5AuthRequest,
  PasswordAuthRequest,
  ScramCredentialsRequest,
} from './types.js';

export interface StaticAuthenticatorOptions {
  /** Checks bearer tokens: OAUTHBEARER and XOAUTH2 are offered, for the users in the list. */
  readonly oauth?: OAuthVerifier;
  /**
   * Makes the users' SCRAM-SHA-256 salts (16 bytes or more). Give the server's `decoySecret`, kept
   * across restarts: a user's salt is then as stable as an unknown name's made-up one, and the two
   * cannot be told apart. Default: random for this authenticator.
   */
  readonly decoySecret?: Uint8Array;
  /** Users' own policies (docs/policy.md), by name: returned in the user a login gives. */
  readonly policies?: Readonly<Record<string, UserPolicyOverrides>>;
}

/**
 * Users and plain passwords given in code: for tests, demos and programs that keep their own
 * user list. Offers APOP and CRAM-MD5, since it holds the secrets, and SCRAM-SHA-256, with keys
 * worked out from every password at the first SCRAM exchange (the salt derived from the name with
 * `decoySecret`, as the server makes an unknown name's). A name that is not valid under
 * `isValidUserName` never logs in, as a users file skips its line.
 */
export class StaticAuthenticator
  implements
    AuthenticatorWithApop,
    AuthenticatorWithCramMd5,
    AuthenticatorWithScram,
    AuthenticatorWithBearer,
    AuthenticatorWithLookup
{
  readonly #users: ReadonlyMap<string, string>;
  readonly #policies: ReadonlyMap<string, UserPolicyOverrides>;
  readonly #oauth: OAuthVerifier | undefined;
  /** Every user's SCRAM keys, made at the first exchange (see {@link scramCredentials}). */
  #scram: Promise<ReadonlyMap<string, ScramCredentials>> | undefined;
  readonly #decoySecret: Buffer;

  constructor(users: Readonly<Record<string, string>>, options: StaticAuthenticatorOptions = {}) {
    // Passwords in their prepared form, as a users file's hashes are made; a name must be valid as
    // the users file's are (prepared already), else it never logs in.
    const prepared = new Map<string, string>();
    for (const [name, secret] of Object.entries(users)) {
      const password = preparePassword(secret);
      if (isValidUserName(name) && password !== undefined) prepared.set(name, password);
    }
    this.#users = prepared;
    this.#policies = new Map(Object.entries(options.policies ?? {}).filter(([, p]) => hasPolicy(p)));
    this.#oauth = options.oauth;
    this.#decoySecret =
      options.decoySecret === undefined ? randomDecoySecret() : checkedDecoySecret(options.decoySecret);
  }

  authenticate(request: PasswordAuthRequest): Promise<AuthResult> {
    const secret = this.#users.get(request.username);
    const password = preparePassword(request.password);
    const isMatch =
      safeEqual(secret ?? '\0', password ?? '\0') && secret !== undefined && password !== undefined;
    return Promise.resolve(
      isMatch ? { ok: true, user: this.#userOf(request.username) } : { ok: false, reason: 'invalid' },
    );
  }

  /** The user a login would return, without a password; undefined: no such user. */
  lookupUser(username: string): Promise<MailUser | undefined> {
    return Promise.resolve(this.#users.has(username) ? this.#userOf(username) : undefined);
  }

  #userOf(name: string): MailUser {
    const policy = this.#policies.get(name);
    return policy === undefined ? { name } : { name, policy };
  }

  authenticateApop(request: ApopAuthRequest): Promise<AuthResult> {
    const secret = this.#users.get(request.username);
    const result = checkDigest(request.username, secret, request.digest, (s) =>
      apopDigest(request.timestamp, s),
    );
    return Promise.resolve(withUser(result, (name) => this.#userOf(name)));
  }

  authenticateCramMd5(request: CramMd5AuthRequest): Promise<AuthResult> {
    const secret = this.#users.get(request.username);
    const result = checkDigest(request.username, secret, request.digest, (s) =>
      cramMd5Digest(request.challenge, s),
    );
    return Promise.resolve(withUser(result, (name) => this.#userOf(name)));
  }

  /**
   * The keys are made for every user at the first exchange, whoever it is for: made one user at a
   * time, a real user's first exchange would cost a PBKDF2 that an unknown name's never does.
   */
  async scramCredentials(request: ScramCredentialsRequest): Promise<ScramCredentials | undefined> {
    this.#scram ??= this.#allScramKeys();
    return (await this.#scram).get(request.username);
  }

  async #allScramKeys(): Promise<ReadonlyMap<string, ScramCredentials>> {
    // An empty password never logs in (it would make the keys computable from the salt alone).
    const users = [...this.#users].filter(([, secret]) => secret !== '');
    const keys = await Promise.all(
      users.map(
        async ([name, secret]) =>
          [name, await scramCredentialsOf(secret, scramSaltFor(this.#decoySecret, name))] as const,
      ),
    );
    return new Map(keys);
  }

  isBearerOffered(): boolean {
    return this.#oauth !== undefined;
  }

  async authenticateBearer(request: BearerAuthRequest): Promise<AuthResult> {
    if (this.#oauth === undefined) return { ok: false, reason: 'invalid' };
    const result = await authenticateBearerWith(this.#oauth, request, (name) => this.#users.has(name));
    return withUser(result, (name) => this.#userOf(name));
  }
}

export function staticAuth(
  users: Readonly<Record<string, string>>,
  options: StaticAuthenticatorOptions = {},
): StaticAuthenticator {
  return new StaticAuthenticator(users, options);
}
