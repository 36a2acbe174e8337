import { createHash, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { ARGON2_SCHEMES } from './argon2.js';
import { safeEqual } from '../compare.js';
import { CRYPT_SCHEMES } from './crypt.js';
import { malformed, unsupported, type PasswordScheme, type StoredPassword } from './types.js';
import { scramSha256 } from './scram.js';

const pbkdf2Async = promisify(pbkdf2);

const plain: PasswordScheme = {
  name: 'PLAIN',
  isPlaintext: true,
  problem: () => undefined,
  verify: (password, data) => Promise.resolve(safeEqual(password, data)),
  hash: (password) => Promise.resolve(password),
};

/**
 * Dovecot's `{PBKDF2}$1$salt$rounds$hex`: PBKDF2 with HMAC-SHA1, the salt taken as text, a
 * 20-byte key written in hex (Dovecot's password-scheme-pbkdf2.c).
 */
const PBKDF2_FORM = /^\$1\$([^$]+)\$([0-9]{1,9})\$([0-9a-fA-F]{40})$/;
/** Rounds for new {PBKDF2} hashes. Dovecot's default is 5,000; a login here costs some tens of milliseconds. */
export const PBKDF2_DEFAULT_ROUNDS = 100_000;
/** {PBKDF2} and SCRAM hashes with more rounds are refused: a login would take seconds of CPU. */
export const PBKDF2_MAX_ROUNDS = 2_000_000;

const pbkdf2Scheme: PasswordScheme = {
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

/** Dovecot's salted SHA-2 schemes: base64 of the digest of password+salt, followed by the salt. */
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

const SCHEMES: ReadonlyMap<string, PasswordScheme> = new Map(
  [
    plain,
    pbkdf2Scheme,
    saltedSha('SSHA256', 'sha256', 32),
    saltedSha('SSHA512', 'sha512', 64),
    ...CRYPT_SCHEMES,
    ...ARGON2_SCHEMES,
    scramSha256,
  ].map((s) => [s.name, s]),
);
/** Dovecot's other names for the same schemes. */
const ALIASES: ReadonlyMap<string, string> = new Map([
  ['CLEARTEXT', 'PLAIN'],
  ['CLEAR', 'PLAIN'],
]);

export const DEFAULT_SCHEME = 'PBKDF2';

export function schemeNames(): string[] {
  return [...SCHEMES.keys()];
}

export function findScheme(name: string): PasswordScheme | undefined {
  const upper = name.toUpperCase();
  return SCHEMES.get(ALIASES.get(upper) ?? upper);
}

/** Parses `{SCHEME}data`; returns a reason string when it cannot be used. */
export function parseStoredPassword(field: string): StoredPassword | string {
  const m = /^\{([A-Za-z0-9.-]+)\}(.*)$/s.exec(field);
  if (m === null) return 'password must start with {SCHEME}';
  const [, name = '', data = ''] = m;
  const scheme = findScheme(name);
  if (scheme === undefined) return `unsupported password scheme {${name.toUpperCase()}}`;
  const problem = scheme.problem(data);
  if (problem !== undefined) return problem;
  return { scheme, data };
}

/** `{SCHEME}data` for a new password. */
export async function hashPassword(password: string, schemeName = DEFAULT_SCHEME): Promise<string> {
  const scheme = findScheme(schemeName);
  if (scheme === undefined)
    throw new Error(`unknown scheme ${schemeName}; known: ${schemeNames().join(', ')}`);
  return `{${scheme.name}}${await scheme.hash(password)}`;
}
