import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { UserPolicyOverrides } from '../../policy.js';

/** Most names the outage cache holds; past it, the least recently verified goes first (~200 bytes each). */
export const USERDB_CACHE_MAX_ENTRIES = 100_000;

interface Entry {
  /** HMAC-SHA-256, under this cache's random key, of the name and the password that logged in. */
  readonly digest: Buffer;
  /** `Date.now()` when the database last accepted this password. */
  readonly verifiedAt: number;
  /** The user's own policy as the database last gave it (a login from the cache keeps it). */
  readonly policy: UserPolicyOverrides | undefined;
}

/** What the cache says of a name and password while the database cannot answer. */
export type OutageCheck = 'match' | 'mismatch' | 'absent';

/**
 * What lets users ride out a database outage (`[userdb] cacheTtlMs`): the names the database
 * accepted lately, each with a keyed digest of the password it accepted (never the password, nor a
 * hash that could be attacked without the key, which is random per process and never leaves it).
 * Read only while the database gives no answer: every other login asks the database, so a new
 * password or a disabled account counts at once.
 */
export class OutageCache {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, Entry>();
  readonly #key = randomBytes(32);

  /** `ttlMs` 0: nothing is kept, and every login fails for now while the database is down. */
  constructor(ttlMs: number, maxEntries = USERDB_CACHE_MAX_ENTRIES) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The database accepted `password` for `name` just now, with the user's own `policy`. */
  remember(name: string, password: string, policy?: UserPolicyOverrides): void {
    if (this.#ttlMs === 0 || this.#maxEntries === 0) return;
    this.#entries.delete(name);
    this.#entries.set(name, { digest: this.#digest(name, password), verifiedAt: Date.now(), policy });
    for (const stalest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(stalest);
    }
  }

  /** The database said `name` does not exist (or may not log in): forgotten. */
  forget(name: string): void {
    this.#entries.delete(name);
  }

  /** The database refused `password` for `name`: if it is the one kept (changed since), forgotten. */
  forgetIfKept(name: string, password: string): void {
    if (this.check(name, password) === 'match') this.#entries.delete(name);
  }

  /** While the database is down: does `password` match what `name` last logged in with, lately? */
  check(name: string, password: string): OutageCheck {
    const entry = this.#entries.get(name);
    if (entry === undefined) return 'absent';
    const now = Date.now();
    // A clock set back must not stretch an entry's life: an entry from the "future" is stale.
    if (now < entry.verifiedAt || now - entry.verifiedAt >= this.#ttlMs) {
      this.#entries.delete(name);
      return 'absent';
    }
    return timingSafeEqual(entry.digest, this.#digest(name, password)) ? 'match' : 'mismatch';
  }

  /** The policy kept with `name` (read after {@link check} said `match`). */
  policyOf(name: string): UserPolicyOverrides | undefined {
    return this.#entries.get(name)?.policy;
  }

  #digest(name: string, password: string): Buffer {
    return createHmac('sha256', this.#key).update(`${name}\0${password}`, 'utf8').digest();
  }
}
