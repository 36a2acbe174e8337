/**
 * Poplar: a POP3 server engine for Node.js, with pluggable authentication and mail storage.
 *
 * ```ts
 * import { createServer, MaildirStore, PasswdFileAuthenticator } from '@poplar-mail/poplar';
 * const server = createServer({ authenticator, store });
 * await server.listen({ host: '127.0.0.1', port: 1100 });
 * ```
 *
 * This file is the whole public API: the engine, the two backend interfaces (`Authenticator`,
 * `MailStore`) with the implementations Poplar ships, the errors a backend throws, the limits, and
 * the monitor client. Everything else is internal and may change in any release.
 */

// The engine.
export { createServer, Pop3Server } from './pop3/server.js';
export type { ListenOptions, Pop3ServerEvents, Pop3ServerOptions } from './pop3/server.js';
export { DEFAULT_LIMITS } from './pop3/limits.js';
export type { Pop3Limits } from './pop3/limits.js';
export type { Logger } from './log.js';

// Errors: what a backend throws, and what a bad option throws.
export { ConfigError, MessageGoneError, Pop3Error, RespCode } from './errors.js';

// Storage: the interfaces, the two stores, and the maildrop locks the Maildir store takes.
export type {
  CommitResult,
  Maildrop,
  MaildropChanges,
  MailStore,
  MessageContent,
  MessageInfo,
  ReadOptions,
} from './mailstore/types.js';
export type { MaildropKey, MaildropLease, MaildropLocks } from './mailstore/locks.js';
export type { MailUser } from './user.js';
export { MemoryStore } from './mailstore/memory.js';
export { MaildirStore } from './mailstore/maildir/store.js';
export type { MaildirStoreOptions } from './mailstore/maildir/store.js';
export { deliverToMaildir } from './mailstore/maildir/deliver.js';
export { measureMessage } from './message/octets.js';

// Authentication: the interface, its capabilities, and the two authenticators.
export type {
  ApopAuthRequest,
  Authenticator,
  AuthenticatorWithApop,
  AuthenticatorWithBearer,
  AuthenticatorWithCramMd5,
  AuthenticatorWithScram,
  AuthenticatorWithUserCheck,
  AuthResult,
  BearerAuthRequest,
  CramMd5AuthRequest,
  PasswordAuthRequest,
  ScramCredentials,
  ScramCredentialsRequest,
} from './auth/types.js';
export { StaticAuthenticator } from './auth/static.js';
export { PasswdFileAuthenticator } from './auth/passwd-file.js';
export { hashPassword } from './auth/passwords/registry.js';
export type { OAuthVerifier } from './auth/oauth/verifier.js';
export { IntrospectionVerifier } from './auth/oauth/introspection.js';
export { JwksVerifier } from './auth/oauth/jwks.js';

// Watching and steering a running daemon.
export { MonitorClient, MonitorError } from './monitor/client.js';
export type { MonitorClientOptions } from './monitor/client.js';
