import {
  decodeUtf8,
  SaslError,
  saslError,
  type SaslContext,
  type SaslExchange,
  type SaslMechanism,
  type SaslStep,
} from './types.js';
import { prepareUserName } from '../../user.js';
import type { ReplyText } from '../../errors.js';
import { textOf } from '../text/index.js';

/** The answer to a password over `maxBytes` UTF-8 bytes, or undefined when it is short enough. */
export function passwordTooLong(password: string, maxBytes: number): ReplyText | undefined {
  return Buffer.byteLength(password, 'utf8') > maxBytes ? textOf('passwordTooLong', maxBytes) : undefined;
}

/**
 * Checks a user name and password through the authenticator, as USER/PASS does: the name in its
 * prepared form (SASLprep, RFC 4616 section 2), the password as given (the password check prepares
 * it, as it was when stored). A password over `maxPasswordBytes` fails before any lookup or hash,
 * for every name alike.
 */
export async function verifyPassword(
  context: SaslContext,
  given: string,
  password: string,
): Promise<SaslStep> {
  const username = prepareUserName(given);
  const tooLong = passwordTooLong(password, context.maxPasswordBytes);
  if (tooLong !== undefined) throw new SaslError(tooLong);
  const result = await context.checkPassword({
    mechanism: 'USER',
    username,
    password,
    remoteAddress: context.remoteAddress,
    isTls: context.isTls,
    signal: context.signal,
  });
  return { kind: 'done', username, result };
}

/**
 * PLAIN (RFC 4616): one message `authzid NUL authcid NUL passwd`. Poplar does not let one user act
 * for another, so an authorization identity must be empty or equal to the authentication one.
 */
export const plain: SaslMechanism = {
  name: 'PLAIN',
  isCleartext: true,
  isAvailable: () => true,
  begin(context): SaslExchange {
    const finish = async (message: Buffer): Promise<SaslStep> => {
      const first = message.indexOf(0);
      const second = first === -1 ? -1 : message.indexOf(0, first + 1);
      if (second === -1 || message.indexOf(0, second + 1) !== -1)
        throw saslError('saslMalformed', 'plainMessage');
      const authzid = decodeUtf8(message.subarray(0, first), 'authzid');
      const authcid = decodeUtf8(message.subarray(first + 1, second), 'userName');
      const password = decodeUtf8(message.subarray(second + 1), 'password');
      if (authcid === '' || password === '') throw saslError('saslEmptyUserOrPassword');
      if (authzid !== '' && prepareUserName(authzid) !== prepareUserName(authcid)) {
        return { kind: 'done', username: authcid, result: { ok: false, reason: 'invalid' } };
      }
      return verifyPassword(context, authcid, password);
    };
    return {
      // No initial response: an empty challenge asks for the message (RFC 4616 section 2).
      start: (initial) =>
        initial === undefined
          ? Promise.resolve({ kind: 'challenge', data: Buffer.alloc(0) })
          : finish(initial),
      step: finish,
    };
  },
};
