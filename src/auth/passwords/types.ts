/**
 * A stored password, as Dovecot writes it: `{SCHEME}data`. Slow schemes never run on the event
 * loop: PBKDF2, SCRAM and Argon2 run on libuv's thread pool, bcrypt and SHA-crypt (JavaScript) on
 * the hash pool's worker threads (hash-pool.ts).
 */
export interface PasswordScheme {
  /** Upper-case name inside the braces. */
  readonly name: string;
  /** Why `data` cannot be used with this scheme, or undefined when it can. */
  problem(data: string): string | undefined;
  /**
   * Whether `password` matches; false (never a throw) for data that problem() refuses. Schemes
   * hashed on the hash pool reject with a `HashPoolError` when its queue is full, or when `signal`
   * aborts before the job started (the client went away): no hash is computed for nobody.
   */
  verify(password: string, data: string, signal?: AbortSignal): Promise<boolean>;
  /** `data` for a new password, with this scheme's default cost. */
  hash(password: string): Promise<string>;
  /** Schemes that keep the secret recoverable (needed by APOP). */
  readonly isPlaintext: boolean;
}

/** A stored password ready to check: its scheme, and the data after `{SCHEME}`. */
export interface StoredPassword {
  readonly scheme: PasswordScheme;
  readonly data: string;
}

/**
 * Dovecot's `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey` (base64 with padding; Dovecot's
 * password-scheme-scram.c), the keys of RFC 5802 section 3 with SHA-256 (RFC 7677). The password
 * is used as its UTF-8 bytes, without SASLprep, as Dovecot 2.3 does.
 */
export interface ScramCredentials {
  readonly iterations: number;
  readonly salt: Buffer;
  /** H(ClientKey): checks the client's proof. */
  readonly storedKey: Buffer;
  /** HMAC(SaltedPassword, "Server Key"): signs the server's final message. */
  readonly serverKey: Buffer;
}

/** The problem() answer for data that does not have the scheme's form. */
export const malformed = (scheme: string): string => `malformed {${scheme}} password`;

/** The problem() answer for well-formed data that Poplar does not handle, saying why. */
export const unsupported = (scheme: string, why: string): string =>
  `unsupported {${scheme}} password: ${why}`;
