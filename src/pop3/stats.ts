import { UserTraffic } from './user-traffic.js';

/** Login outcomes of one method (USER, APOP, and later the SASL mechanisms). */
export interface LoginCounts {
  succeeded: number;
  failed: number;
}

/**
 * Counters kept by the engine since start. The monitor protocol and the metrics endpoint both read
 * this one object, so they can never disagree. Byte counts grow as bytes move, not at disconnect.
 */
export class ServerStats {
  readonly startedAt = Date.now();
  connectionsTotal = 0;
  connectionsOpen = 0;
  /** Connections refused by a connection limit or during shutdown. */
  connectionsRefused = 0;
  sessionsAuthenticated = 0;
  loginsSucceeded = 0;
  loginsFailed = 0;
  /**
   * Login attempts whose answer the login throttle held back because of recent failures of their
   * address or user name (beyond the plain `authFailureDelayMs` of a failure).
   */
  loginsThrottled = 0;
  /** Password logins answered by the authentication cache, without the slow hash. */
  authCacheHits = 0;
  /** Password logins the cache sent to the authenticator (no entry, stale, or another password). */
  authCacheMisses = 0;
  /** Names in the authentication cache now. */
  authCacheEntries = 0;
  /** The same logins, by method. */
  readonly logins = new Map<string, LoginCounts>();
  bytesIn = 0;
  bytesOut = 0;
  messagesRetrieved = 0;
  messagesDeleted = 0;
  /** Bytes sent to each user's finished sessions over the last 24 hours (the dashboard's top users). */
  readonly userTraffic = new UserTraffic();

  /** A connection ended: its bytes count for its user's traffic (none before login). */
  recordClose(user: string | undefined, bytesOut: number): void {
    if (user !== undefined) this.userTraffic.add(user, bytesOut);
  }

  recordLogin(method: string, isSuccess: boolean): void {
    let counts = this.logins.get(method);
    if (counts === undefined) {
      counts = { succeeded: 0, failed: 0 };
      this.logins.set(method, counts);
    }
    if (isSuccess) {
      counts.succeeded += 1;
      this.loginsSucceeded += 1;
    } else {
      counts.failed += 1;
      this.loginsFailed += 1;
    }
  }
}

/** The names of the counters of a {@link ServerStats} (its numbers, but its start time). */
export type CounterName = Exclude<
  { [K in keyof ServerStats]: ServerStats[K] extends number ? K : never }[keyof ServerStats],
  'startedAt'
>;

export type Counters = Readonly<Record<CounterName, number>>;

/** A copy of the counters of `stats`. */
export function countersOf(stats: Counters): Record<CounterName, number> {
  const copy: Record<string, number> = {};
  for (const [key, value] of Object.entries(stats)) {
    if (typeof value === 'number' && key !== 'startedAt') copy[key] = value;
  }
  return copy;
}
