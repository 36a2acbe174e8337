import { createHash } from 'node:crypto';
import { silentLogger, type Logger } from '../log.js';
import { CredentialFile } from './credential-file.js';
import type { PasswdFileProblem } from './passwd-file-format.js';
import { authenticateBearerWith, type OAuthVerifier } from './oauth/verifier.js';
import type { ScramCredentials, StoredPassword } from './passwords/types.js';
import { DEFAULT_SCHEME, hashPassword } from './passwords/registry.js';
import { SCRAM_DEFAULT_ITERATIONS, scramCredentials } from './passwords/scram.js';
import { checkedDecoySecret, DecoyRing, randomDecoySecret } from './decoy.js';
import { checkApop, checkCramMd5, checkPassword, DefaultDecoy, scramOf } from './stored-credentials.js';
import { formatPolicyFields } from '../policy-fields.js';
import type { MailUser } from '../user.js';
import type { UserPolicyOverrides } from '../policy.js';
import { withUser } from './with-user.js';
import type {
  ApopAuthRequest,
  AuthenticatorWithApop,
  AuthenticatorWithBearer,
  AuthenticatorWithCramMd5,
  AuthenticatorWithLookup,
  AuthenticatorWithScram,
  AuthenticatorWithUserCheck,
  AuthResult,
  BearerAuthRequest,
  CramMd5AuthRequest,
  PasswordAuthRequest,
  ScramCredentialsRequest,
} from './types.js';

export { parsePasswdFile } from './passwd-file-format.js';
export type { ParsedPasswdFile, PasswdFileProblem } from './passwd-file-format.js';

export interface PasswdFileAuthenticatorOptions {
  readonly logger?: Logger;
  /** Checks bearer tokens, so that OAUTHBEARER and XOAUTH2 are offered (for users in the file). */
  readonly oauth?: OAuthVerifier;
  /**
   * How new passwords (setPassword, the monitor's user changes) are hashed; PBKDF2 by default.
   * Choose SCRAM-SHA-256 to let every user log in with SCRAM.
   */
  readonly scheme?: string;
  /**
   * Chooses which user's hash an unknown name is checked against (16 bytes or more). Give the same
   * secret to every process that serves the file and keep it across restarts (the server's
   * `decoySecret`): an unknown name then costs, every time, what one real user costs. Default:
   * random for this authenticator.
   */
  readonly decoySecret?: Uint8Array;
  /** Log at debug level only: another process (the primary) reports on the same file. */
  readonly isQuiet?: boolean;
}

/**
 * Users from a passwd-file, re-read when the file changes and on {@link reload}. A file that
 * cannot be read leaves the previous users in force. Users can be added, changed and removed at
 * run time ({@link setPassword}, {@link deleteUser}); each change is on disk before it applies.
 */
export class PasswdFileAuthenticator
  implements
    AuthenticatorWithApop,
    AuthenticatorWithCramMd5,
    AuthenticatorWithScram,
    AuthenticatorWithBearer,
    AuthenticatorWithUserCheck,
    AuthenticatorWithLookup
{
  readonly #file: CredentialFile;
  readonly #scheme: string;
  /** Picks what an unknown name is checked against (see {@link #decoyFor}). */
  #decoys: { entries: ReadonlyMap<string, StoredPassword>; ring: DecoyRing<StoredPassword> } | undefined;
  /** Checked for unknown names while the file has no users: a default-scheme hash. */
  readonly #emptyDecoy = new DefaultDecoy();
  readonly #decoySecret: Buffer;
  /** Which schemes every user has, for the entries last seen (asked at every connection and CAPA). */
  #offers: { entries: ReadonlyMap<string, StoredPassword>; allPlain: boolean; allScram: boolean } | undefined;
  readonly #oauth: OAuthVerifier | undefined;

  constructor(path: string, options: PasswdFileAuthenticatorOptions = {}) {
    this.#file = new CredentialFile(path, {
      label: 'users',
      logger: options.logger ?? silentLogger,
      isQuiet: options.isQuiet ?? false,
    });
    this.#oauth = options.oauth;
    this.#scheme = options.scheme ?? DEFAULT_SCHEME;
    this.#decoySecret =
      options.decoySecret === undefined ? randomDecoySecret() : checkedDecoySecret(options.decoySecret);
  }

  get path(): string {
    return this.#file.path;
  }

  /** Reads the file; resolves to the problems found. Rejects only if the file cannot be read. */
  reload(): Promise<readonly PasswdFileProblem[]> {
    return this.#file.reload();
  }

  /** Re-reads the file whenever it (or its directory entry) changes. */
  watch(): void {
    this.#file.watch();
  }

  close(): void {
    this.#file.close();
  }

  get userCount(): number {
    return this.#file.entries.size;
  }

  /** The users' names, never their passwords. */
  userNames(): Iterable<string> {
    return this.#file.entries.keys();
  }

  /** The scheme `name`'s password is stored with (`SHA512-CRYPT`), never the password; undefined: no such user. */
  schemeOf(name: string): string | undefined {
    return this.#file.entries.get(name)?.scheme.name;
  }

  hasUser(name: string): boolean {
    return this.#file.entries.has(name);
  }

  /** Adds a user or changes a password: hashed with `scheme`, written to the file, then in force. */
  async setPassword(name: string, password: string, scheme = this.#scheme): Promise<void> {
    await this.#file.set(name, await hashPassword(password, scheme));
  }

  /** Removes a user from the file; resolves to false if there was none. */
  async deleteUser(name: string): Promise<boolean> {
    return (await this.#file.remove(name)) === 'removed';
  }

  async authenticate(request: PasswordAuthRequest): Promise<AuthResult> {
    const stored = this.#file.entries.get(request.username);
    const version = this.credentialVersion(request.username);
    const check = await checkPassword(stored, () => this.#decoyFor(request.username), request);
    if (check === 'temporary') return { ok: false, reason: 'temporary' };
    if (stored === undefined) return { ok: false, reason: 'invalid' };
    // The file may have changed during the hash: a password (or policy) that no longer holds logs
    // nobody in.
    const isCurrent = this.credentialVersion(request.username) === version;
    return check === 'match' && isCurrent
      ? { ok: true, user: this.#userOf(request.username) }
      : { ok: false, reason: 'invalid' };
  }

  /**
   * A digest of the user's stored password and own policy: it changes with either (a cached login
   * never serves an old policy), and is undefined once the user is gone.
   */
  credentialVersion(username: string): string | undefined {
    const stored = this.#file.entries.get(username);
    return stored === undefined ? undefined : versionOf(stored, this.#file.policies.get(username));
  }

  /** The user a login would return (with the user's own policy), without a password; undefined: no such user. */
  lookupUser(username: string): Promise<MailUser | undefined> {
    return Promise.resolve(this.#file.entries.has(username) ? this.#userOf(username) : undefined);
  }

  #userOf(name: string): MailUser {
    const policy = this.#file.policies.get(name);
    return policy === undefined ? { name } : { name, policy };
  }

  /**
   * APOP is offered only when every user's password is stored as `{PLAIN}`: curl, for one, logs in
   * with APOP whenever the greeting offers it and never falls back to USER/PASS.
   */
  isApopOffered(): boolean {
    return this.#currentOffers().allPlain;
  }

  /** APOP works only for users whose password is stored as `{PLAIN}`. */
  authenticateApop(request: ApopAuthRequest): Promise<AuthResult> {
    return Promise.resolve(
      withUser(checkApop(request, this.#file.entries.get(request.username)), (name) => this.#userOf(name)),
    );
  }

  /** CRAM-MD5, like APOP, needs `{PLAIN}` passwords: it is offered only when every user has one. */
  isCramMd5Offered(): boolean {
    return this.#currentOffers().allPlain;
  }

  authenticateCramMd5(request: CramMd5AuthRequest): Promise<AuthResult> {
    return Promise.resolve(
      withUser(checkCramMd5(request, this.#file.entries.get(request.username)), (name) => this.#userOf(name)),
    );
  }

  /**
   * SCRAM-SHA-256 is offered only when every user is stored `{SCRAM-SHA-256}`: clients such as
   * mpop pick the strongest mechanism offered and do not fall back when it fails.
   */
  isScramOffered(): boolean {
    return this.#currentOffers().allScram;
  }

  /** The keys of a `{SCRAM-SHA-256}` user; undefined for anyone else. */
  scramCredentials(request: ScramCredentialsRequest): Promise<ScramCredentials | undefined> {
    return Promise.resolve(scramOf(this.#file.entries.get(request.username)));
  }

  /** An unknown name's SCRAM iteration count: that of the user whose hash it is checked against. */
  scramDecoyIterations(username: string): number {
    const decoy = this.#decoyRing().pick(username);
    return (
      (decoy === undefined ? undefined : scramCredentials(decoy)?.iterations) ?? SCRAM_DEFAULT_ITERATIONS
    );
  }

  isBearerOffered(): boolean {
    return this.#oauth !== undefined;
  }

  /** A valid token logs in the user it names, if that user is in the file. */
  async authenticateBearer(request: BearerAuthRequest): Promise<AuthResult> {
    if (this.#oauth === undefined) return { ok: false, reason: 'invalid' };
    const result = await authenticateBearerWith(this.#oauth, request, (name) => this.#file.entries.has(name));
    return withUser(result, (name) => this.#userOf(name));
  }

  #currentOffers(): { allPlain: boolean; allScram: boolean } {
    const entries = this.#file.entries;
    if (this.#offers?.entries !== entries) {
      const users = [...entries.values()];
      const all = (test: (stored: StoredPassword) => boolean): boolean =>
        users.length > 0 && users.every(test);
      this.#offers = {
        entries,
        allPlain: all((stored) => stored.scheme.isPlaintext),
        allScram: all((stored) => scramCredentials(stored) !== undefined),
      };
    }
    return this.#offers;
  }

  /**
   * What an unknown name's password is checked against (the result is thrown away): one real
   * user's entry, picked for that name with the decoy secret. The same name always costs what the
   * same user costs, and over many names the schemes and costs come in the file's proportions, so
   * timing cannot tell an unknown name from a user of any scheme. With no users, a default hash.
   */
  #decoyFor(username: string): Promise<StoredPassword> {
    const picked = this.#decoyRing().pick(username);
    return picked === undefined ? this.#emptyDecoy.get() : Promise.resolve(picked);
  }

  #decoyRing(): DecoyRing<StoredPassword> {
    const entries = this.#file.entries;
    if (this.#decoys?.entries !== entries) {
      this.#decoys = { entries, ring: new DecoyRing(this.#decoySecret, entries) };
    }
    return this.#decoys.ring;
  }
}

const versionOf = (stored: StoredPassword, policy: UserPolicyOverrides | undefined): string =>
  createHash('sha256')
    .update(`{${stored.scheme.name}}${stored.data}`, 'utf8')
    .update(policy === undefined ? '' : `\n${formatPolicyFields(policy)}`, 'utf8')
    .digest('base64');
