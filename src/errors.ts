/**
 * Error classes shared by the protocol engine and the backends.
 *
 * Errors are mapped to replies in exactly one place (`pop3/dispatch.ts`); everything else only throws.
 */

/** Response codes from RFC 2449 section 8 and RFC 3206. */
export const RespCode = {
  auth: 'AUTH',
  inUse: 'IN-USE',
  loginDelay: 'LOGIN-DELAY',
  sysTemp: 'SYS/TEMP',
  sysPerm: 'SYS/PERM',
} as const;
export type RespCode = (typeof RespCode)[keyof typeof RespCode];

/**
 * A reply text by its key in the engine's catalogue (src/pop3/text/), with the values it is worded
 * with (a nested text where the text takes a string): the engine words it in the session's
 * language (RFC 6856 LANG), in one place (`pop3/dispatch.ts`). The error's `message` stays English,
 * for logs.
 */
export interface ReplyText {
  readonly key: string;
  readonly values: readonly (string | number | ReplyText)[];
}

/**
 * The texts layers outside the engine throw (the store, the lock, the authenticators), by key: the
 * catalogue holds their words in every language (TypeScript checks that it has each).
 */
export type SharedTextKey =
  | 'inUse'
  | 'lockLost'
  | 'lockReleased'
  | 'mailboxUnavailable'
  | 'invalidUserName'
  | 'authUnavailable'
  | 'messageGone';

type TextOption = { readonly text?: ReplyText | SharedTextKey };
const textOf = (text: ReplyText | SharedTextKey | undefined): ReplyText | undefined =>
  typeof text === 'string' ? { key: text, values: [] } : text;

/**
 * An expected failure that the client is told about: `-ERR [CODE] message`, the message worded
 * from `text` in the session's language when it has one (texts of the engine and of Poplar's
 * backends do; a library's hook may throw plain English). With `close: true` the connection is
 * closed after the reply.
 */
export class Pop3Error extends Error {
  override name = 'Pop3Error';
  readonly code: RespCode | undefined;
  readonly close: boolean;
  readonly text: ReplyText | undefined;
  constructor(
    message: string,
    code?: RespCode,
    options?: ErrorOptions & { readonly close?: boolean } & TextOption,
  ) {
    super(message, options);
    this.code = code;
    this.close = options?.close ?? false;
    this.text = textOf(options?.text);
  }
}

/**
 * The client broke the protocol (unknown verb, bad argument, wrong state, overlong line).
 * Counted per connection; past `maxProtocolErrors` the connection is closed.
 */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
  readonly text: ReplyText | undefined;
  constructor(message: string, options?: ErrorOptions & TextOption) {
    super(message, options);
    this.text = textOf(options?.text);
  }
}

/** The message a session refers to is gone from the store (deleted or moved by another program). */
export class MessageGoneError extends Pop3Error {
  override name = 'MessageGoneError';
  constructor(message?: string, options?: ErrorOptions & TextOption) {
    // Without a message of its own: the catalogue's text, in the session's language.
    super(message ?? 'message is no longer available', RespCode.sysTemp, {
      ...(message === undefined ? { text: 'messageGone' as const } : {}),
      ...options,
    });
  }
}

/**
 * Invalid configuration or options, found before the server starts. `settings` names the config
 * keys the message is about (as the message writes them), so that the command line can name the
 * flag the user typed, or the file the value came from, instead.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly settings: readonly string[];
  constructor(message: string, options?: ErrorOptions & { readonly settings?: readonly string[] }) {
    super(message, options);
    this.settings = options?.settings ?? [];
  }
}

/** `error` as an Error: a thrown non-Error (a string, say) is wrapped, so streams and promises get an Error. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Whether `error` is a system error (`NodeJS.ErrnoException`) with one of these codes. */
export function isErrno(error: unknown, ...codes: string[]): boolean {
  return codes.includes((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}
