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

export type AuthResult =
  | { readonly ok: true; readonly user: MailUser }
  /**
   * `invalid`: wrong name or credentials (the client is not told which); `temporary`: the backend
   * could not decide now (`-ERR [SYS/TEMP]`).
   */
  | { readonly ok: false; readonly reason: 'invalid' | 'temporary' };

/** Decides who may log in. Implementations must not reveal, by reply or timing, whether a name exists. */
export interface Authenticator {
  authenticate(request: PasswordAuthRequest): Promise<AuthResult>;
  /**
   * Optional: APOP needs the shared secret in the clear, so only backends that store it can offer
   * it. When present (and `isApopOffered` does not say no), the greeting carries an APOP timestamp.
   */
  authenticateApop?(request: ApopAuthRequest): Promise<AuthResult>;
  /**
   * Optional: whether APOP is offered now (asked for each connection). A greeting timestamp makes
   * clients such as curl use APOP without falling back to USER/PASS, so a backend whose users
   * cannot all use APOP should say no.
   */
  isApopOffered?(): boolean;
  /** Optional, like APOP: CRAM-MD5 also needs the secret in the clear. */
  authenticateCramMd5?(request: CramMd5AuthRequest): Promise<AuthResult>;
  /** Optional: whether CRAM-MD5 is offered now (CAPA's SASL line, asked for each CAPA and AUTH). */
  isCramMd5Offered?(): boolean;
  /**
   * Optional: the SCRAM-SHA-256 keys of a user, or undefined for a user who has none (unknown, or
   * stored another way). The mechanism then goes on with made-up keys, so that the failure looks
   * like a wrong password.
   */
  scramCredentials?(request: ScramCredentialsRequest): Promise<ScramCredentials | undefined>;
  /** Optional: whether SCRAM-SHA-256 is offered now. */
  isScramOffered?(): boolean;
  /** Optional: checks an OAuth 2.0 bearer token (see `OAuthVerifier` for a pluggable checker). */
  authenticateBearer?(request: BearerAuthRequest): Promise<AuthResult>;
  /** Optional: whether OAUTHBEARER and XOAUTH2 are offered now (a backend without a verifier says no). */
  isBearerOffered?(): boolean;
}

export type AuthenticatorWithApop = Authenticator & {
  authenticateApop(request: ApopAuthRequest): Promise<AuthResult>;
};

export const canApop = (a: Authenticator): a is AuthenticatorWithApop =>
  typeof a.authenticateApop === 'function' && a.isApopOffered?.() !== false;

export type AuthenticatorWithCramMd5 = Authenticator & {
  authenticateCramMd5(request: CramMd5AuthRequest): Promise<AuthResult>;
};

export const canCramMd5 = (a: Authenticator): a is AuthenticatorWithCramMd5 =>
  typeof a.authenticateCramMd5 === 'function' && a.isCramMd5Offered?.() !== false;

export type AuthenticatorWithScram = Authenticator & {
  scramCredentials(request: ScramCredentialsRequest): Promise<ScramCredentials | undefined>;
};

export const canScram = (a: Authenticator): a is AuthenticatorWithScram =>
  typeof a.scramCredentials === 'function' && a.isScramOffered?.() !== false;

export type AuthenticatorWithBearer = Authenticator & {
  authenticateBearer(request: BearerAuthRequest): Promise<AuthResult>;
};

export const canBearer = (a: Authenticator): a is AuthenticatorWithBearer =>
  typeof a.authenticateBearer === 'function' && a.isBearerOffered?.() !== false;
