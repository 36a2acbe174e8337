/** A user name and the bytes sent to their sessions. */
export type UserBytes = readonly [user: string, bytes: number];

/** Top users each process (worker, node) reports when asked. */
export const TOP_USERS_REPORTED = 50;

const HOUR_MS = 3_600_000;
/** Hours kept: the last 24, the current one included. */
const HOURS = 24;
/**
 * Users remembered per hour and over the past hours (memory bound); past it, the smaller half is
 * forgotten, so a user who is among the top ones stays counted whatever the number of users.
 */
export const MAX_USERS_REMEMBERED = 10_000;

/** Adds `bytes` to `user` in `map`, halving the map to its biggest entries when it is full. */
function addTo(map: Map<string, number>, user: string, bytes: number): void {
  const had = map.get(user);
  if (had === undefined && map.size >= MAX_USERS_REMEMBERED) {
    const kept = [...map].sort((a, b) => b[1] - a[1]).slice(0, MAX_USERS_REMEMBERED / 2);
    map.clear();
    for (const [name, sum] of kept) map.set(name, sum);
  }
  map.set(user, (had ?? 0) + bytes);
}

/** The `n` biggest entries, most bytes first (ties by name, so that the order is stable). */
export function topOf(entries: Iterable<UserBytes>, n: number): UserBytes[] {
  return [...entries].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n);
}

/** Sums lists of users' bytes into one map. */
export function sumUserBytes(lists: Iterable<Iterable<UserBytes>>): Map<string, number> {
  const sum = new Map<string, number>();
  for (const list of lists) for (const [user, bytes] of list) sum.set(user, (sum.get(user) ?? 0) + bytes);
  return sum;
}

/**
 * Bytes sent to each user's finished sessions over the last 24 hours, in hourly buckets, bounded
 * in memory. Sessions still open are not in it: whoever shows the figures adds their bytes.
 */
export class UserTraffic {
  readonly #now: () => number;
  /** The current hour's bucket. */
  #hour = -1;
  #current = new Map<string, number>();
  /** The past hours' buckets, oldest first, and their sum. */
  #past: { readonly hour: number; readonly bytes: Map<string, number> }[] = [];
  #pastSum = new Map<string, number>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A session of `user` ended after sending `bytes`. */
  add(user: string, bytes: number): void {
    if (bytes <= 0) return;
    this.#rotate();
    addTo(this.#current, user, bytes);
  }

  /** The `n` users with the most bytes over the last 24 hours, most first. */
  top(n: number): UserBytes[] {
    this.#rotate();
    const sum = new Map(this.#pastSum);
    for (const [user, bytes] of this.#current) sum.set(user, (sum.get(user) ?? 0) + bytes);
    return topOf(sum, n);
  }

  #rotate(): void {
    const hour = Math.floor(this.#now() / HOUR_MS);
    if (hour === this.#hour) return;
    if (this.#hour !== -1 && this.#current.size > 0)
      this.#past.push({ hour: this.#hour, bytes: this.#current });
    this.#hour = hour;
    this.#current = new Map();
    this.#past = this.#past.filter((bucket) => bucket.hour > hour - HOURS);
    const pastSum = new Map<string, number>();
    for (const bucket of this.#past) for (const [user, bytes] of bucket.bytes) addTo(pastSum, user, bytes);
    this.#pastSum = pastSum;
  }
}
