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
 * An expected failure that the client is told about: `-ERR [CODE] message`.
 * With `close: true` the connection is closed after the reply.
 */
export class Pop3Error extends Error {
  override name = 'Pop3Error';
  readonly code: RespCode | undefined;
  readonly close: boolean;
  constructor(message: string, code?: RespCode, options?: ErrorOptions & { readonly close?: boolean }) {
    super(message, options);
    this.code = code;
    this.close = options?.close ?? false;
  }
}

/**
 * The client broke the protocol (unknown verb, bad argument, wrong state, overlong line).
 * Counted per connection; past `maxProtocolErrors` the connection is closed.
 */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** The message a session refers to is gone from the store (deleted or moved by another program). */
export class MessageGoneError extends Pop3Error {
  override name = 'MessageGoneError';
  constructor(message = 'message is no longer available', options?: ErrorOptions) {
    super(message, RespCode.sysTemp, options);
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
