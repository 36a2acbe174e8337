import { verifyPassword } from './plain.js';
import { SaslError, type SaslExchange, type SaslMechanism, type SaslStep } from './types.js';

const USERNAME = Buffer.from('Username:');
const PASSWORD = Buffer.from('Password:');
const utf8 = new TextDecoder('utf-8', { fatal: true });

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
    const text = (bytes: Buffer): string => {
      try {
        return utf8.decode(bytes);
      } catch {
        throw new SaslError('not UTF-8');
      }
    };
    const take = async (response: Buffer): Promise<SaslStep> => {
      if (username === undefined) {
        username = text(response);
        if (username === '') throw new SaslError('empty user name');
        return { kind: 'challenge', data: PASSWORD };
      }
      const password = text(response);
      if (password === '') throw new SaslError('empty password');
      return verifyPassword(context, username, password);
    };
    return {
      start: (initial) =>
        initial === undefined ? Promise.resolve({ kind: 'challenge', data: USERNAME }) : take(initial),
      step: take,
    };
  },
};
