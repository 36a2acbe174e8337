import { ARGON2_SCHEMES } from './argon2.js';
import { CRYPT_SCHEMES } from './crypt.js';
import { pbkdf2Scheme } from './pbkdf2.js';
import { plain } from './plain.js';
import { PasswordRefusedError, preparePassword } from './prepare.js';
import { SSHA_SCHEMES } from './salted-sha.js';
import { scramSha256 } from './scram.js';
import type { PasswordScheme, StoredPassword } from './types.js';

/** Every `{SCHEME}` Poplar reads, by upper-case name. */
const SCHEMES: ReadonlyMap<string, PasswordScheme> = new Map(
  [plain, pbkdf2Scheme, ...SSHA_SCHEMES, ...CRYPT_SCHEMES, ...ARGON2_SCHEMES, scramSha256].map((s) => [
    s.name,
    s,
  ]),
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

/**
 * `{SCHEME}data` for a new password, hashed in its prepared form (see {@link preparePassword}, which
 * every check applies too). Throws `PasswordRefusedError` for a password SASLprep refuses.
 */
export async function hashPassword(password: string, schemeName = DEFAULT_SCHEME): Promise<string> {
  const scheme = findScheme(schemeName);
  if (scheme === undefined)
    throw new Error(`unknown scheme ${schemeName}; known: ${schemeNames().join(', ')}`);
  const prepared = preparePassword(password);
  if (prepared === undefined) throw new PasswordRefusedError();
  return `{${scheme.name}}${await scheme.hash(prepared)}`;
}
