/**
 * Poplar: a POP3 server engine for Node.js, with pluggable authentication and mail storage.
 *
 * ```ts
 * import { createServer, MaildirStore, PasswdFileAuthenticator } from 'poplar';
 * const server = createServer({ authenticator, store });
 * await server.listen({ host: '127.0.0.1', port: 1100 });
 * ```
 */
export { createServer, Pop3Server } from './pop3/server.js';
export type { ListenOptions, Pop3ServerEvents, Pop3ServerOptions } from './pop3/server.js';
export type { ClosedSessionInfo } from './pop3/connection.js';
export type { ConnectionInfo, LoginInfo, Pop3State, SessionSummary } from './pop3/session.js';
export { DEFAULT_LIMITS, MIN_COMMAND_BYTES, MIN_IDLE_TIMEOUT_MS, resolveLimits } from './pop3/limits.js';
export type { Pop3Limits } from './pop3/limits.js';
export { ServerStats } from './pop3/stats.js';
export { DotStuffer, DotStuffing } from './pop3/dot-stuffer.js';

export { ConfigError, MessageGoneError, Pop3Error, ProtocolError, RespCode } from './errors.js';
export type { Logger } from './log.js';

export type {
  CommitResult,
  Maildrop,
  MaildropChanges,
  MailStore,
  MessageContent,
  MessageInfo,
  ReadOptions,
} from './mailstore/types.js';
export type { MailUser } from './user.js';
export { MemoryStore } from './mailstore/memory.js';
export { MaildirStore } from './mailstore/maildir/store.js';
export type { MaildirStoreOptions } from './mailstore/maildir/store.js';
export { deliverToMaildir } from './mailstore/maildir/deliver.js';
export { measureMessage, MessageMeter } from './message/octets.js';
export type { MessageMeasure } from './message/octets.js';

export type {
  ApopAuthRequest,
  Authenticator,
  AuthenticatorWithApop,
  AuthenticatorWithBearer,
  AuthenticatorWithCramMd5,
  AuthenticatorWithScram,
  AuthResult,
  BearerAuthRequest,
  CramMd5AuthRequest,
  PasswordAuthRequest,
  ScramCredentials,
  ScramCredentialsRequest,
} from './auth/types.js';
export { canApop, canBearer, canCramMd5, canScram } from './auth/types.js';
export { StaticAuthenticator, staticAuth } from './auth/static.js';
export { apopDigest, cramMd5Digest } from './auth/digests.js';
export type { StaticAuthenticatorOptions } from './auth/static.js';
export type { OAuthVerifier, TokenVerdict } from './auth/oauth/verifier.js';
export { IntrospectionVerifier } from './auth/oauth/introspection.js';
export type { IntrospectionVerifierOptions } from './auth/oauth/introspection.js';
export { JwksVerifier, readJwksFile } from './auth/oauth/jwks.js';
export type { JwksVerifierOptions } from './auth/oauth/jwks.js';
export {
  MECHANISMS,
  createCramMd5,
  createScramSha256,
  cramMd5,
  login,
  oauthBearer,
  plain,
  scramSha256,
  xoauth2,
  SaslError,
} from './pop3/sasl/index.js';
export type { SaslContext, SaslExchange, SaslMechanism, SaslStep } from './pop3/sasl/index.js';
export { PasswdFileAuthenticator, parsePasswdFile } from './auth/passwd-file.js';
export type { ParsedPasswdFile, PasswdFileProblem } from './auth/passwd-file.js';
export { hashPassword, schemeNames, DEFAULT_SCHEME } from './auth/passwords/registry.js';
export { isValidUserName, MAX_USER_NAME_BYTES } from './user.js';
