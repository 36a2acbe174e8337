import { canonicalUserName, prepareUserName } from '../../user.js';
import type { AuthResult, BearerAuthRequest } from '../types.js';

/** What a verifier decided about one token. */
export type TokenVerdict =
  | { readonly ok: true; readonly username: string }
  /** `invalid`: expired, revoked, forged or not for us; `temporary`: the verifier could not decide now. */
  | { readonly ok: false; readonly reason: 'invalid' | 'temporary' };

/**
 * Checks an OAuth 2.0 bearer token and says whose it is: the pluggable part of OAUTHBEARER and
 * XOAUTH2. Poplar ships two (token introspection, RFC 7662, and signed JWTs checked against a
 * JWKS); an embedder can bring its own. Give it to `StaticAuthenticator` or
 * `PasswdFileAuthenticator` as the `oauth` option, which then offer the two mechanisms.
 * Implementations must never log the token.
 */
export interface OAuthVerifier {
  verify(token: string, signal: AbortSignal): Promise<TokenVerdict>;
}

/**
 * The common rule for a bearer login: the token must be valid, name a valid Poplar user name that
 * `isKnownUser` accepts (a token does not create a mailbox), and match the name the client
 * claimed, if it claimed one (exactly: Poplar does not let one user act for another).
 */
export async function authenticateBearerWith(
  verifier: OAuthVerifier,
  request: BearerAuthRequest,
  isKnownUser: (name: string) => boolean,
): Promise<AuthResult> {
  const verdict = await verifier.verify(request.token, request.signal);
  if (!verdict.ok) return { ok: false, reason: verdict.reason };
  const name = canonicalUserName(verdict.username);
  if (name === undefined || !isKnownUser(name)) return { ok: false, reason: 'invalid' };
  if (request.username !== undefined && prepareUserName(request.username) !== name) {
    return { ok: false, reason: 'invalid' };
  }
  return { ok: true, user: { name } };
}

/** The first of `claims` that is a non-empty string in `payload`. */
export function claimedName(
  payload: Readonly<Record<string, unknown>>,
  claims: readonly string[],
): string | undefined {
  return nameClaim(payload, claims)?.value;
}

/** The first of `claims` that is a non-empty string in `payload`, and which claim it was. */
export function nameClaim(
  payload: Readonly<Record<string, unknown>>,
  claims: readonly string[],
): { readonly claim: string; readonly value: string } | undefined {
  for (const claim of claims) {
    const value = payload[claim];
    if (typeof value === 'string' && value !== '') return { claim, value };
  }
  return undefined;
}
