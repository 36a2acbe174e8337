import { ConfigError } from '../errors.js';

/**
 * Every limit the POP3 engine enforces. Each one is a named option with a documented default;
 * see the README's "Limits" table.
 */
export interface Pop3Limits {
  /** Longest command line accepted, in bytes, without its line end. RFC 2449 section 4 asks for at least 255. */
  readonly maxCommandBytes: number;
  /** Longest SASL continuation line (AUTH exchanges carry base64 data, longer than commands). */
  readonly maxSaslLineBytes: number;
  /**
   * Longest password accepted by USER/PASS and SASL PLAIN and LOGIN, in UTF-8 bytes. A longer one
   * fails as a wrong password would, unhashed: SHA-crypt's cost grows with the password's length.
   */
  readonly maxPasswordBytes: number;
  /** Bad commands (unknown, wrong state, bad arguments, overlong) allowed per connection; the next one closes it. */
  readonly maxProtocolErrors: number;
  /** Pause before answering a failed login, slowing password guessing. */
  readonly authFailureDelayMs: number;
  /** Failed logins allowed per connection; the last one closes it. */
  readonly maxAuthFailures: number;
  /** Open POP3 connections in total; more are refused at once. */
  readonly maxConnections: number;
  /** Open POP3 connections from one IP address (an IPv6 client by its /64); more are refused at once. */
  readonly maxConnectionsPerIp: number;
  /** Inactivity allowed after login. RFC 1939 section 3 requires at least 10 minutes. */
  readonly idleTimeoutMs: number;
  /** Time allowed from connecting to a successful login. */
  readonly loginTimeoutMs: number;
  /** How long a write may wait for a client that does not read before the connection is dropped. */
  readonly writeStallTimeoutMs: number;
  /** Size of the chunks in which message bodies are read and sent. */
  readonly transferChunkBytes: number;
  /**
   * Login throttle: the longest delay before answering a login from an address with recent failures
   * (an IPv6 address counts as its /64). The delay doubles from `authFailureDelayMs` with each failure.
   */
  readonly authThrottleMaxDelayMs: number;
  /**
   * Login throttle: the longest delay caused by failures for one user name, from any address. Kept
   * small so that an attack on a name from elsewhere never locks its owner out.
   */
  readonly authThrottleMaxUserDelayMs: number;
  /** Login throttle: failures of an address or user name are forgotten this long after the last one. */
  readonly authThrottleWindowMs: number;
  /** Login throttle: addresses, and separately user names, remembered at most; the stalest go first. */
  readonly authThrottleMaxEntries: number;
  /**
   * Authentication cache: how long a password that logged a user in is accepted again without its
   * slow hash (as Dovecot's `auth_cache_ttl`). A new password or a removed user counts at once.
   */
  readonly authCacheTtlMs: number;
  /** Authentication cache: user names remembered at most, the least recently used going first; 0: no cache. */
  readonly authCacheMaxEntries: number;
  /**
   * Time a connection from a `proxyProtocolFrom` network has to send its whole PROXY header (the
   * spec asks for at least 3 s, to cover a TCP retransmission); then it is closed.
   */
  readonly proxyHeaderTimeoutMs: number;
}

/** RFC 1939 section 3: "an autologout timer ... of at least 10 minutes". */
export const MIN_IDLE_TIMEOUT_MS = 600_000;
/** RFC 2449 section 4: command lines up to 255 octets must be accepted. */
export const MIN_COMMAND_BYTES = 255;

/** Every limit's default (see the README's "Limits" for why each is what it is). */
export const DEFAULT_LIMITS: Pop3Limits = {
  maxCommandBytes: 1024,
  maxSaslLineBytes: 8192,
  maxPasswordBytes: 1024,
  maxProtocolErrors: 10,
  authFailureDelayMs: 1000,
  maxAuthFailures: 3,
  maxConnections: 1000,
  maxConnectionsPerIp: 20,
  idleTimeoutMs: MIN_IDLE_TIMEOUT_MS,
  loginTimeoutMs: 60_000,
  writeStallTimeoutMs: 60_000,
  transferChunkBytes: 65_536,
  authThrottleMaxDelayMs: 30_000,
  authThrottleMaxUserDelayMs: 4000,
  authThrottleWindowMs: 900_000,
  authThrottleMaxEntries: 10_000,
  authCacheTtlMs: 3_600_000,
  authCacheMaxEntries: 10_000,
  proxyHeaderTimeoutMs: 3000,
};

const MINIMUMS: { readonly [K in keyof Pop3Limits]: number } = {
  maxCommandBytes: MIN_COMMAND_BYTES,
  maxSaslLineBytes: 512,
  // NIST SP 800-63B section 5.1.1.2: verifiers should permit at least 64 characters.
  maxPasswordBytes: 64,
  maxProtocolErrors: 1,
  authFailureDelayMs: 0,
  maxAuthFailures: 1,
  maxConnections: 1,
  maxConnectionsPerIp: 1,
  idleTimeoutMs: MIN_IDLE_TIMEOUT_MS,
  loginTimeoutMs: 1,
  writeStallTimeoutMs: 1,
  transferChunkBytes: 512,
  authThrottleMaxDelayMs: 0,
  authThrottleMaxUserDelayMs: 0,
  authThrottleWindowMs: 1,
  authThrottleMaxEntries: 1,
  authCacheTtlMs: 1,
  authCacheMaxEntries: 0,
  proxyHeaderTimeoutMs: 1,
};

const MAXIMUMS: Partial<{ readonly [K in keyof Pop3Limits]: number }> = {
  maxCommandBytes: 65_536,
  maxSaslLineBytes: 65_536,
  maxPasswordBytes: 65_536,
  transferChunkBytes: 1_048_576,
  // Each entry is a short key and two numbers: a million of each kind stays within a few hundred MB.
  authThrottleMaxEntries: 1_000_000,
  // A day: a digest that outlives that is memory held for nothing, and longer than an operator expects.
  authCacheTtlMs: 86_400_000,
  // Each entry is a name, a 32-byte digest and a user: a million stays within a few hundred MB.
  authCacheMaxEntries: 1_000_000,
};

/** Fills in defaults and rejects values out of range with a {@link ConfigError} naming the option. */
export function resolveLimits(given: Partial<Pop3Limits> = {}): Pop3Limits {
  const limits: Record<string, number> = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(given) as [keyof Pop3Limits, unknown][]) {
    if (!Object.hasOwn(DEFAULT_LIMITS, key)) throw new ConfigError(`unknown limit "${key}"`);
    if (value === undefined) continue;
    const min = MINIMUMS[key];
    const max = MAXIMUMS[key] ?? Number.MAX_SAFE_INTEGER;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(`limit ${key} must be a whole number from ${min} to ${max}`);
    }
    limits[key] = value;
  }
  return limits as unknown as Pop3Limits;
}
