import { safeEqual } from '../compare.js';
import type { PasswordScheme } from './types.js';

/** `{PLAIN}` (Dovecot's `{CLEARTEXT}`, `{CLEAR}`): the secret itself, which APOP and CRAM-MD5 need. */
export const plain: PasswordScheme = {
  name: 'PLAIN',
  isPlaintext: true,
  problem: () => undefined,
  verify: (password, data) => Promise.resolve(safeEqual(password, data)),
  hash: (password) => Promise.resolve(password),
};
