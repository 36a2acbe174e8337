import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { scramDecoy } from '../../auth/decoy.js';
import { SCRAM_DEFAULT_ITERATIONS } from '../../auth/passwords/scram.js';
import { canScram, hasScram, type ScramCredentials } from '../../auth/types.js';
import { prepareUserName } from '../../user.js';
import { decodeUtf8, saslError, type SaslContext, type SaslMechanism, type SaslStep } from './types.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** RFC 5802 `printable`: %x21-2B / %x2D-7E, the nonce's characters. */
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

/** RFC 5802 saslname: `=2C` is a comma and `=3D` an equals sign; any other `=` is an error. */
function decodeSaslName(value: string): string {
  if (value === '' || /=(?!2C|3D)/.test(value)) throw saslError('saslMalformed', 'userName');
  return value.replaceAll('=2C', ',').replaceAll('=3D', '=');
}

interface ClientFirst {
  readonly gs2Header: string;
  readonly bare: string;
  readonly username: string;
  readonly nonce: string;
}

/** `gs2-header client-first-message-bare` (RFC 5802 section 7). */
function parseClientFirst(message: string): ClientFirst {
  if (message.startsWith('p=')) {
    // Poplar offers SCRAM-SHA-256 without -PLUS: there is no channel binding to agree on.
    throw saslError('saslChannelBindingUnsupported');
  }
  // "y": the client could bind but thinks the server cannot, which is right: no -PLUS is offered.
  if (!message.startsWith('n,') && !message.startsWith('y,')) throw saslError('saslMalformed', 'gs2Header');
  const end = message.indexOf(',', 2);
  if (end === -1) throw saslError('saslMalformed', 'gs2Header');
  const authzid = message.slice(2, end);
  if (authzid !== '' && !authzid.startsWith('a=')) throw saslError('saslMalformed', 'gs2Header');
  const gs2Header = message.slice(0, end + 1);
  const bare = message.slice(end + 1);
  const [first = '', second = '', ...extensions] = bare.split(',');
  if (first.startsWith('m=')) throw saslError('saslMandatoryExtensions');
  if (!first.startsWith('n=') || !second.startsWith('r=') || !extensions.every((e) => /^[A-Za-z]=/.test(e))) {
    throw saslError('saslMalformed', 'clientFirst');
  }
  // RFC 5802 section 5.1: the client prepared the name already; preparing it again changes nothing then.
  const username = prepareUserName(decodeSaslName(first.slice(2)));
  const nonce = second.slice(2);
  if (!NONCE.test(nonce)) throw saslError('saslMalformed', 'nonce');
  // Poplar does not let one user act for another (as with PLAIN).
  if (authzid !== '' && prepareUserName(decodeSaslName(authzid.slice(2))) !== username) {
    throw saslError('saslAuthzidMismatch');
  }
  return { gs2Header, bare, username, nonce };
}

export interface ScramSha256Options {
  /** Makes the server's part of the nonce; tests give the one from RFC 7677. */
  readonly serverNonce?: () => string;
}

/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677): the client proves it knows the password, the server proves
 * it holds the keys, and neither the password nor anything that replays travels. The server keeps
 * only salted keys (`scramCredentials`), never the password.
 *
 * Normalisation: none. User names are ASCII (Poplar's rule), which SASLprep leaves unchanged; the
 * password is used as its UTF-8 bytes when the keys are made (as Dovecot does), so a client that
 * applies SASLprep (RFC 4013) matches for every password SASLprep leaves unchanged, which includes
 * every printable ASCII one.
 *
 * An unknown user, or one stored another way, gets made-up credentials and the exchange goes on:
 * the failure comes at the same step, in the same form, as a wrong password's. Their salt is an
 * HMAC of the name under the server's `decoySecret`, so it is the same at every try, from every
 * worker and after a restart, as a real user's is; and they are made for every exchange, real
 * user or not, so that both cost the same work. The server's
 * signature travels as a last `+` challenge (RFC 5034 section 4); a failed proof ends the exchange
 * with `-ERR` (no `e=` message, as Dovecot does).
 */
export function createScramSha256(options: ScramSha256Options = {}): SaslMechanism {
  const makeServerNonce = options.serverNonce ?? (() => randomBytes(18).toString('base64'));
  return {
    name: 'SCRAM-SHA-256',
    isCleartext: false,
    isAvailable: canScram,
    begin(context) {
      let state:
        | { readonly stage: 'first' }
        | {
            readonly stage: 'final';
            readonly client: ClientFirst;
            readonly serverFirst: string;
            readonly nonce: string;
            readonly credentials: ScramCredentials;
            readonly isReal: boolean;
          }
        | { readonly stage: 'done' } = { stage: 'first' };

      const first = async (response: Buffer): Promise<SaslStep> => {
        const client = parseClientFirst(decodeUtf8(response));
        const real = await lookUp(context, client.username);
        const decoy = scramDecoy(
          context.decoySecret,
          client.username,
          decoyIterations(context, client.username),
        );
        const credentials = real ?? decoy;
        const nonce = client.nonce + makeServerNonce();
        const serverFirst = `r=${nonce},s=${credentials.salt.toString('base64')},i=${credentials.iterations}`;
        state = { stage: 'final', client, serverFirst, nonce, credentials, isReal: real !== undefined };
        return { kind: 'challenge', data: Buffer.from(serverFirst, 'utf8') };
      };

      const final = (response: Buffer): SaslStep => {
        if (state.stage !== 'final') throw saslError('saslUnexpectedResponse');
        const { client, serverFirst, nonce, credentials, isReal } = state;
        state = { stage: 'done' };
        const parts = decodeUtf8(response).split(',');
        const proofPart = parts.at(-1) ?? '';
        if (parts.length < 3 || !proofPart.startsWith('p=')) throw saslError('saslMalformed', 'clientFinal');
        // c= repeats the GS2 header: "biws" for "n,,". It is how a downgrade of "y" or "p" shows.
        if (parts[0] !== `c=${Buffer.from(client.gs2Header, 'utf8').toString('base64')}`) {
          throw saslError('saslChannelBindingMismatch');
        }
        if (parts[1] !== `r=${nonce}`) throw saslError('saslNonceMismatch');
        const proofText = proofPart.slice(2);
        if (!BASE64.test(proofText)) throw saslError('saslMalformed', 'proof');
        const proof = Buffer.from(proofText, 'base64');
        if (proof.length !== 32) throw saslError('saslMalformed', 'proof');
        const withoutProof = parts.slice(0, -1).join(',');
        const authMessage = `${client.bare},${serverFirst},${withoutProof}`;
        const clientSignature = hmac(credentials.storedKey, authMessage);
        const clientKey = Buffer.alloc(32);
        for (let i = 0; i < 32; i++) clientKey[i] = (proof[i] ?? 0) ^ (clientSignature[i] ?? 0);
        const isMatch = timingSafeEqual(sha256(clientKey), credentials.storedKey) && isReal;
        const { username } = client;
        if (!isMatch) return { kind: 'done', username, result: { ok: false, reason: 'invalid' } };
        const serverSignature = hmac(credentials.serverKey, authMessage);
        return {
          kind: 'done',
          username,
          result: { ok: true, user: { name: username } },
          successData: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8'),
        };
      };

      // A SaslError thrown by final() becomes a rejection here, as the AUTH command expects.
      const step = async (response: Buffer): Promise<SaslStep> =>
        state.stage === 'first' ? await first(response) : final(response);
      return {
        start: (initial) =>
          initial === undefined
            ? Promise.resolve({ kind: 'challenge', data: Buffer.alloc(0) })
            : step(initial),
        step,
      };
    },
  };
}

function decoyIterations(context: SaslContext, username: string): number {
  const { authenticator } = context;
  const iterations = hasScram(authenticator) ? authenticator.scramDecoyIterations?.(username) : undefined;
  return iterations ?? SCRAM_DEFAULT_ITERATIONS;
}

async function lookUp(context: SaslContext, username: string): Promise<ScramCredentials | undefined> {
  const { authenticator } = context;
  // Not canScram(): whether it is offered may change during the exchange (a users file reload).
  if (!hasScram(authenticator)) throw new Error('SCRAM-SHA-256 is not available');
  const credentials = await authenticator.scramCredentials({
    mechanism: 'SCRAM-SHA-256',
    username,
    remoteAddress: context.remoteAddress,
    isTls: context.isTls,
    signal: context.signal,
  });
  // Keys of the wrong size cannot be checked in constant time; treat them as no keys.
  if (
    credentials === undefined ||
    credentials.storedKey.length !== 32 ||
    credentials.serverKey.length !== 32
  ) {
    return undefined;
  }
  return credentials;
}

export const scramSha256: SaslMechanism = createScramSha256();
