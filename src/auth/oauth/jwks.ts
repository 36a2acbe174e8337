import { readFile } from 'node:fs/promises';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { silentLogger, type Logger } from '../../log.js';
import { nameClaim, type OAuthVerifier, type TokenVerdict } from './verifier.js';
import { asError } from '../../errors.js';

export interface JwksVerifierOptions {
  /** Where the keys are: a JWKS URL (fetched and cached by `jose`) or a key set already read. */
  readonly keys: { readonly url: string | URL } | { readonly jwks: JSONWebKeySet };
  /** The token's `aud` must contain this: a token the issuer made for another service is refused. */
  readonly audience: string;
  /** When set, the token's `iss` must be this. */
  readonly issuer?: string;
  /**
   * Claims that name the user, the first present wins; default `email`, then `sub`. A name taken
   * from `email` counts only with `email_verified: true` (the boolean) in the same token.
   */
  readonly usernameClaims?: readonly string[];
  /** Deadline for fetching the key set; default 5 s. */
  readonly timeoutMs?: number;
  readonly logger?: Logger;
}

export const DEFAULT_JWT_CLAIMS = ['email', 'sub'] as const;

/** Reads a JWKS file (`{"keys":[...]}`); throws, naming the file, when it is not a usable key set. */
export async function readJwksFile(path: string): Promise<JSONWebKeySet> {
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(await readFile(path, 'utf8')) as JSONWebKeySet;
    createLocalJWKSet(jwks); // checks the form
  } catch (error) {
    throw new Error(`cannot use the JWKS file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return jwks;
}

/**
 * Checks bearer tokens that are signed JWTs (RFC 7519) against the authorization server's public
 * keys (a JWKS, RFC 7517), with `jose`: signature, `exp` (required), `nbf`, `aud`, and `iss` when
 * configured. A key set that cannot be fetched makes the login fail as temporary; a bad token as
 * invalid. The token is never logged.
 */
export class JwksVerifier implements OAuthVerifier {
  readonly #keys: JWTVerifyGetKey;
  readonly #audience: string;
  readonly #issuer: string | undefined;
  readonly #claims: readonly string[];
  readonly #logger: Logger;

  constructor(options: JwksVerifierOptions) {
    if (options.audience === '') throw new Error('the JWT audience must not be empty');
    this.#keys =
      'url' in options.keys
        ? createRemoteJWKSet(new URL(options.keys.url), { timeoutDuration: options.timeoutMs ?? 5000 })
        : createLocalJWKSet(options.keys.jwks);
    this.#audience = options.audience;
    this.#issuer = options.issuer;
    this.#claims = options.usernameClaims ?? DEFAULT_JWT_CLAIMS;
    this.#logger = options.logger ?? silentLogger;
  }

  async verify(token: string): Promise<TokenVerdict> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        audience: this.#audience,
        requiredClaims: ['exp'],
        ...(this.#issuer === undefined ? {} : { issuer: this.#issuer }),
      }));
    } catch (error) {
      if (isKeySetUnavailable(error)) {
        this.#logger.warn({ err: asError(error) }, 'JWKS unavailable');
        return { ok: false, reason: 'temporary' };
      }
      this.#logger.debug({ why: (error as errors.JOSEError).code }, 'bearer token refused');
      return { ok: false, reason: 'invalid' };
    }
    const name = nameClaim(payload, this.#claims);
    // An address the identity provider has not checked names nobody: at a provider that lets users
    // edit their email and does not flag it (the "nOAuth" pattern), the email says whoever they like.
    // Only the boolean true counts; a missing flag or the string "true" does not.
    const isUncheckedEmail = name?.claim === 'email' && payload['email_verified'] !== true;
    if (name === undefined || isUncheckedEmail) {
      this.#logger.debug(
        { why: name === undefined ? 'no usable user name claim' : 'email not verified' },
        'bearer token refused',
      );
      return { ok: false, reason: 'invalid' };
    }
    return { ok: true, username: name.value };
  }
}

/** Fetch failures, timeouts and unusable key sets: the server's problem, not the token's. */
function isKeySetUnavailable(error: unknown): boolean {
  if (!(error instanceof errors.JOSEError)) return true;
  return (
    error instanceof errors.JWKSTimeout ||
    error instanceof errors.JWKSInvalid ||
    error.code === 'ERR_JOSE_GENERIC'
  );
}
