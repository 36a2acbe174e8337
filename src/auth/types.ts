import type { MailUser } from '../user.js';
import type { ScramCredentials } from './passwords/types.js';

export type { ScramCredentials } from './passwords/types.js';

interface AuthRequestBase {
  /** The name the client gave, as sent (already checked to be UTF-8 without control characters). */
  readonly username: string;
  readonly remoteAddress: string;
  /** True when the connection is encrypted. */
  readonly isTls: boolean;
  readonly signal: AbortSignal;
}

/** A login that carries the password itself: USER/PASS, SASL PLAIN and LOGIN. */
export interface PasswordAuthRequest extends AuthRequestBase {
  readonly mechanism: 'USER';
  readonly password: string;
}

/** APOP (RFC 1939 section 7): `digest` is the hex MD5 of the greeting's timestamp and the secret. */
export interface ApopAuthRequest extends AuthRequestBase {
  readonly mechanism: 'APOP';
  readonly timestamp: string;
  readonly digest: string;
}

/** CRAM-MD5 (RFC 2195): `digest` is the lower-case hex HMAC-MD5 of `challenge`, keyed with the secret. */
export interface CramMd5AuthRequest extends AuthRequestBase {
  readonly mechanism: 'CRAM-MD5';
  readonly challenge: string;
  readonly digest: string;
}

/** SCRAM-SHA-256 (RFC 7677): the server asks for the user's salted keys, never for the password. */
export interface ScramCredentialsRequest extends AuthRequestBase {
  readonly mechanism: 'SCRAM-SHA-256';
}

/**
 * A bearer token (OAUTHBEARER, RFC 7628; Google's XOAUTH2). `username` is the name the client
 * claimed (OAUTHBEARER's optional authzid, XOAUTH2's `user=`); the token decides who logs in.
 */
export interface BearerAuthRequest extends Omit<AuthRequestBase, 'username'> {
  readonly mechanism: 'OAUTHBEARER' | 'XOAUTH2';
  readonly username: string | undefined;
  readonly token: string;
}

/** What an authenticator decided: the user who logged in, or why not. */
export type AuthResult =
  | { readonly ok: true; readonly user: MailUser }
  /**
   * `invalid`: wrong name or credentials (the client is not told which); `temporary`: the backend
   * could not decide now (`-ERR [SYS/TEMP]`).
   */
  | { readonly ok: false; readonly reason: 'invalid' | 'temporary' };

/**
 * Decides who may log in with a name and password (USER/PASS, SASL PLAIN and LOGIN): the one thing
 * every backend does. A backend that can do more also implements one or more of the capability
 * interfaces below, each with its methods together, which the engine finds at run time (as
 * go-imap's optional session interfaces): {@link AuthenticatorWithApop},
 * {@link AuthenticatorWithCramMd5}, {@link AuthenticatorWithScram}, {@link AuthenticatorWithBearer}.
 *
 * Implementations must not reveal, by reply or timing, whether a name exists.
 */
export interface Authenticator {
  authenticate(request: PasswordAuthRequest): Promise<AuthResult>;
}

/**
 * APOP (RFC 1939 section 7) needs the shared secret in the clear, so only backends that store it
 * can offer it. When offered, the greeting carries an APOP timestamp.
 */
export interface AuthenticatorWithApop extends Authenticator {
  authenticateApop(request: ApopAuthRequest): Promise<AuthResult>;
  /**
   * Whether APOP is offered now (asked for each connection); absent: always. A greeting timestamp
   * makes clients such as curl use APOP without falling back to USER/PASS, so a backend whose
   * users cannot all use APOP should say no.
   */
  isApopOffered?(): boolean;
}

/** CRAM-MD5 (RFC 2195), like APOP, needs the secret in the clear. */
export interface AuthenticatorWithCramMd5 extends Authenticator {
  authenticateCramMd5(request: CramMd5AuthRequest): Promise<AuthResult>;
  /** Whether CRAM-MD5 is offered now (CAPA's SASL line, asked for each CAPA and AUTH); absent: always. */
  isCramMd5Offered?(): boolean;
}

/** SCRAM-SHA-256 (RFC 7677): the backend gives a user's salted keys, never the password. */
export interface AuthenticatorWithScram extends Authenticator {
  /**
   * The SCRAM-SHA-256 keys of a user, or undefined for a user who has none (unknown, or stored
   * another way). The mechanism then goes on with made-up keys, so that the failure looks like a
   * wrong password.
   */
  scramCredentials(request: ScramCredentialsRequest): Promise<ScramCredentials | undefined>;
  /**
   * The iteration count of the made-up keys for a name with none, so that it matches what real
   * users have (PasswdFileAuthenticator: the user an unknown name is checked against); absent: 4096.
   * The made-up salt comes from the server's `decoySecret`.
   */
  scramDecoyIterations?(username: string): number;
  /** Whether SCRAM-SHA-256 is offered now; absent: always. */
  isScramOffered?(): boolean;
}

/** OAUTHBEARER and XOAUTH2: checks an OAuth 2.0 bearer token (see `OAuthVerifier` for a pluggable checker). */
export interface AuthenticatorWithBearer extends Authenticator {
  authenticateBearer(request: BearerAuthRequest): Promise<AuthResult>;
  /** Whether OAUTHBEARER and XOAUTH2 are offered now (a backend without a verifier says no); absent: always. */
  isBearerOffered?(): boolean;
}

/**
 * Lets the engine confirm, when a login that passed its check has waited (a throttle penalty), that
 * the user still exists with the same credentials: a user deleted or changed meanwhile (the
 * monitor's deleteUser, a new password) does not get a session from an older check.
 *
 * It also turns on the authentication cache (the `authCacheTtlMs` and `authCacheMaxEntries`
 * limits): a password that logged a name in is accepted again, without calling `authenticate`,
 * while the name's version stays the same. Implement it only if the answer for a name and password
 * depends on nothing else (not the address, not TLS), or set `authCacheMaxEntries` to 0.
 */
export interface AuthenticatorWithUserCheck extends Authenticator {
  /** A value that changes whenever the user's credentials change; undefined when there is no such user. */
  credentialVersion(username: string): string | undefined;
}

/**
 * Finds a user without checking a secret: the `MailUser` (with the user's own policy) that a
 * successful login would return. App passwords use it to confirm the user still exists and to get
 * their policy; the monitor's user info to show it.
 */
export interface AuthenticatorWithLookup extends Authenticator {
  /** The user, or undefined for no such user; rejects when the backend cannot answer now. */
  lookupUser(username: string, signal: AbortSignal): Promise<MailUser | undefined>;
}

export const hasLookup = (a: Authenticator): a is AuthenticatorWithLookup =>
  typeof (a as Partial<AuthenticatorWithLookup>).lookupUser === 'function';

export const hasUserCheck = (a: Authenticator): a is AuthenticatorWithUserCheck =>
  typeof (a as Partial<AuthenticatorWithUserCheck>).credentialVersion === 'function';

// Two questions, one way each. `canX`: is the mechanism offered now (the greeting, CAPA, AUTH,
// APOP ask this)? `hasX`: does the backend implement it at all (asked inside an exchange already
// begun, where the offer may have changed since, e.g. after a users file reload)?

export const hasApop = (a: Authenticator): a is AuthenticatorWithApop =>
  typeof (a as Partial<AuthenticatorWithApop>).authenticateApop === 'function';

export const canApop = (a: Authenticator): a is AuthenticatorWithApop =>
  hasApop(a) && a.isApopOffered?.() !== false;

export const hasCramMd5 = (a: Authenticator): a is AuthenticatorWithCramMd5 =>
  typeof (a as Partial<AuthenticatorWithCramMd5>).authenticateCramMd5 === 'function';

export const canCramMd5 = (a: Authenticator): a is AuthenticatorWithCramMd5 =>
  hasCramMd5(a) && a.isCramMd5Offered?.() !== false;

export const hasScram = (a: Authenticator): a is AuthenticatorWithScram =>
  typeof (a as Partial<AuthenticatorWithScram>).scramCredentials === 'function';

export const canScram = (a: Authenticator): a is AuthenticatorWithScram =>
  hasScram(a) && a.isScramOffered?.() !== false;

export const hasBearer = (a: Authenticator): a is AuthenticatorWithBearer =>
  typeof (a as Partial<AuthenticatorWithBearer>).authenticateBearer === 'function';

export const canBearer = (a: Authenticator): a is AuthenticatorWithBearer =>
  hasBearer(a) && a.isBearerOffered?.() !== false;
