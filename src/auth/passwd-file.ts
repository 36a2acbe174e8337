import { silentLogger, type Logger } from '../log.js';
import { CredentialFile } from './credential-file.js';
import type { PasswdFileProblem } from './passwd-file-format.js';
import { authenticateBearerWith, type OAuthVerifier } from './oauth/verifier.js';
import type { ScramCredentials, StoredPassword } from './passwords/types.js';
import { DEFAULT_SCHEME, hashPassword, parseStoredPassword } from './passwords/registry.js';
import { scramCredentials } from './passwords/scram.js';
import { apopDigest, checkDigest, cramMd5Digest } from './digests.js';
import type {
  ApopAuthRequest,
  AuthenticatorWithApop,
  AuthenticatorWithBearer,
  AuthenticatorWithCramMd5,
  AuthenticatorWithScram,
  AuthResult,
  BearerAuthRequest,
  CramMd5AuthRequest,
  PasswordAuthRequest,
  ScramCredentialsRequest,
} from './types.js';

export { parsePasswdFile } from './passwd-file-format.js';
export type { ParsedPasswdFile, PasswdFileProblem } from './passwd-file-format.js';

/**
 * Users from a passwd-file, re-read when the file changes and on {@link reload}. A file that
 * cannot be read leaves the previous users in force. Users can be added, changed and removed at
 * run time ({@link setPassword}, {@link deleteUser}); each change is on disk before it applies.
 */
export class PasswdFileAuthenticator
  implements AuthenticatorWithApop, AuthenticatorWithCramMd5, AuthenticatorWithScram, AuthenticatorWithBearer
{
  readonly #file: CredentialFile;
  readonly #scheme: string;
  /** Verified for unknown users, so that a failure costs the same time whether or not the name exists. */
  #decoy: { entries: ReadonlyMap<string, StoredPassword>; stored: Promise<StoredPassword> } | undefined;
  /** Which schemes every user has, for the entries last seen (asked at every connection and CAPA). */
  #offers: { entries: ReadonlyMap<string, StoredPassword>; allPlain: boolean; allScram: boolean } | undefined;
  readonly #oauth: OAuthVerifier | undefined;

  /** `oauth`: checks bearer tokens, so that OAUTHBEARER and XOAUTH2 are offered (for users in the file). */
  /**
   * `scheme`: how new passwords (setPassword, the monitor's user changes) are hashed; PBKDF2 by
   * default. Choose SCRAM-SHA-256 to let every user log in with SCRAM.
   */
  constructor(
    path: string,
    options: {
      readonly logger?: Logger;
      readonly oauth?: OAuthVerifier;
      readonly scheme?: string;
      /** Log at debug level only: another process (the primary) reports on the same file. */
      readonly isQuiet?: boolean;
    } = {},
  ) {
    this.#file = new CredentialFile(path, {
      label: 'users',
      logger: options.logger ?? silentLogger,
      isQuiet: options.isQuiet ?? false,
    });
    this.#oauth = options.oauth;
    this.#scheme = options.scheme ?? DEFAULT_SCHEME;
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
    if (stored === undefined) {
      const decoy = await this.#decoyPassword();
      await decoy.scheme.verify(request.password, decoy.data);
      return { ok: false, reason: 'invalid' };
    }
    const isMatch = await stored.scheme.verify(request.password, stored.data);
    return isMatch ? { ok: true, user: { name: request.username } } : { ok: false, reason: 'invalid' };
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
      checkDigest(request.username, this.#plainSecret(request.username), request.digest, (s) =>
        apopDigest(request.timestamp, s),
      ),
    );
  }

  /** CRAM-MD5, like APOP, needs `{PLAIN}` passwords: it is offered only when every user has one. */
  isCramMd5Offered(): boolean {
    return this.#currentOffers().allPlain;
  }

  authenticateCramMd5(request: CramMd5AuthRequest): Promise<AuthResult> {
    return Promise.resolve(
      checkDigest(request.username, this.#plainSecret(request.username), request.digest, (s) =>
        cramMd5Digest(request.challenge, s),
      ),
    );
  }

  /** The secret of a `{PLAIN}` user, which APOP and CRAM-MD5 need; undefined for anyone else. */
  #plainSecret(name: string): string | undefined {
    const stored = this.#file.entries.get(name);
    return stored?.scheme.isPlaintext === true ? stored.data : undefined;
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
    const stored = this.#file.entries.get(request.username);
    return Promise.resolve(stored === undefined ? undefined : scramCredentials(stored));
  }

  isBearerOffered(): boolean {
    return this.#oauth !== undefined;
  }

  /** A valid token logs in the user it names, if that user is in the file. */
  authenticateBearer(request: BearerAuthRequest): Promise<AuthResult> {
    if (this.#oauth === undefined) return Promise.resolve({ ok: false, reason: 'invalid' });
    return authenticateBearerWith(this.#oauth, request, (name) => this.#file.entries.has(name));
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
   * What an unknown user's password is checked against: a real entry of the scheme most users
   * have (the result is thrown away), so that the failure costs what a known user's does, whatever
   * schemes and costs the file holds. With no users, a freshly made default hash.
   */
  #decoyPassword(): Promise<StoredPassword> {
    const entries = this.#file.entries;
    if (this.#decoy?.entries !== entries) {
      const counts = new Map<string, number>();
      for (const stored of entries.values())
        counts.set(stored.scheme.name, (counts.get(stored.scheme.name) ?? 0) + 1);
      const common = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
      const sample = [...entries.values()].find((stored) => stored.scheme.name === common);
      this.#decoy = {
        entries,
        stored:
          sample === undefined
            ? hashPassword('decoy password').then((field) => parseStoredPassword(field) as StoredPassword)
            : Promise.resolve(sample),
      };
    }
    return this.#decoy.stored;
  }
}
