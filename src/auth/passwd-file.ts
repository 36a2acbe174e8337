import { silentLogger, type Logger } from '../log.js';
import { safeEqual } from './compare.js';
import { CredentialFile } from './credential-file.js';
import type { PasswdFileProblem } from './passwd-file-format.js';
import { DEFAULT_SCHEME, hashPassword, parseStoredPassword, type StoredPassword } from './passwords.js';
import { apopDigest } from './static.js';
import type { ApopAuthRequest, AuthenticatorWithApop, AuthResult, PasswordAuthRequest } from './types.js';

export { parsePasswdFile } from './passwd-file-format.js';
export type { ParsedPasswdFile, PasswdFileProblem } from './passwd-file-format.js';

/**
 * Users from a passwd-file, re-read when the file changes and on {@link reload}. A file that
 * cannot be read leaves the previous users in force. Users can be added, changed and removed at
 * run time ({@link setPassword}, {@link deleteUser}); each change is on disk before it applies.
 */
export class PasswdFileAuthenticator implements AuthenticatorWithApop {
  readonly #file: CredentialFile;
  /** Verified for unknown users, so that a failure costs the same time whether or not the name exists. */
  #decoy: Promise<StoredPassword> | undefined;
  /** isApopOffered() for the entries last seen (asked at every connection). */
  #apop: { entries: ReadonlyMap<string, StoredPassword>; isOffered: boolean } | undefined;

  constructor(path: string, options: { readonly logger?: Logger } = {}) {
    this.#file = new CredentialFile(path, { label: 'users', logger: options.logger ?? silentLogger });
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

  hasUser(name: string): boolean {
    return this.#file.entries.has(name);
  }

  /** Adds a user or changes a password: hashed with `scheme`, written to the file, then in force. */
  async setPassword(name: string, password: string, scheme = DEFAULT_SCHEME): Promise<void> {
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
    const entries = this.#file.entries;
    if (this.#apop?.entries !== entries) {
      const users = [...entries.values()];
      this.#apop = {
        entries,
        isOffered: users.length > 0 && users.every((stored) => stored.scheme.isPlaintext),
      };
    }
    return this.#apop.isOffered;
  }

  /** APOP works only for users whose password is stored as `{PLAIN}`. */
  authenticateApop(request: ApopAuthRequest): Promise<AuthResult> {
    const stored = this.#file.entries.get(request.username);
    // An empty secret would make the digest guessable from the greeting alone (and PASS refuses it).
    const secret = stored?.scheme.isPlaintext === true && stored.data !== '' ? stored.data : undefined;
    const isMatch =
      safeEqual(apopDigest(request.timestamp, secret ?? '\0'), request.digest) && secret !== undefined;
    return Promise.resolve(
      isMatch ? { ok: true, user: { name: request.username } } : { ok: false, reason: 'invalid' },
    );
  }

  #decoyPassword(): Promise<StoredPassword> {
    this.#decoy ??= hashPassword('decoy password').then(
      (field) => parseStoredPassword(field) as StoredPassword,
    );
    return this.#decoy;
  }
}
