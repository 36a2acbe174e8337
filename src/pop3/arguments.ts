import { saslError } from './sasl/types.js';
import { protocolError } from './text/index.js';

// Parsing of command arguments, for every verb. A malformed argument is a ProtocolError (counted
// towards maxProtocolErrors), except in a SASL exchange, where it fails the login (SaslError).

/** At most ten digits: RFC 1939 numbers are decimal, and a longer one cannot name a message. */
const DIGITS = /^[0-9]{1,10}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Splits arguments on runs of spaces; `expected` is the most a command takes. */
export function splitArgs(args: string, expected: number): string[] {
  const parts = args.split(' ').filter((p) => p !== '');
  if (parts.length > expected) throw protocolError('tooManyArguments');
  return parts;
}

/** For the verbs that take none (STAT, NOOP, RSET, QUIT, CAPA, STLS). */
export function expectNoArguments(verb: string, args: string): void {
  if (args !== '') throw protocolError('takesNoArguments', verb);
}

/**
 * A message number (RFC 1939 section 5): digits only. Whether a message has that number is the
 * session's question (`Session.liveMessage`).
 */
export function parseMsgNo(arg: string | undefined): number {
  if (arg === undefined || arg === '') throw protocolError('messageNumberRequired');
  if (!DIGITS.test(arg)) throw protocolError('invalidMessageNumber');
  return Number(arg);
}

/** TOP's count of body lines (RFC 1939 section 7): a non-negative number. */
export function parseLineCount(arg: string | undefined): number {
  if (arg === undefined || !DIGITS.test(arg)) throw protocolError('invalidLineCount');
  return Number(arg);
}

/** An AUTH initial response or SASL continuation line (RFC 5034): strict base64. */
export function parseBase64(text: string): Buffer {
  if (!BASE64.test(text)) throw saslError('saslInvalidBase64');
  return Buffer.from(text, 'base64');
}
