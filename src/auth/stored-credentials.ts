import { apopDigest, checkDigest, cramMd5Digest } from './digests.js';
import { HashPoolError, HashPoolErrorCode } from './passwords/hash-pool.js';
import { preparePassword } from './passwords/prepare.js';
import { DEFAULT_SCHEME, hashPassword, parseStoredPassword } from './passwords/registry.js';
import { scramCredentials } from './passwords/scram.js';
import type { ScramCredentials, StoredPassword } from './passwords/types.js';
import type { ApopAuthRequest, AuthResult, CramMd5AuthRequest, PasswordAuthRequest } from './types.js';

/**
 * What every backend that holds `{SCHEME}` hashes does with them, whatever it reads them from (the
 * users file, a database, an LDAP attribute): check a password against a stored one, or against a
 * decoy for a name without one; answer APOP and CRAM-MD5 from a `{PLAIN}` secret; give a
 * `{SCRAM-SHA-256}` user's keys.
 */

/** What a password check found: it matched, it did not, or there is no answer now (`-ERR [SYS/TEMP]`). */
export type PasswordCheck = 'match' | 'mismatch' | 'temporary';

/**
 * Checks `request.password`, prepared as it was when stored (`preparePassword`), against `stored`,
 * or, when there is none (an unknown name), against `decoy()` with the result thrown away, so that
 * an unknown name costs what a user costs. A password SASLprep refuses matches nothing (it is still
 * checked, against the decoy: the answer takes as long).
 */
export async function checkPassword(
  stored: StoredPassword | undefined,
  decoy: () => Promise<StoredPassword>,
  request: Pick<PasswordAuthRequest, 'password' | 'signal'>,
): Promise<PasswordCheck> {
  const prepared = preparePassword(request.password);
  const checked = prepared === undefined ? await decoy() : (stored ?? (await decoy()));
  let isMatch: boolean;
  try {
    isMatch = await checked.scheme.verify(prepared ?? request.password, checked.data, request.signal);
  } catch (error) {
    // The hash pool is full (a flood of expensive guesses), or the client has gone: no answer now.
    if (isPoolRefusal(error)) return 'temporary';
    throw error;
  }
  return isMatch && stored !== undefined && checked === stored ? 'match' : 'mismatch';
}

const isPoolRefusal = (error: unknown): boolean =>
  error instanceof HashPoolError &&
  (error.code === HashPoolErrorCode.QUEUE_FULL || error.code === HashPoolErrorCode.CANCELLED);

/**
 * A decoy for backends that cannot see their users (a database): one hash of `scheme`, made on
 * first use and kept, which unknown names are checked against.
 */
export class DefaultDecoy {
  readonly #scheme: string;
  #stored: Promise<StoredPassword> | undefined;

  constructor(scheme = DEFAULT_SCHEME) {
    this.#scheme = scheme;
  }

  get(): Promise<StoredPassword> {
    this.#stored ??= hashPassword('decoy password', this.#scheme).then(
      (field) => parseStoredPassword(field) as StoredPassword,
    );
    return this.#stored;
  }
}

/** The secret of a `{PLAIN}` password, which APOP and CRAM-MD5 need; undefined for anything else. */
export const plainSecretOf = (stored: StoredPassword | undefined): string | undefined =>
  stored?.scheme.isPlaintext === true ? stored.data : undefined;

/** APOP (RFC 1939 section 7) against a stored password: only a `{PLAIN}` one can match. */
export const checkApop = (request: ApopAuthRequest, stored: StoredPassword | undefined): AuthResult =>
  checkDigest(request.username, plainSecretOf(stored), request.digest, (s) =>
    apopDigest(request.timestamp, s),
  );

/** CRAM-MD5 (RFC 2195) against a stored password: only a `{PLAIN}` one can match. */
export const checkCramMd5 = (request: CramMd5AuthRequest, stored: StoredPassword | undefined): AuthResult =>
  checkDigest(request.username, plainSecretOf(stored), request.digest, (s) =>
    cramMd5Digest(request.challenge, s),
  );

/** The SCRAM-SHA-256 keys of a `{SCRAM-SHA-256}` password; undefined for anything else. */
export const scramOf = (stored: StoredPassword | undefined): ScramCredentials | undefined =>
  stored === undefined ? undefined : scramCredentials(stored);

/**
 * A password field as a database holds it: `{SCHEME}data`, or, as Postfixadmin writes them, a
 * bare crypt(3) hash (`$6$...`, `$5$...`, `$2y$...`), read as `{CRYPT}`. A reason string when it
 * cannot be used (an MD5-crypt `$1$` hash among them: the `{CRYPT}` scheme says so).
 */
export function parseDatabasePassword(field: string): StoredPassword | string {
  return parseStoredPassword(field.startsWith('$') ? `{CRYPT}${field}` : field);
}
