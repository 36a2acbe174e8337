import { createHash } from 'node:crypto';
import { safeEqual } from './compare.js';
import type { ApopAuthRequest, AuthenticatorWithApop, AuthResult, PasswordAuthRequest } from './types.js';

/** The APOP digest (RFC 1939 section 7): hex MD5 of the greeting timestamp followed by the secret. */
export function apopDigest(timestamp: string, secret: string): string {
  return createHash('md5')
    .update(timestamp + secret, 'utf8')
    .digest('hex');
}

/**
 * Users and plain passwords given in code: for tests, demos and programs that keep their own
 * user list. Offers APOP, since it holds the secrets.
 */
export class StaticAuthenticator implements AuthenticatorWithApop {
  readonly #users: ReadonlyMap<string, string>;

  constructor(users: Readonly<Record<string, string>>) {
    this.#users = new Map(Object.entries(users));
  }

  authenticate(request: PasswordAuthRequest): Promise<AuthResult> {
    const secret = this.#users.get(request.username);
    const isMatch = safeEqual(secret ?? '\0', request.password) && secret !== undefined;
    return Promise.resolve(
      isMatch ? { ok: true, user: { name: request.username } } : { ok: false, reason: 'invalid' },
    );
  }

  authenticateApop(request: ApopAuthRequest): Promise<AuthResult> {
    // An empty secret would make the digest computable from the greeting alone.
    const secret = this.#users.get(request.username) || undefined;
    const expected = apopDigest(request.timestamp, secret ?? '\0');
    const isMatch = safeEqual(expected, request.digest) && secret !== undefined;
    return Promise.resolve(
      isMatch ? { ok: true, user: { name: request.username } } : { ok: false, reason: 'invalid' },
    );
  }
}

export function staticAuth(users: Readonly<Record<string, string>>): StaticAuthenticator {
  return new StaticAuthenticator(users);
}
