import { cramMd5Challenge } from '../../auth/digests.js';
import { canCramMd5, hasCramMd5 } from '../../auth/types.js';
import { hasControlCharacter } from '../../text.js';
import { prepareUserName } from '../../user.js';
import { decodeUtf8, saslError, type SaslContext, type SaslMechanism, type SaslStep } from './types.js';

// A user name (checked for control characters below), a space, and 16 octets in hex (RFC 2195 section 2).
const RESPONSE = /^(.+) ([0-9a-fA-F]{32})$/s;

export interface CramMd5Options {
  /** Makes the challenge; tests give the one from RFC 2195. */
  readonly challenge?: (context: SaslContext) => string;
}

/** RFC 2195's msg-id form, with random numbers where the RFC has a process id and a clock. */
const defaultChallenge = (context: SaslContext): string => cramMd5Challenge(context.hostname);

/**
 * CRAM-MD5 (RFC 2195): the server sends a challenge, the client answers `user hexdigest`, the
 * HMAC-MD5 of the challenge keyed with the password. The password never travels, so it is not a
 * cleartext mechanism, but the server must hold it in the clear: only backends that can say
 * `authenticateCramMd5` offer it.
 */
export function createCramMd5(options: CramMd5Options = {}): SaslMechanism {
  const makeChallenge = options.challenge ?? defaultChallenge;
  return {
    name: 'CRAM-MD5',
    isCleartext: false,
    isAvailable: canCramMd5,
    begin(context) {
      const challenge = makeChallenge(context);
      const answer = async (response: Buffer): Promise<SaslStep> => {
        const text = decodeUtf8(response);
        const m = RESPONSE.exec(text);
        if (m === null) throw saslError('saslExpectedUserDigest');
        const [, given = '', digest = ''] = m;
        if (hasControlCharacter(given)) throw saslError('saslExpectedUserDigest');
        const username = prepareUserName(given);
        const { authenticator } = context;
        if (!hasCramMd5(authenticator)) throw new Error('CRAM-MD5 is not available');
        const result = await authenticator.authenticateCramMd5({
          mechanism: 'CRAM-MD5',
          username,
          challenge,
          digest: digest.toLowerCase(),
          remoteAddress: context.remoteAddress,
          isTls: context.isTls,
          signal: context.signal,
        });
        return { kind: 'done', username, result };
      };
      return {
        // The server speaks first (RFC 2195): an initial response has nothing to answer yet.
        start: (initial) =>
          initial === undefined
            ? Promise.resolve({ kind: 'challenge', data: Buffer.from(challenge, 'utf8') })
            : Promise.reject(saslError('saslNoInitialResponse', 'CRAM-MD5')),
        step: answer,
      };
    },
  };
}

export const cramMd5: SaslMechanism = createCramMd5();
