import { createHash, randomBytes } from 'node:crypto';
import { silentLogger, type Logger } from '../../log.js';
import { DEFAULT_POLICY, effectivePolicy, type UserPolicy } from '../../policy.js';
import type { MailUser } from '../../user.js';
import { findScheme } from '../passwords/registry.js';
import type { StoredPassword } from '../passwords/types.js';
import {
  hasApop,
  hasCramMd5,
  hasLookup,
  hasScram,
  type Authenticator,
  type AuthResult,
  type PasswordAuthRequest,
  type ScramCredentialsRequest,
} from '../types.js';
import { APP_PASSWORD_SCHEME, MAX_APP_PASSWORDS, type CheckableEntry } from './format.js';
import { normalizeSecret } from './secret.js';
import type { AppPasswordStore } from './store.js';

export interface AppPasswordAuthOptions {
  readonly store: AppPasswordStore;
  readonly logger?: Logger;
  /** The server-wide policy now (`[policy]`), under each user's own values; default: DEFAULT_POLICY. */
  readonly policyDefaults?: () => UserPolicy;
  /**
   * Finds a user in the main backend, when the wrapped authenticator has no `lookupUser` of its
   * own (which is preferred: it gives the user's policy). Absent both: app passwords log nobody in.
   */
  readonly lookupUser?: (name: string, signal: AbortSignal) => Promise<MailUser | undefined>;
}

const INVALID: AuthResult = { ok: false, reason: 'invalid' };
const TEMPORARY: AuthResult = { ok: false, reason: 'temporary' };

/** What an empty slot is checked against: a hash of a random secret, in the app passwords' scheme. */
const DECOY: StoredPassword = (() => {
  const scheme = findScheme(APP_PASSWORD_SCHEME);
  if (scheme === undefined) throw new Error(`no {${APP_PASSWORD_SCHEME}} scheme`);
  const salt = randomBytes(8);
  const digest = createHash('sha256').update(randomBytes(16).toString('hex'), 'utf8').update(salt).digest();
  return { scheme, data: Buffer.concat([digest, salt]).toString('base64') };
})();

/**
 * The entry `password` is the secret of, if any. Every one of the {@link MAX_APP_PASSWORDS} slots
 * is checked, empty ones against a decoy, without stopping at a match: a user with no app
 * password, an unknown name and a user with twenty cost the same hashing (each a constant-time
 * comparison, in the scheme's verify).
 */
export async function matchAppPassword(
  entries: readonly CheckableEntry[],
  password: string,
): Promise<CheckableEntry | undefined> {
  const candidate = normalizeSecret(password);
  let match: CheckableEntry | undefined;
  for (let i = 0; i < MAX_APP_PASSWORDS; i++) {
    const entry = entries[i];
    const stored = entry?.stored ?? DECOY;
    const isMatch = await stored.scheme.verify(candidate, stored.data);
    if (isMatch && entry !== undefined) match ??= entry;
  }
  return match;
}

/** The capability methods a wrapped authenticator keeps, as they are (some wrapped again below). */
const FORWARDED = [
  'authenticateApop',
  'isApopOffered',
  'authenticateCramMd5',
  'isCramMd5Offered',
  'scramCredentials',
  'scramDecoyIterations',
  'isScramOffered',
  'authenticateBearer',
  'isBearerOffered',
  'credentialVersion',
  'lookupUser',
] as const;

/**
 * `inner` with app passwords: a password login (USER/PASS, SASL PLAIN and LOGIN) is checked
 * against the user's app passwords, then against the main password. An app password logs the
 * user in only while the main backend still has the user (`lookupUser`), as that user (with
 * their policy) and `appPassword` set to its label. A user whose policy says `appPasswordsOnly`
 * is refused with the main password, by any mechanism, as a wrong password.
 *
 * The result has exactly the capabilities `inner` has (the engine looks for them by name), so
 * APOP, CRAM-MD5, SCRAM, bearer tokens and the authentication cache work as before, with the main
 * credentials only: APOP and CRAM-MD5 need a secret kept in clear, and SCRAM the keys of one
 * password per salt (docs/app-passwords.md).
 */
export function withAppPasswords(inner: Authenticator, options: AppPasswordAuthOptions): Authenticator {
  const logins = new AppPasswordLogins(inner, options);
  const source = inner as unknown as Record<string, unknown>;
  const wrapped: Record<string, unknown> = {};
  for (const name of FORWARDED) {
    const method = source[name];
    if (typeof method === 'function') wrapped[name] = method.bind(inner);
  }
  wrapped['authenticate'] = (request: PasswordAuthRequest) => logins.authenticate(request);
  if (hasApop(inner)) {
    wrapped['authenticateApop'] = async (request: Parameters<typeof inner.authenticateApop>[0]) =>
      logins.refuseMainIfOnly(await inner.authenticateApop(request));
    wrapped['isApopOffered'] = () => !logins.isOnlyForEveryone() && inner.isApopOffered?.() !== false;
  }
  if (hasCramMd5(inner)) {
    wrapped['authenticateCramMd5'] = async (request: Parameters<typeof inner.authenticateCramMd5>[0]) =>
      logins.refuseMainIfOnly(await inner.authenticateCramMd5(request));
    wrapped['isCramMd5Offered'] = () => !logins.isOnlyForEveryone() && inner.isCramMd5Offered?.() !== false;
  }
  if (hasScram(inner)) {
    // A user refused the main password gets no keys: the exchange goes on with made-up ones and fails.
    wrapped['scramCredentials'] = async (request: ScramCredentialsRequest) =>
      (await logins.isMainRefusedFor(request.username, request.signal))
        ? undefined
        : inner.scramCredentials(request);
    wrapped['isScramOffered'] = () => !logins.isOnlyForEveryone() && inner.isScramOffered?.() !== false;
  }
  return wrapped as unknown as Authenticator;
}

class AppPasswordLogins {
  readonly #inner: Authenticator;
  readonly #store: AppPasswordStore;
  readonly #logger: Logger;
  readonly #defaults: () => UserPolicy;
  readonly #lookup: ((name: string, signal: AbortSignal) => Promise<MailUser | undefined>) | undefined;

  constructor(inner: Authenticator, options: AppPasswordAuthOptions) {
    this.#inner = inner;
    this.#store = options.store;
    this.#logger = options.logger ?? silentLogger;
    this.#defaults = options.policyDefaults ?? (() => DEFAULT_POLICY);
    this.#lookup = hasLookup(inner) ? (n, s) => inner.lookupUser(n, s) : options.lookupUser;
  }

  async authenticate(request: PasswordAuthRequest): Promise<AuthResult> {
    const { username } = request;
    let entries: readonly CheckableEntry[] = [];
    try {
      entries = await this.#store.read(username);
    } catch (error) {
      // Unreadable (not damaged): the main password still works; the operator is told.
      this.#logger.warn({ user: username, err: (error as Error).message }, 'app passwords cannot be read');
    }
    const match = await matchAppPassword(entries, request.password);
    if (match === undefined) return this.refuseMainIfOnly(await this.#inner.authenticate(request));
    if (this.#lookup === undefined) return INVALID;
    let user: MailUser | undefined;
    try {
      user = await this.#lookup(username, request.signal);
    } catch {
      return TEMPORARY;
    }
    // A user deleted from the backend (outside Poplar, say) keeps no access through a leftover file.
    if (user === undefined) return INVALID;
    const ids = entries.map((e) => e.id);
    await this.#store.recordUse(username, match.id, request.remoteAddress, ids).catch((error: unknown) => {
      this.#logger.warn(
        { user: username, appPassword: match.label, err: (error as Error).message },
        'app password use not recorded',
      );
    });
    return { ok: true, user: { ...user, appPassword: match.label } };
  }

  /** A login with the main credentials, refused when the user may use only app passwords. */
  refuseMainIfOnly(result: AuthResult): AuthResult {
    if (!result.ok || !this.#isOnly(result.user)) return result;
    this.#logger.info({ user: result.user.name }, 'main password refused: app passwords only');
    return INVALID;
  }

  /** The server-wide policy says app passwords only: the mechanisms of the main password are not offered. */
  isOnlyForEveryone(): boolean {
    return this.#defaults().appPasswordsOnly;
  }

  /** Whether `name` may not use the main password: false for an unknown name, true when the backend cannot say. */
  async isMainRefusedFor(name: string, signal: AbortSignal): Promise<boolean> {
    if (this.#lookup === undefined) return this.isOnlyForEveryone();
    try {
      const user = await this.#lookup(name, signal);
      return user !== undefined && this.#isOnly(user);
    } catch {
      return true;
    }
  }

  #isOnly(user: MailUser): boolean {
    return effectivePolicy(this.#defaults(), user.policy).appPasswordsOnly;
  }
}
