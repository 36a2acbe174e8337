import { verifyPassword } from './plain.js';
import { decodeUtf8, saslError, type SaslExchange, type SaslMechanism, type SaslStep } from './types.js';

const USERNAME = Buffer.from('Username:');
const PASSWORD = Buffer.from('Password:');

/**
 * LOGIN (draft-murchison-sasl-login): the server asks `Username:` then `Password:`. Obsolete but
 * still what many Outlook versions send. An initial response is the user name.
 */
export const login: SaslMechanism = {
  name: 'LOGIN',
  isCleartext: true,
  isAvailable: () => true,
  begin(context): SaslExchange {
    let username: string | undefined;
    const take = async (response: Buffer): Promise<SaslStep> => {
      if (username === undefined) {
        username = decodeUtf8(response, 'userName');
        if (username === '') throw saslError('saslEmptyUser');
        return { kind: 'challenge', data: PASSWORD };
      }
      const password = decodeUtf8(response, 'password');
      if (password === '') throw saslError('saslEmptyPassword');
      return verifyPassword(context, username, password);
    };
    return {
      start: (initial) =>
        initial === undefined ? Promise.resolve({ kind: 'challenge', data: USERNAME }) : take(initial),
      step: take,
    };
  },
};
