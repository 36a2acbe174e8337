import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  hasUserCheck,
  type Authenticator,
  type AuthResult,
  type PasswordAuthRequest,
} from '../auth/types.js';
import type { MailUser } from '../user.js';
import type { Pop3Limits } from './limits.js';

/** The limits the cache reads. They are passed at every call, so a run-time change applies at once. */
export type AuthCacheLimits = Pick<Pop3Limits, 'authCacheTtlMs' | 'authCacheMaxEntries'>;

/** Where the cache counts what it did (the server's `ServerStats`). */
export interface AuthCacheCounters {
  authCacheHits: number;
  authCacheMisses: number;
  authCacheEntries: number;
}

interface Entry {
  /** HMAC of the credential version, the name and the password that logged in (see {@link #digest}). */
  readonly digest: Buffer;
  readonly user: MailUser;
  /** `Date.now()` when it was added. */
  readonly addedAt: number;
}

/**
 * The authentication cache, as Dovecot's `auth_cache` (positive entries only): a login by password
 * (USER/PASS, SASL PLAIN and LOGIN) that the authenticator accepted is remembered, so that the
 * same name with the same password is accepted again without the slow hash until
 * `authCacheTtlMs` has passed. Clients that poll every minute otherwise pay a PBKDF2 or SHA-crypt
 * for every session.
 *
 * - What is kept is an HMAC-SHA-256, under a key made at random for this cache (never stored,
 *   never sent), of the user's credential version, the name and the password: never the password,
 *   nor a plain hash of it that could be attacked offline without the key.
 * - Only authenticators that say when credentials change (`credentialVersion`, which
 *   `PasswdFileAuthenticator` has) are cached. The version is in the digest and is read again at
 *   every login, so a new password or a removed user takes effect at once, without a flush.
 * - A failure is never cached, and a wrong password is never answered from the cache: it goes to
 *   the authenticator as before, so an unknown name and a wrong password cost what they cost
 *   without a cache (no timing oracle), and the login throttle sees every failure as before. A hit
 *   then goes through the same penalty and credential checks as any accepted login.
 * - At most `authCacheMaxEntries` names (0: no cache); the least recently used goes first.
 */
export class AuthCache {
  readonly #counters: AuthCacheCounters;
  readonly #entries = new Map<string, Entry>();
  /** The HMAC key: random per cache, so digests are worthless outside this process. */
  readonly #key = randomBytes(32);

  constructor(counters: AuthCacheCounters) {
    this.#counters = counters;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Forgets every entry (SIGHUP), or `username`'s. */
  flush(username?: string): void {
    if (username === undefined) this.#entries.clear();
    else this.#entries.delete(username);
    this.#counters.authCacheEntries = this.#entries.size;
  }

  /**
   * Checks a name and password: from the cache when the same password logged this name in less
   * than `authCacheTtlMs` ago with the credentials it has now, else through `authenticator` (an
   * accepted login is then remembered).
   */
  async authenticate(
    authenticator: Authenticator,
    request: PasswordAuthRequest,
    limits: AuthCacheLimits,
  ): Promise<AuthResult> {
    if (limits.authCacheMaxEntries === 0 || !hasUserCheck(authenticator)) {
      if (this.#entries.size > 0) this.flush();
      return authenticator.authenticate(request);
    }
    const { username, password } = request;
    const version = authenticator.credentialVersion(username);
    // Computed for every name, cached or not, known or not: the lookup costs the same for all.
    const digest = this.#digest(version, username, password);
    const entry = this.#entries.get(username);
    if (entry !== undefined && version === undefined) this.flush(username);
    else if (entry !== undefined) {
      const now = Date.now();
      // A clock set back must not stretch an entry's life: an entry from the "future" is stale.
      const isFresh = now >= entry.addedAt && now - entry.addedAt < limits.authCacheTtlMs;
      if (!isFresh) this.flush(username);
      else if (timingSafeEqual(entry.digest, digest)) {
        // Most recently used last: eviction takes the first.
        this.#entries.delete(username);
        this.#entries.set(username, entry);
        this.#counters.authCacheHits += 1;
        return { ok: true, user: entry.user };
      }
    }
    this.#counters.authCacheMisses += 1;
    const result = await authenticator.authenticate(request);
    // Remembered only if the credentials did not change while they were checked. Never an app
    // password's login: its revocation must end its use at once, and it costs no slow hash anyway.
    if (
      result.ok &&
      result.user.appPassword === undefined &&
      version !== undefined &&
      authenticator.credentialVersion(username) === version
    ) {
      this.#add(username, { digest, user: result.user, addedAt: Date.now() }, limits.authCacheMaxEntries);
    }
    return result;
  }

  #add(username: string, entry: Entry, maxEntries: number): void {
    this.#entries.delete(username);
    this.#entries.set(username, entry);
    for (const stalest of this.#entries.keys()) {
      if (this.#entries.size <= maxEntries) break;
      this.#entries.delete(stalest);
    }
    this.#counters.authCacheEntries = this.#entries.size;
  }

  /** HMAC-SHA-256 of the three fields, each length-prefixed so that no two triples collide. */
  #digest(version: string | undefined, username: string, password: string): Buffer {
    const hmac = createHmac('sha256', this.#key);
    for (const field of [version ?? '', username, password]) {
      const bytes = Buffer.from(field, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      hmac.update(length).update(bytes);
    }
    return hmac.digest();
  }
}
