import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Pop3Limits } from './limits.js';

/** The limits the throttle reads. They are passed at every call, so a run-time change applies at once. */
export type ThrottleLimits = Pick<
  Pop3Limits,
  | 'authFailureDelayMs'
  | 'authThrottleMaxDelayMs'
  | 'authThrottleMaxUserDelayMs'
  | 'authThrottleWindowMs'
  | 'authThrottleMaxEntries'
>;

/** What the throttle says about one login attempt. */
export interface ThrottleVerdict {
  /** Recent failures of the client's address (its /64 for IPv6), this attempt included when it failed. */
  readonly addressFailures: number;
  /** Recent failures for the user name, from any address; 0 when there is no name. */
  readonly userFailures: number;
  /** How long to wait before answering the attempt. */
  readonly delayMs: number;
  /** Whether recent failures made the wait longer than an attempt with a clean record gets. */
  readonly isThrottled: boolean;
}

/**
 * What the engine asks of the login throttle: {@link LoginThrottle} in one process; the daemon's
 * workers ask their primary's, so that failures count once per machine. Only a failure may take a
 * round trip; the answer to an attempt that did not fail comes from what this process knows.
 */
export interface Throttle {
  check(address: string, user: string | undefined, limits: ThrottleLimits): ThrottleVerdict;
  fail(
    address: string,
    user: string | undefined,
    limits: ThrottleLimits,
  ): ThrottleVerdict | Promise<ThrottleVerdict>;
  succeed(user: string): void;
}

/** The counts of one address and one user name after a change, as one process tells another. */
export interface ThrottleCounts {
  readonly address?: string | undefined;
  readonly addressFailures: number;
  readonly user?: string | undefined;
  readonly userFailures: number;
}

/**
 * A throttle's tables as one process hands them to another (the primary's to a starting worker):
 * each entry `[key, failures, ms since its last failure]`, stalest first.
 */
export interface ThrottleSnapshot {
  readonly addresses: readonly (readonly [string, number, number])[];
  readonly users: readonly (readonly [string, number, number])[];
}

/** User names longer than this are tracked by a digest, so a table entry stays small whatever the name. */
const MAX_USER_KEY_LENGTH = 64;
/** Doubling stops here: 2^40 times any delay is already far beyond every cap. */
const MAX_DOUBLINGS = 40;

interface Entry {
  failures: number;
  lastFailureAt: number;
}

/**
 * Failure counts by key, in the order of their last failure (a Map keeps insertion order and a
 * key is re-inserted at every failure). So the stalest entry is always the first: expiry and
 * eviction look only at the front, and memory is bounded by `maxEntries`.
 */
class FailureTable {
  readonly #entries = new Map<string, Entry>();

  get size(): number {
    return this.#entries.size;
  }

  /** Recent failures for `key` (0 when none within the window). */
  count(key: string, now: number, windowMs: number): number {
    this.#expire(now, windowMs);
    return this.#entries.get(key)?.failures ?? 0;
  }

  /** Counts one more failure for `key`; returns the new count. */
  add(key: string, now: number, windowMs: number, maxEntries: number): number {
    this.#expire(now, windowMs);
    const failures = (this.#entries.get(key)?.failures ?? 0) + 1;
    this.#entries.delete(key);
    this.#entries.set(key, { failures, lastFailureAt: now });
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= maxEntries) break;
      this.#entries.delete(oldest);
    }
    return failures;
  }

  /** Sets `key`'s count as another process counted it (0 forgets it). */
  set(key: string, failures: number, now: number, maxEntries: number): void {
    this.#entries.delete(key);
    if (failures <= 0) return;
    this.#entries.set(key, { failures, lastFailureAt: now });
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= maxEntries) break;
      this.#entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Every entry with its age, stalest first. */
  snapshot(now: number): [string, number, number][] {
    return [...this.#entries].map(([key, entry]) => [key, entry.failures, now - entry.lastFailureAt]);
  }

  /** Replaces every entry with those of a {@link snapshot} (stalest first, so the order holds). */
  restore(entries: ThrottleSnapshot['addresses'], now: number): void {
    this.#entries.clear();
    for (const [key, failures, ageMs] of entries)
      this.#entries.set(key, { failures, lastFailureAt: now - ageMs });
  }

  #expire(now: number, windowMs: number): void {
    for (const [key, entry] of this.#entries) {
      if (now - entry.lastFailureAt < windowMs) break;
      this.#entries.delete(key);
    }
  }
}

/**
 * Slows down password guessing across connections. Failed logins are counted per client address
 * and per user name; the delay before answering grows with them, doubling from
 * `authFailureDelayMs` up to `authThrottleMaxDelayMs` for an address and up to the much smaller
 * `authThrottleMaxUserDelayMs` for a user name (so an attack on a name from elsewhere costs its
 * owner a few seconds at most, never a lock-out). Counts are forgotten `authThrottleWindowMs` after
 * their last failure. A successful login forgets its user name's count only: an address's failures
 * fade with time alone, so an account holder cannot wipe the record of guesses made from there.
 *
 * It keeps no timers: time comes from `now` (monotonic by default), and stale entries are dropped
 * when the tables are next used. One throttle serves a whole server.
 */
export class LoginThrottle implements Throttle {
  readonly #now: () => number;
  readonly #addresses = new FailureTable();
  readonly #users = new FailureTable();

  constructor(options: { readonly now?: () => number } = {}) {
    this.#now = options.now ?? (() => performance.now());
  }

  /** Addresses (or IPv6 /64s) with recent failures, as last seen; for tests and monitoring. */
  get trackedAddresses(): number {
    return this.#addresses.size;
  }

  /** User names with recent failures, as last seen. */
  get trackedUsers(): number {
    return this.#users.size;
  }

  /**
   * For an attempt that did not fail on its credentials (a success, or a temporary failure): the
   * penalty owed for recent failures of its address and of its user name, 0 when there are none.
   */
  check(address: string, user: string | undefined, limits: ThrottleLimits): ThrottleVerdict {
    const now = this.#now();
    const window = limits.authThrottleWindowMs;
    const addressFailures = this.#addresses.count(addressKey(address), now, window);
    const userFailures = user === undefined ? 0 : this.#users.count(userKey(user), now, window);
    const delayMs = penalty(limits, addressFailures, userFailures);
    return { addressFailures, userFailures, delayMs, isThrottled: delayMs > 0 };
  }

  /**
   * For a failed attempt: counts it against the address and the user name, and returns the delay
   * before answering: at least `authFailureDelayMs`, more when there were failures before.
   */
  fail(address: string, user: string | undefined, limits: ThrottleLimits): ThrottleVerdict {
    const now = this.#now();
    const { authThrottleWindowMs: window, authThrottleMaxEntries: max } = limits;
    const addressFailures = this.#addresses.add(addressKey(address), now, window, max);
    const userFailures = user === undefined ? 0 : this.#users.add(userKey(user), now, window, max);
    return failureVerdict(limits, addressFailures, userFailures);
  }

  /**
   * Takes counts as another process's throttle gave them (a worker's copy of the primary's), each
   * counted from now; a count of 0 forgets its key, and a missing address or user is left alone.
   */
  mirror(counts: ThrottleCounts, maxEntries: number): void {
    const now = this.#now();
    if (counts.address !== undefined)
      this.#addresses.set(addressKey(counts.address), counts.addressFailures, now, maxEntries);
    if (counts.user !== undefined)
      this.#users.set(userKey(counts.user), counts.userFailures, now, maxEntries);
  }

  /** Both tables, for another process's copy ({@link restore}). */
  snapshot(): ThrottleSnapshot {
    const now = this.#now();
    return { addresses: this.#addresses.snapshot(now), users: this.#users.snapshot(now) };
  }

  /** Replaces both tables with another process's {@link snapshot}, ages kept. */
  restore(snapshot: ThrottleSnapshot): void {
    const now = this.#now();
    this.#addresses.restore(snapshot.addresses, now);
    this.#users.restore(snapshot.users, now);
  }

  /**
   * A successful login: the user name's failures are forgotten (its owner is back). The address's
   * are not: they were perhaps guesses at other names, and fade only with time.
   */
  succeed(user: string): void {
    this.#users.delete(userKey(user));
  }
}

/**
 * The verdict on a failed attempt once its address and user name have `addressFailures` and
 * `userFailures` recent failures, this one included (however they were counted: here, or by the
 * cluster's Redis).
 */
export function failureVerdict(
  limits: ThrottleLimits,
  addressFailures: number,
  userFailures: number,
): ThrottleVerdict {
  const delayMs = Math.max(limits.authFailureDelayMs, penalty(limits, addressFailures, userFailures));
  return { addressFailures, userFailures, delayMs, isThrottled: delayMs > limits.authFailureDelayMs };
}

/** The larger of the address's and the user name's delays, each doubling per failure up to its cap. */
function penalty(limits: ThrottleLimits, addressFailures: number, userFailures: number): number {
  const base = limits.authFailureDelayMs;
  return Math.max(
    backoff(base, addressFailures, limits.authThrottleMaxDelayMs),
    backoff(base, userFailures, limits.authThrottleMaxUserDelayMs),
  );
}

function backoff(baseMs: number, failures: number, capMs: number): number {
  if (failures <= 0) return 0;
  return Math.min(baseMs * 2 ** Math.min(failures - 1, MAX_DOUBLINGS), capMs);
}

/** The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:a.b.c.d`, as a dual-stack socket shows it), else undefined. */
export function mappedIPv4(address: string): string | undefined {
  const inner = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)?.[1];
  return inner !== undefined && isIPv4(inner) ? inner : undefined;
}

/**
 * The key an address is counted under: an IPv4 address as it is (also when IPv4-mapped), an IPv6
 * address as its /64, since one host is commonly given a whole /64 and could otherwise move to a
 * fresh address for every attempt.
 */
export function addressKey(address: string): string {
  const mapped = mappedIPv4(address);
  if (mapped !== undefined) return mapped;
  const bare = address.split('%', 1)[0] ?? address;
  if (!isIPv6(bare)) return address;
  const groups = (text: string): string[] =>
    text === '' ? [] : text.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const [head = '', tail] = bare.split('::');
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const full = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${full
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** The key a user name is counted under: case-folded (some backends ignore case), long names digested. */
export function userKey(user: string): string {
  const folded = user.toLowerCase();
  if (folded.length <= MAX_USER_KEY_LENGTH) return folded;
  return `#${createHash('sha256').update(folded).digest('base64url')}`;
}
