import type { AuthResult, Authenticator, PasswordAuthRequest } from '../../auth/types.js';
import type { ReplyText } from '../../errors.js';
import type { SaslPart } from '../text/en.js';
import { english, textOf, type TextKey, type TextValues } from '../text/index.js';

/** What a mechanism may use: the backend and facts about the connection. */
export interface SaslContext {
  readonly authenticator: Authenticator;
  /** Checks a name and password (PLAIN, LOGIN): the authenticator, through the authentication cache. */
  readonly checkPassword: (request: PasswordAuthRequest) => Promise<AuthResult>;
  readonly remoteAddress: string;
  readonly isTls: boolean;
  readonly signal: AbortSignal;
  /** For challenges that name the server (CRAM-MD5). */
  readonly hostname: string;
  /** Longest password PLAIN and LOGIN accept (the `maxPasswordBytes` limit). */
  readonly maxPasswordBytes: number;
  /** Derives SCRAM's made-up salt for a name that has none (the server's `decoySecret`). */
  readonly decoySecret: Uint8Array;
}

/** One step of an exchange: send a challenge and wait, or finish. */
export type SaslStep =
  | { readonly kind: 'challenge'; readonly data: Buffer }
  | {
      readonly kind: 'done';
      /** The name the client authenticated as, for logs and the failure count. */
      readonly username: string;
      readonly result: AuthResult;
      /** Data to send with success (SCRAM's server signature), as a last `+` challenge (RFC 5034 section 4). */
      readonly successData?: Buffer;
    };

/** A running exchange. `step` receives each client response, decoded from base64. */
export interface SaslExchange {
  /** The first step: `initial` is the initial response if the client sent one (RFC 4954 style). */
  start(initial: Buffer | undefined): Promise<SaslStep>;
  step(response: Buffer): Promise<SaslStep>;
}

/** Thrown by a mechanism for a malformed client message: the AUTH fails with -ERR, saying `text`. */
export class SaslError extends Error {
  override name = 'SaslError';
  readonly text: ReplyText;
  constructor(text: ReplyText) {
    super(english(text));
    this.text = text;
  }
}

/** A SaslError with a catalogue text. */
export const saslError = <K extends TextKey>(key: K, ...values: TextValues<K>): SaslError =>
  new SaslError(textOf(key, ...values));

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A client message as UTF-8 text; a SaslError naming `what` when it is not UTF-8. */
export function decodeUtf8(bytes: Uint8Array, what: SaslPart = 'response'): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw saslError('saslNotUtf8', what);
  }
}

export interface SaslMechanism {
  /** Upper-case IANA name, as in CAPA's SASL line. */
  readonly name: string;
  /** The client sends the secret itself (PLAIN, LOGIN, bearer tokens): only over TLS or from a local address. */
  readonly isCleartext: boolean;
  /** Whether the backend can serve it at all (CRAM-MD5 needs plain secrets, OAuth a token verifier). */
  isAvailable(authenticator: Authenticator): boolean;
  begin(context: SaslContext): SaslExchange;
}
