import { countOf } from '../../text.js';

/** What a SASL message part is, for the text that says it is not UTF-8. */
export type SaslPart = 'response' | 'authzid' | 'userName' | 'password';
const PARTS: Readonly<Record<SaslPart, string>> = {
  response: 'response',
  authzid: 'authorization identity',
  userName: 'user name',
  password: 'password',
};

/** What a malformed SASL message part is. */
export type SaslMalformedPart =
  | 'message'
  | 'plainMessage'
  | 'gs2Header'
  | 'keyValuePair'
  | 'bearerToken'
  | 'authzid'
  | 'userName'
  | 'clientFirst'
  | 'clientFinal'
  | 'nonce'
  | 'proof';
const MALFORMED: Readonly<Record<SaslMalformedPart, string>> = {
  message: 'message',
  plainMessage: 'PLAIN message',
  gs2Header: 'GS2 header',
  keyValuePair: 'key/value pair',
  bearerToken: 'auth=Bearer token',
  authzid: 'authorization identity',
  userName: 'user name',
  clientFirst: 'client-first message',
  clientFinal: 'client-final message',
  nonce: 'nonce',
  proof: 'proof',
};

/**
 * Every human text the engine sends, in English: also the text of `i-default` (RFC 2277), the
 * language of a session until LANG changes it. One entry per text; texts with values are functions
 * of them. A language is an object of the same type (`Catalogue`): TypeScript refuses one that lacks
 * a text. Response codes (`[AUTH]`...) and protocol lines (STAT's counts, scan listings) are not
 * texts and are not here.
 */
export const en = {
  // Greeting, end of session, refusals before a session exists.
  greeting: (stamp: string) => `Poplar POP3 server ready${stamp}`,
  signingOff: () => 'Poplar signing off',
  signingOffLeft: (left: number) => `Poplar signing off (${countOf(left, 'message')} left)`,
  notDeleted: (failed: number, total: number) =>
    `${failed} of ${countOf(total, 'message')} could not be deleted`,
  tooManyConnections: () => 'too many connections',
  tooManyConnectionsFromAddress: () => 'too many connections from your address',
  serverBusy: () => 'server busy, try again later',
  tooManyWaitingForProxy: () => 'too many connections waiting for their PROXY header',
  proxyHeaderNotExpected: () => 'PROXY protocol header not expected from your address',
  serverShuttingDown: () => 'server shutting down',
  endedByAdministrator: () => 'session ended by the administrator',
  accountRemoved: () => 'account removed',
  idleTooLong: () => 'autologout: idle for too long',
  tooSlowToLogIn: () => 'too slow to log in',
  notPop3: () => 'this is a POP3 server',
  internalError: () => 'internal error',

  // Dispatch: protocol errors.
  lineTooLong: () => 'line too long',
  emptyCommand: () => 'empty command',
  invalidCommand: () => 'invalid command',
  unknownCommand: (verb: string) => `unknown command ${verb}`,
  wrongState: (verb: string, state: string) => `${verb} is not valid in the ${state} state`,
  notUtf8Command: () => 'command is not valid UTF-8',
  controlCharacters: () => 'control characters in command',
  tooManyBadCommands: (error: string) => `${error}; too many bad commands, closing`,

  // Arguments.
  tooManyArguments: () => 'too many arguments',
  takesNoArguments: (verb: string) => `${verb} takes no arguments`,
  takesOneMessageNumber: (verb: string) => `${verb} takes one message number`,
  messageNumberRequired: () => 'message number required',
  invalidMessageNumber: () => 'invalid message number',
  invalidLineCount: () => 'line count must be a non-negative number',
  usage: (syntax: string) => `usage: ${syntax}`,

  // Login.
  sendPass: () => 'send PASS',
  sendUserFirst: () => 'send USER first',
  userNeedsName: () => 'USER needs a name',
  userNameTooLong: () => 'user name too long',
  passNeedsPassword: () => 'PASS needs a password',
  passwordTooLong: (maxBytes: number) => `password too long: at most ${maxBytes} octets`,
  invalidLogin: () => 'invalid user name or password',
  tooManyFailures: (reason: string) => `${reason}, too many failures`,
  authUnavailable: () => 'authentication is temporarily unavailable, try again later',
  cleartextRefused: () => 'cleartext login refused on an unencrypted connection, TLS is required',
  cleartextRefusedSendStls: () =>
    'cleartext login refused on an unencrypted connection, TLS is required: send STLS first',
  apopUnavailable: () => 'APOP is not available',
  loggedIn: (user: string, count: number, bytes: number) =>
    `${user} has ${countOf(count, 'message')} (${bytes} octets)`,

  // AUTH and SASL.
  methodsSupported: () => 'methods supported',
  unsupportedMechanism: (name: string) => `unsupported authentication mechanism ${name}`,
  authFailed: (reason: string) => `authentication failed: ${reason}`,
  saslCancelled: () => 'cancelled by the client',
  saslResponseTooLong: () => 'response too long',
  saslExpectedEmpty: () => 'expected an empty response',
  saslInvalidBase64: () => 'invalid base64',
  saslNotUtf8: (part: SaslPart) => `${PARTS[part]} is not UTF-8`,
  saslUnexpectedResponse: () => 'unexpected response',
  saslEmptyUserOrPassword: () => 'empty user name or password',
  saslEmptyUser: () => 'empty user name',
  saslEmptyPassword: () => 'empty password',
  saslMalformed: (part: SaslMalformedPart) => `malformed ${MALFORMED[part]}`,
  saslNoInitialResponse: (mechanism: string) => `${mechanism} takes no initial response`,
  saslExpectedUserDigest: () => 'expected "user digest"',
  saslChannelBindingUnsupported: () => 'channel binding is not supported',
  saslChannelBindingMismatch: () => 'channel binding data does not match',
  saslNonceMismatch: () => 'nonce does not match',
  saslMandatoryExtensions: () => 'mandatory extensions are not supported',
  saslAuthzidMismatch: () => 'the authorization identity must be empty or the user name',
  saslRepeatedKey: (key: string) => `repeated key ${key}`,
  saslNoBearerToken: () => 'no auth=Bearer token',
  saslNoUserName: () => 'no user name',
  saslErrorNotAcknowledged: () => 'expected the error to be acknowledged',

  // TLS.
  tlsActive: () => 'command not permitted when TLS is active',
  tlsUnavailable: () => 'TLS is not available on this server',
  beginTls: () => 'Begin TLS negotiation',

  // TRANSACTION.
  capabilities: () => 'Capability list follows',
  octets: (size: number) => `${size} octets`,
  topFollows: () => 'top of message follows',
  scanListing: (count: number, bytes: number) => `${countOf(count, 'message')} (${bytes} octets)`,
  uidListing: () => 'unique-id listing follows',
  deleted: (msgNo: number) => `message ${msgNo} deleted`,
  maildropHas: (count: number, bytes: number) =>
    `maildrop has ${countOf(count, 'message')} (${bytes} octets)`,
  noSuchMessage: (count: number) => `no such message, only ${count} in maildrop`,
  alreadyDeleted: (msgNo: number) => `message ${msgNo} already deleted`,

  // UTF8 and LANG (RFC 6856).
  utf8Enabled: () => 'UTF-8 mode, user names and passwords may be UTF-8',
  utf8Again: () => 'already in UTF-8 mode',
  utf8AfterLogin: () => 'UTF8 changes nothing after login',
  languages: () => 'language listing follows',
  languageChanged: (tag: string) => `${tag} responses are now in English`,
  unknownLanguage: (range: string) => `no language matches ${range}`,

  // Per-user policy (src/pop3/user-policy.ts).
  accessDisabled: () => 'POP3 access is disabled for this user',
  loginTooSoon: (wait: number, delay: number) =>
    `logged in too recently: wait ${wait} more seconds (the login delay is ${delay} seconds)`,
  tooManySessions: (max: number) =>
    `this user already has ${max === 1 ? 'a session' : `${max} sessions`} open (the most allowed)`,
  downloadLimit: (limit: number) =>
    `daily download limit reached (${limit} octets a day), try again tomorrow (UTC)`,

  // Errors thrown by the store and the authenticators (their keys: `SharedTextKey`, src/errors.ts).
  inUse: () => 'maildrop is in use by another session',
  lockLost: () => 'maildrop lock lost',
  lockReleased: () => 'maildrop lock was released',
  mailboxUnavailable: () => 'mailbox unavailable, try again later',
  invalidUserName: () => 'invalid user name',
  messageGone: () => 'message is no longer available',
};

/** A language's texts: every entry of {@link en}, with the same values. */
export type Catalogue = { readonly [K in keyof typeof en]: (typeof en)[K] };
