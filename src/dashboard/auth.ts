import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../log.js';
import { tokenHolder, type AdminStore } from '../monitor/admins.js';
import { TokenThrottle, type TokenThrottleOptions } from '../monitor/token-throttle.js';
import { addressKey } from '../pop3/throttle.js';

/** An Authorization header longer than this is refused unread (a name and a 16-byte token fit). */
const MAX_AUTHORIZATION_BYTES = 1024;

/** The outcome of a request's credentials. */
export type Admission =
  | { readonly kind: 'admin'; readonly admin: string }
  /** None, malformed or wrong: 401. */
  | { readonly kind: 'refused' }
  /** Too many wrong ones from this address lately: 401 too, with Retry-After, the credentials unchecked. */
  | { readonly kind: 'throttled'; readonly retryAfterMs: number };

/** The name and password of an `Authorization: Basic` header, or undefined. */
export function basicCredentials(header: string | undefined): { name: string; secret: string } | undefined {
  if (header === undefined || header.length > MAX_AUTHORIZATION_BYTES) return undefined;
  const match = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header);
  if (match?.[1] === undefined) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { name: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/**
 * Who may see the dashboard: a monitor admin, by name and token (the admins file), in HTTP Basic
 * authentication. The token is checked against every admin, in the same time whoever matches, and
 * the name must be the matching admin's. Wrong credentials count against the client's address (an
 * IPv6 client by its /64) as the monitor counts wrong tokens: past a few, the address's requests are
 * refused for a while, their credentials unchecked. The default (public) token opens nothing when
 * `refusesDefaultToken`.
 */
export class DashboardAuth {
  readonly #admins: AdminStore;
  readonly #throttle: TokenThrottle;
  readonly #logger: Logger;
  readonly #refusesDefaultToken: boolean;
  /** The key of this process's CSRF tokens: a kick form from another process or a restart is stale. */
  readonly #csrfKey = randomBytes(32);

  constructor(options: {
    readonly admins: AdminStore;
    readonly logger: Logger;
    readonly refusesDefaultToken: boolean;
    readonly throttle?: Partial<TokenThrottleOptions>;
  }) {
    this.#admins = options.admins;
    this.#logger = options.logger;
    this.#refusesDefaultToken = options.refusesDefaultToken;
    this.#throttle = new TokenThrottle(options.throttle);
  }

  async admit(req: IncomingMessage): Promise<Admission> {
    const address = req.socket.remoteAddress ?? '';
    const key = addressKey(address);
    const admission = this.#throttle.admit(key);
    if (admission.kind !== 'check') {
      const line = this.#throttle.hold(key);
      if (line !== undefined) this.#logger.warn({ remote: address, ...line }, 'dashboard login throttled');
      return { kind: 'throttled', retryAfterMs: admission.kind === 'wait' ? admission.ms : 1000 };
    }
    try {
      const credentials = basicCredentials(req.headers.authorization);
      // No credentials at all is a browser's first request, not a guess.
      if (credentials === undefined && req.headers.authorization === undefined) return { kind: 'refused' };
      const admin = credentials === undefined ? undefined : await this.#verify(credentials);
      if (admin !== undefined) return { kind: 'admin', admin };
      const line = this.#throttle.fail(key);
      if (line !== undefined)
        this.#logger.warn({ remote: address, ...line }, 'dashboard request with wrong credentials');
      return { kind: 'refused' };
    } finally {
      admission.done();
    }
  }

  /** Whether an admin still holds these credentials (an open event stream checks it now and then). */
  async isStillValid(req: IncomingMessage, admin: string): Promise<boolean> {
    const credentials = basicCredentials(req.headers.authorization);
    return credentials !== undefined && (await this.#verify(credentials)) === admin;
  }

  async #verify({ name, secret }: { name: string; secret: string }): Promise<string | undefined> {
    const holder = await tokenHolder(this.#admins, secret, this.#refusesDefaultToken);
    return holder !== undefined && holder === name ? holder : undefined;
  }

  /** The CSRF token of an admin's page: a kick must carry it back. */
  csrfToken(admin: string): string {
    return createHmac('sha256', this.#csrfKey).update(admin).digest('base64url');
  }

  isCsrfToken(admin: string, token: string | undefined): boolean {
    if (token === undefined) return false;
    const expected = Buffer.from(this.csrfToken(admin));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
