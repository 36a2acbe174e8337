import { pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { safeEqual } from '../compare.js';
import { malformed, unsupported, type PasswordScheme } from './types.js';

const pbkdf2Async = promisify(pbkdf2);

/**
 * Dovecot's `{PBKDF2}$1$salt$rounds$hex`: PBKDF2 with HMAC-SHA1, the salt taken as text, a
 * 20-byte key written in hex (Dovecot's password-scheme-pbkdf2.c).
 */
const PBKDF2_FORM = /^\$1\$([^$]+)\$([0-9]{1,9})\$([0-9a-fA-F]{40})$/;
/** Rounds for new {PBKDF2} hashes. Dovecot's default is 5,000; a login here costs some tens of milliseconds. */
export const PBKDF2_DEFAULT_ROUNDS = 100_000;
/** {PBKDF2} and SCRAM hashes with more rounds are refused: a login would take seconds of CPU. */
export const PBKDF2_MAX_ROUNDS = 2_000_000;

export const pbkdf2Scheme: PasswordScheme = {
  name: 'PBKDF2',
  isPlaintext: false,
  problem: (data) => {
    const m = PBKDF2_FORM.exec(data);
    if (m === null || !(Number(m[2]) > 0)) return malformed('PBKDF2');
    const rounds = Number(m[2]);
    if (rounds > PBKDF2_MAX_ROUNDS) {
      return unsupported('PBKDF2', `${rounds} rounds is above Poplar's limit of ${PBKDF2_MAX_ROUNDS}`);
    }
    return undefined;
  },
  async verify(password, data) {
    const m = PBKDF2_FORM.exec(data);
    if (m === null) return false;
    const [, salt = '', rounds = '1', hex = ''] = m;
    const key = await pbkdf2Async(Buffer.from(password), Buffer.from(salt), Number(rounds), 20, 'sha1');
    return safeEqual(key, Buffer.from(hex, 'hex'));
  },
  async hash(password) {
    const salt = randomBytes(12).toString('base64url');
    const key = await pbkdf2Async(
      Buffer.from(password),
      Buffer.from(salt),
      PBKDF2_DEFAULT_ROUNDS,
      20,
      'sha1',
    );
    return `$1$${salt}$${PBKDF2_DEFAULT_ROUNDS}$${key.toString('hex')}`;
  },
};
