import { canBearer, hasBearer, type AuthResult } from '../../auth/types.js';
import { decodeUtf8, saslError, type SaslContext, type SaslMechanism, type SaslStep } from './types.js';

const KVSEP = '\x01';
/** RFC 7628 section 3.1: `key = 1*ALPHA`, `value = *(VCHAR / SP / HTAB / CR / LF)`. */
const PAIR = /^([A-Za-z]+)=([\x21-\x7e \t\r\n]*)$/;
/** RFC 6750 section 2.1: `Bearer b64token`; the scheme name is case-insensitive. */
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i;

/** `key=value^A` pairs followed by a final `^A`. */
function parsePairs(message: string): Map<string, string> {
  const pairs = new Map<string, string>();
  if (!message.endsWith(KVSEP)) throw saslError('saslMalformed', 'message');
  const body = message.slice(0, -1);
  if (body === '') return pairs;
  if (!body.endsWith(KVSEP)) throw saslError('saslMalformed', 'message');
  for (const pair of body.slice(0, -1).split(KVSEP)) {
    const m = PAIR.exec(pair);
    if (m === null) throw saslError('saslMalformed', 'keyValuePair');
    const [, key = '', value = ''] = m;
    if (pairs.has(key)) throw saslError('saslRepeatedKey', key);
    pairs.set(key, value);
  }
  return pairs;
}

function bearerToken(pairs: ReadonlyMap<string, string>): string {
  const auth = pairs.get('auth');
  if (auth === undefined) throw saslError('saslNoBearerToken');
  const m = BEARER.exec(auth);
  if (m === null) throw saslError('saslMalformed', 'bearerToken');
  return m[1] ?? '';
}

/** The GS2 header's authzid (RFC 5801 saslname: `=2C` is a comma, `=3D` an equals sign). */
function decodeSaslName(value: string): string {
  if (value === '' || /=(?!2C|3D)/.test(value)) throw saslError('saslMalformed', 'authzid');
  return value.replaceAll('=2C', ',').replaceAll('=3D', '=');
}

/** OAUTHBEARER's message: `gs2-header ^A pairs ^A` (RFC 7628 section 3.1). */
function parseOAuthBearer(message: string): { username: string | undefined; token: string } {
  if (message.startsWith('p=')) throw saslError('saslChannelBindingUnsupported');
  if (!message.startsWith('n,') && !message.startsWith('y,')) throw saslError('saslMalformed', 'gs2Header');
  const end = message.indexOf(',', 2);
  if (end === -1) throw saslError('saslMalformed', 'gs2Header');
  const authzid = message.slice(2, end);
  if (authzid !== '' && !authzid.startsWith('a=')) throw saslError('saslMalformed', 'gs2Header');
  const rest = message.slice(end + 1);
  if (!rest.startsWith(KVSEP)) throw saslError('saslMalformed', 'message');
  const token = bearerToken(parsePairs(rest.slice(1)));
  return { username: authzid === '' ? undefined : decodeSaslName(authzid.slice(2)), token };
}

/** XOAUTH2's message: `user=NAME^Aauth=Bearer TOKEN^A^A` (Google's XOAUTH2 protocol). */
function parseXOAuth2(message: string): { username: string | undefined; token: string } {
  const pairs = parsePairs(message);
  const username = pairs.get('user');
  if (username === undefined || username === '') throw saslError('saslNoUserName');
  return { username, token: bearerToken(pairs) };
}

interface BearerMechanismSpec {
  readonly name: 'OAUTHBEARER' | 'XOAUTH2';
  readonly parse: (message: string) => { username: string | undefined; token: string };
  /** The JSON error sent as a challenge when the token is refused. */
  readonly error: string;
  /** Whether the client's answer to that challenge is the one the mechanism requires. */
  readonly isAcknowledgement: (response: Buffer) => boolean;
}

function bearerMechanism(spec: BearerMechanismSpec): SaslMechanism {
  return {
    name: spec.name,
    // The token is a password for as long as it lives: only over TLS or from a local address.
    isCleartext: true,
    isAvailable: canBearer,
    begin(context: SaslContext) {
      let failed: { username: string; result: AuthResult } | undefined;
      let isDone = false;
      const take = async (response: Buffer): Promise<SaslStep> => {
        if (isDone) throw saslError('saslUnexpectedResponse');
        if (failed !== undefined) {
          isDone = true;
          if (!spec.isAcknowledgement(response)) throw saslError('saslErrorNotAcknowledged');
          return { kind: 'done', ...failed };
        }
        const { username, token } = spec.parse(decodeUtf8(response));
        const { authenticator } = context;
        if (!hasBearer(authenticator)) throw new Error(`${spec.name} is not available`);
        const result = await authenticator.authenticateBearer({
          mechanism: spec.name,
          username,
          token,
          remoteAddress: context.remoteAddress,
          isTls: context.isTls,
          signal: context.signal,
        });
        const name = result.ok ? result.user.name : (username ?? '');
        if (result.ok || result.reason === 'temporary') {
          isDone = true;
          return { kind: 'done', username: name, result };
        }
        // RFC 7628 section 3.2.2: a refused token is answered with an error challenge, which the
        // client acknowledges; only then does the exchange fail.
        failed = { username: name, result };
        return { kind: 'challenge', data: Buffer.from(spec.error, 'utf8') };
      };
      return {
        start: (initial) =>
          initial === undefined
            ? Promise.resolve({ kind: 'challenge', data: Buffer.alloc(0) })
            : take(initial),
        step: take,
      };
    },
  };
}

/** OAUTHBEARER (RFC 7628) with a bearer token; the client must acknowledge an error with `^A`. */
export const oauthBearer: SaslMechanism = bearerMechanism({
  name: 'OAUTHBEARER',
  parse: parseOAuthBearer,
  error: JSON.stringify({ status: 'invalid_token', schemes: 'bearer' }),
  isAcknowledgement: (response) => response.length === 1 && response[0] === 0x01,
});

/**
 * XOAUTH2, Google's forerunner of OAUTHBEARER, still what many clients send. Google asks for an
 * empty answer to the error challenge; any answer is taken, since the login fails either way.
 */
export const xoauth2: SaslMechanism = bearerMechanism({
  name: 'XOAUTH2',
  parse: parseXOAuth2,
  error: JSON.stringify({ status: '401', schemes: 'bearer' }),
  isAcknowledgement: () => true,
});
