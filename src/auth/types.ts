import type { MailUser } from '../mailstore/types.js';

interface AuthRequestBase {
  /** The name the client gave, as sent (already checked to be UTF-8 without control characters). */
  readonly username: string;
  readonly remoteAddress: string;
  /** True when the connection is encrypted. */
  readonly isTls: boolean;
  readonly signal: AbortSignal;
}

/** A login that carries the password itself: USER/PASS (and, later, SASL PLAIN and LOGIN). */
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
}

export type AuthenticatorWithApop = Authenticator & {
  authenticateApop(request: ApopAuthRequest): Promise<AuthResult>;
};

export const canApop = (a: Authenticator): a is AuthenticatorWithApop =>
  typeof a.authenticateApop === 'function' && a.isApopOffered?.() !== false;
