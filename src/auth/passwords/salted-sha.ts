import { createHash, randomBytes } from 'node:crypto';
import { safeEqual } from '../compare.js';
import { malformed, type PasswordScheme } from './types.js';

/**
 * Dovecot's salted SHA schemes: base64 of the digest of password+salt, followed by the salt.
 * `{SSHA}` (SHA-1) is what OpenLDAP's slappasswd writes by default, read from LDAP directories;
 * prefer SSHA512 or a slow scheme for new passwords.
 */
function saltedSha(name: string, algorithm: string, digestBytes: number): PasswordScheme {
  const split = (data: string): [Buffer, Buffer] | undefined => {
    const raw = Buffer.from(data, 'base64');
    if (raw.length <= digestBytes) return undefined;
    return [raw.subarray(0, digestBytes), raw.subarray(digestBytes)];
  };
  return {
    name,
    isPlaintext: false,
    problem: (data) =>
      /^[A-Za-z0-9+/]+={0,2}$/.test(data) && split(data) !== undefined ? undefined : malformed(name),
    verify(password, data) {
      const parts = split(data);
      if (parts === undefined) return Promise.resolve(false);
      const [expected, salt] = parts;
      const actual = createHash(algorithm).update(password, 'utf8').update(salt).digest();
      return Promise.resolve(safeEqual(actual, expected));
    },
    hash(password) {
      const salt = randomBytes(8);
      const digest = createHash(algorithm).update(password, 'utf8').update(salt).digest();
      return Promise.resolve(Buffer.concat([digest, salt]).toString('base64'));
    },
  };
}

export const SSHA_SCHEMES: readonly PasswordScheme[] = [
  saltedSha('SSHA', 'sha1', 20),
  saltedSha('SSHA256', 'sha256', 32),
  saltedSha('SSHA512', 'sha512', 64),
];
