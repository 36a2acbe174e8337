/** How wrong admin tokens hold an address back for a while, and how they are logged; see {@link TokenThrottle}. */
export interface TokenThrottleOptions {
  /** Wrong tokens an address may send before each further one locks it out for a while. */
  readonly freeTokenFailures: number;
  /** How long the first lock-out lasts; each further wrong token doubles it. */
  readonly tokenLockoutMs: number;
  /** The longest lock-out. */
  readonly maxTokenLockoutMs: number;
  /** One failure of an address is forgotten every this long. */
  readonly tokenFailureDecayMs: number;
  /** At most one log line per address this often; the next one gives the counts since. */
  readonly tokenFailureLogIntervalMs: number;
}

export const DEFAULT_TOKEN_THROTTLE: TokenThrottleOptions = {
  freeTokenFailures: 3,
  tokenLockoutMs: 250,
  maxTokenLockoutMs: 5_000,
  tokenFailureDecayMs: 10_000,
  tokenFailureLogIntervalMs: 60_000,
};

/** Addresses remembered at most (memory bound); the least recently seen go first. */
const MAX_ENTRIES = 10_000;
/** Log lines about wrong tokens per interval, all addresses together (many addresses flood too). */
const MAX_LOG_LINES_PER_INTERVAL = 10;
const MAX_DOUBLINGS = 20;

interface Entry {
  /** Failures as of `at`; they decay from then on. */
  failures: number;
  at: number;
  /** Requests from this address wait, their token unchecked, until then. */
  lockedUntil: number;
  /** When a line was last logged for this address, and what happened since. */
  loggedAt: number | undefined;
  unloggedFailures: number;
  unloggedHeld: number;
}

/** What was not logged yet about an address, when it is time for a line. */
export interface TokenLogLine {
  readonly failures: number;
  /** Requests that had to wait. */
  readonly held: number;
  /** How long the address is locked out from now (0: it is not). */
  readonly lockoutMs: number;
}

/** When a request's token may be checked. */
export type TokenAdmission =
  /** Now; call `done()` once the check is over, whatever its outcome. */
  | { readonly kind: 'check'; readonly done: () => void }
  /** The address is locked out: ask again in `ms`. */
  | { readonly kind: 'wait'; readonly ms: number }
  /** The address has no failure to spare and another of its tokens is being checked: ask again when that one is done. */
  | { readonly kind: 'busy' };

/**
 * Wrong admin tokens, counted per address (the caller's key: an IPv6 client by its /64) and
 * decaying. An address may send a few; past them, each wrong token locks its address out for a
 * while (doubling with each one, up to a cap). While an address is locked out its requests wait,
 * their token unchecked; once it has no failure to spare, its tokens are checked one at a time. So
 * one address gets a guess checked at most every few seconds, however many connections carry its
 * guesses, and a guess whose connection closes before its turn is never checked. A right token
 * from a locked-out address is answered late, never refused, and does not clear the failures
 * (time does). Lines about wrong tokens are logged once per address per interval, with the counts
 * since, and at most {@link MAX_LOG_LINES_PER_INTERVAL} of them per interval in all.
 */
export class TokenThrottle {
  readonly #options: TokenThrottleOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  /** Requests whose token is being checked, by address. */
  readonly #checking = new Map<string, number>();
  #logInterval: { start: number; lines: number } | undefined;

  constructor(options: Partial<TokenThrottleOptions> = {}, now: () => number = () => performance.now()) {
    this.#options = { ...DEFAULT_TOKEN_THROTTLE, ...options };
    this.#now = now;
  }

  /**
   * Whether a request from `key` may have its token checked now. An address with no failure to
   * spare is busy while another of its tokens is checked, so that guesses sent side by side are
   * not all checked before the first one locks it out.
   */
  admit(key: string): TokenAdmission {
    const entry = this.#entries.get(key);
    const now = this.#now();
    if (entry !== undefined && now < entry.lockedUntil) {
      return { kind: 'wait', ms: Math.ceil(entry.lockedUntil - now) };
    }
    const failures = entry === undefined ? 0 : this.#decayed(entry, now);
    const hasNoneToSpare = Math.ceil(failures) >= this.#options.freeTokenFailures;
    if (hasNoneToSpare && this.#checking.has(key)) return { kind: 'busy' };
    this.#checking.set(key, (this.#checking.get(key) ?? 0) + 1);
    let isDone = false;
    return {
      kind: 'check',
      done: () => {
        if (isDone) return;
        isDone = true;
        const left = (this.#checking.get(key) ?? 1) - 1;
        if (left > 0) this.#checking.set(key, left);
        else this.#checking.delete(key);
      },
    };
  }

  /** Records a wrong token from `key` (and maybe locks it out); a line to log, or undefined. */
  fail(key: string): TokenLogLine | undefined {
    const now = this.#now();
    const entry = this.#entry(key, now);
    entry.failures += 1;
    entry.unloggedFailures += 1;
    // A failure counts whole until it has decayed entirely.
    const over = Math.ceil(entry.failures) - this.#options.freeTokenFailures;
    if (over > 0) {
      const { tokenLockoutMs: base, maxTokenLockoutMs: max } = this.#options;
      entry.lockedUntil = now + Math.min(base * 2 ** Math.min(over - 1, MAX_DOUBLINGS), max);
    }
    return this.#logLine(entry, now);
  }

  /** Records a request from `key` that has to wait; a line to log, or undefined. */
  hold(key: string): TokenLogLine | undefined {
    const now = this.#now();
    const entry = this.#entry(key, now);
    entry.unloggedHeld += 1;
    return this.#logLine(entry, now);
  }

  /** The failures `key` has now (decayed). */
  failuresOf(key: string): number {
    const entry = this.#entries.get(key);
    return entry === undefined ? 0 : this.#decayed(entry, this.#now());
  }

  #logLine(entry: Entry, now: number): TokenLogLine | undefined {
    const interval = this.#options.tokenFailureLogIntervalMs;
    if (entry.loggedAt !== undefined && now - entry.loggedAt < interval) return undefined;
    if (this.#logInterval === undefined || now - this.#logInterval.start >= interval) {
      this.#logInterval = { start: now, lines: 0 };
    }
    if (this.#logInterval.lines >= MAX_LOG_LINES_PER_INTERVAL) return undefined;
    this.#logInterval.lines += 1;
    const line = {
      failures: entry.unloggedFailures,
      held: entry.unloggedHeld,
      lockoutMs: Math.max(0, Math.ceil(entry.lockedUntil - now)),
    };
    entry.loggedAt = now;
    entry.unloggedFailures = 0;
    entry.unloggedHeld = 0;
    return line;
  }

  #decayed(entry: Entry, now: number): number {
    return Math.max(0, entry.failures - (now - entry.at) / this.#options.tokenFailureDecayMs);
  }

  /** The entry of `key`, decayed to `now`, and moved to the end (the most recently seen). */
  #entry(key: string, now: number): Entry {
    let entry = this.#entries.get(key);
    if (entry !== undefined) {
      entry.failures = this.#decayed(entry, now);
      entry.at = now;
      this.#entries.delete(key);
    } else {
      entry = {
        failures: 0,
        at: now,
        lockedUntil: -Infinity,
        loggedAt: undefined,
        unloggedFailures: 0,
        unloggedHeld: 0,
      };
      if (this.#entries.size >= MAX_ENTRIES) {
        const oldest = this.#entries.keys().next().value;
        if (oldest !== undefined) this.#entries.delete(oldest);
      }
    }
    this.#entries.set(key, entry);
    return entry;
  }
}
