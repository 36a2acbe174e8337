import { silentLogger, type Logger } from '../../log.js';
import { claimedName, type OAuthVerifier, type TokenVerdict } from './verifier.js';
import { asError } from '../../errors.js';

export interface IntrospectionVerifierOptions {
  /** The authorization server's introspection endpoint (RFC 7662 section 2). */
  readonly url: string | URL;
  /** Poplar's client credentials there, sent with HTTP Basic (RFC 6749 section 2.3.1). */
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** Claims that name the user, the first present wins; default `username`, then `sub`. */
  readonly usernameClaims?: readonly string[];
  /** When set, the response's `iss` must be this. */
  readonly issuer?: string;
  /** When set, the response's `aud` (a string or a list) must contain this. */
  readonly audience?: string;
  /** Deadline for one request; default 5 s. */
  readonly timeoutMs?: number;
  readonly logger?: Logger;
}

export const DEFAULT_INTROSPECTION_CLAIMS = ['username', 'sub'] as const;
/** An introspection response is a small JSON object; anything larger is refused. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** `application/x-www-form-urlencoded`, as RFC 6749 section 2.3.1 asks for the Basic credentials. */
const formEncode = (value: string): string => new URLSearchParams({ v: value }).toString().slice(2);

/**
 * Asks the authorization server whether a token is active (OAuth 2.0 Token Introspection,
 * RFC 7662): `POST token=...`, answered with JSON whose `active` must be true. An endpoint that
 * cannot be reached, times out or answers other than 200 with JSON makes the login fail as
 * temporary (`-ERR [SYS/TEMP]`), never as a wrong token. The token is never logged.
 */
export class IntrospectionVerifier implements OAuthVerifier {
  readonly #url: URL;
  readonly #authorization: string | undefined;
  readonly #claims: readonly string[];
  readonly #issuer: string | undefined;
  readonly #audience: string | undefined;
  readonly #timeoutMs: number;
  readonly #logger: Logger;

  constructor(options: IntrospectionVerifierOptions) {
    this.#url = new URL(options.url);
    if (this.#url.protocol !== 'https:' && this.#url.protocol !== 'http:') {
      throw new Error('the introspection URL must be http: or https:');
    }
    if (options.clientSecret !== undefined && options.clientId === undefined) {
      throw new Error('a client secret needs a client id');
    }
    this.#authorization =
      options.clientId === undefined
        ? undefined
        : `Basic ${Buffer.from(`${formEncode(options.clientId)}:${formEncode(options.clientSecret ?? '')}`).toString('base64')}`;
    this.#claims = options.usernameClaims ?? DEFAULT_INTROSPECTION_CLAIMS;
    this.#issuer = options.issuer;
    this.#audience = options.audience;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#logger = options.logger ?? silentLogger;
  }

  async verify(token: string, signal: AbortSignal): Promise<TokenVerdict> {
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;
    let payload: unknown;
    try {
      const response = await fetch(this.#url, {
        method: 'POST',
        headers,
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        redirect: 'error',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)]),
      });
      if (response.status !== 200) {
        await response.body?.cancel();
        this.#logger.error({ status: response.status }, 'token introspection refused our request');
        return { ok: false, reason: 'temporary' };
      }
      payload = JSON.parse(await readLimited(response, MAX_RESPONSE_BYTES));
    } catch (error) {
      // The error text never carries the token: it is only ever in the request body.
      this.#logger.warn({ err: asError(error) }, 'token introspection failed');
      return { ok: false, reason: 'temporary' };
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      this.#logger.warn({}, 'token introspection answered with something other than a JSON object');
      return { ok: false, reason: 'temporary' };
    }
    return this.#judge(payload as Record<string, unknown>);
  }

  #judge(claims: Readonly<Record<string, unknown>>): TokenVerdict {
    const refuse = (why: string): TokenVerdict => {
      this.#logger.debug({ why }, 'bearer token refused');
      return { ok: false, reason: 'invalid' };
    };
    if (claims['active'] !== true) return refuse('not active');
    const now = Date.now() / 1000;
    const exp = claims['exp'];
    if (typeof exp === 'number' && exp <= now) return refuse('expired');
    const nbf = claims['nbf'];
    if (typeof nbf === 'number' && nbf > now) return refuse('not yet valid');
    if (this.#issuer !== undefined && claims['iss'] !== this.#issuer) return refuse('wrong issuer');
    if (this.#audience !== undefined) {
      const aud = claims['aud'];
      const audiences = Array.isArray(aud) ? aud : [aud];
      if (!audiences.includes(this.#audience)) return refuse('wrong audience');
    }
    const username = claimedName(claims, this.#claims);
    if (username === undefined) return refuse('no user name claim');
    return { ok: true, username };
  }
}

/** The response body as text, refusing more than `maxBytes`. */
async function readLimited(response: Response, maxBytes: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  if (response.body === null) return '';
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    bytes += chunk.byteLength;
    if (bytes > maxBytes) {
      await response.body.cancel();
      throw new Error(`response larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
