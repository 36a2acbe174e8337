import { randomBytes } from 'node:crypto';
import { genSaltSync } from 'bcryptjs';
import { safeEqual } from '../compare.js';
import { defaultHashPool } from './hash-pool.js';
import type { CryptJob } from './hash-worker.js';
import { malformed, unsupported, type PasswordScheme } from './types.js';

/**
 * Dovecot's crypt(3) schemes: `{SHA512-CRYPT}` (`$6$`), `{SHA256-CRYPT}` (`$5$`), `{BLF-CRYPT}`
 * (bcrypt, `$2y$`) and `{CRYPT}`, which takes whichever of those the hash's prefix names. The
 * hashes are computed in JavaScript (unixcrypt, bcryptjs) on the hash pool's workers, and the
 * result compared here, as Dovecot compares crypt()'s output with the stored string.
 */

/** Rounds for new SHA-crypt hashes: glibc's and Dovecot's default, which is written without `rounds=`. */
export const SHA_CRYPT_DEFAULT_ROUNDS = 5000;
/** SHA-crypt hashes with more rounds are refused: a login would take seconds of CPU (about 9 s here at the limit). */
export const SHA_CRYPT_MAX_ROUNDS = 1_000_000;
/** Cost for new bcrypt hashes (Dovecot 2.3 writes 5, which is weak today; 10 is the usual floor). */
export const BCRYPT_DEFAULT_COST = 10;
/** bcrypt hashes with a higher cost are refused: a login would take most of a minute in JavaScript. */
export const BCRYPT_MAX_COST = 16;

type Family = 'sha512' | 'sha256' | 'bcrypt';

interface CryptHash {
  readonly family: Family;
  /** What crypt() is given: the hash up to its salt. */
  readonly setting: string;
}

/** `$5$` / `$6$`, optional `rounds=N$` (no leading zero: glibc never writes one), salt, hash. */
const SHA_CRYPT_FORM = /^\$([56])\$(?:rounds=([1-9][0-9]{0,8})\$)?([./0-9A-Za-z]{1,16})\$([./0-9A-Za-z]+)$/;
/** `$2a$` / `$2b$` / `$2y$` (the same algorithm today), two-digit cost, 22 salt and 31 hash characters. */
const BCRYPT_FORM = /^\$2[aby]\$([0-9]{2})\$[./A-Za-z0-9]{53}$/;

/** crypt(3) methods that `{CRYPT}` may hold but Poplar does not verify. */
const UNSUPPORTED_METHODS: readonly (readonly [RegExp, string])[] = [
  [/^\$1\$/, 'MD5-crypt ($1$)'],
  [/^\$2x\$/, 'bcrypt $2x$ (the pre-2011 buggy variant)'],
  [/^\$y\$/, 'yescrypt ($y$)'],
  [/^\$gy\$/, 'gost-yescrypt ($gy$)'],
  [/^\$7\$/, 'scrypt ($7$)'],
  [/^\$sha1\$/, 'SHA1-crypt ($sha1$)'],
  [/^\$md5[$,]/, 'Sun MD5-crypt ($md5$)'],
  [/^\$3\$/, 'NT-hash ($3$)'],
  [/^_[./0-9A-Za-z]{19}$/, 'BSDi extended DES-crypt (_)'],
  [/^[./0-9A-Za-z]{13}$/, 'DES-crypt'],
];

/** What `data` holds, or the problem with it, for a scheme that takes the given families. */
function parseCrypt(scheme: string, data: string, families: readonly Family[]): CryptHash | string {
  const sha = SHA_CRYPT_FORM.exec(data);
  if (sha !== null) {
    const [, id = '', roundsText, , hash = ''] = sha;
    const family = id === '6' ? 'sha512' : 'sha256';
    const hashChars = id === '6' ? 86 : 43;
    if (!families.includes(family) || hash.length !== hashChars) return malformed(scheme);
    const rounds = roundsText === undefined ? SHA_CRYPT_DEFAULT_ROUNDS : Number(roundsText);
    // glibc raises fewer rounds to 1000 and writes rounds=1000, so such a hash never matches.
    if (rounds < 1000) return malformed(scheme);
    if (rounds > SHA_CRYPT_MAX_ROUNDS) {
      return unsupported(scheme, `rounds=${rounds} is above Poplar's limit of ${SHA_CRYPT_MAX_ROUNDS}`);
    }
    return { family, setting: data.slice(0, data.lastIndexOf('$')) };
  }
  const bcrypt = BCRYPT_FORM.exec(data);
  if (bcrypt !== null) {
    const cost = Number(bcrypt[1]);
    if (!families.includes('bcrypt') || cost < 4 || cost > 31) return malformed(scheme);
    if (cost > BCRYPT_MAX_COST) {
      return unsupported(scheme, `bcrypt cost ${cost} is above Poplar's limit of ${BCRYPT_MAX_COST}`);
    }
    return { family: 'bcrypt', setting: data.slice(0, 29) };
  }
  if (families.length > 1) {
    for (const [prefix, method] of UNSUPPORTED_METHODS) {
      if (prefix.test(data)) {
        return unsupported(
          scheme,
          `${method} is not supported; rehash with SHA512-CRYPT, BLF-CRYPT or ARGON2ID`,
        );
      }
    }
  }
  return malformed(scheme);
}

/** crypt(password, setting) on a hash pool worker; not run at all if `signal` aborts while it waits. */
async function cryptOffThread(password: string, setting: string, signal?: AbortSignal): Promise<string> {
  const job: CryptJob = { op: 'crypt', password, setting };
  const result = await defaultHashPool().run(job, signal === undefined ? {} : { signal });
  if (typeof result !== 'string') throw new TypeError('the hash worker answered with no string');
  return result;
}

const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** 16 salt characters (the most SHA-crypt uses), 6 random bits each, as glibc and Dovecot make them. */
function shaCryptSalt(): string {
  return [...randomBytes(16)].map((byte) => CRYPT_ALPHABET.charAt(byte & 63)).join('');
}

const hashShaCrypt = (id: '5' | '6') => (password: string) =>
  cryptOffThread(password, `$${id}$${shaCryptSalt()}`);

/** `$2y$`, as Dovecot writes it; bcryptjs makes the salt (from node:crypto's random bytes). */
const hashBcrypt = (password: string) =>
  cryptOffThread(password, genSaltSync(BCRYPT_DEFAULT_COST).replace(/^\$2b\$/, '$2y$'));

function cryptScheme(
  name: string,
  families: readonly Family[],
  hash: (password: string) => Promise<string>,
): PasswordScheme {
  return {
    name,
    isPlaintext: false,
    problem(data) {
      const parsed = parseCrypt(name, data, families);
      return typeof parsed === 'string' ? parsed : undefined;
    },
    async verify(password, data, signal) {
      const parsed = parseCrypt(name, data, families);
      if (typeof parsed === 'string') return false;
      return safeEqual(await cryptOffThread(password, parsed.setting, signal), data);
    },
    hash,
  };
}

export const CRYPT_SCHEMES: readonly PasswordScheme[] = [
  cryptScheme('SHA512-CRYPT', ['sha512'], hashShaCrypt('6')),
  cryptScheme('SHA256-CRYPT', ['sha256'], hashShaCrypt('5')),
  cryptScheme('BLF-CRYPT', ['bcrypt'], hashBcrypt),
  // New {CRYPT} hashes are bcrypt, as Dovecot 2.3 writes them on Debian (libxcrypt).
  cryptScheme('CRYPT', ['sha512', 'sha256', 'bcrypt'], hashBcrypt),
];
