import { randomInt } from 'node:crypto';

/**
 * An app password's secret: 16 lower-case letters from the CSPRNG (`crypto.randomInt`, unbiased),
 * shown in four groups of four (`abcd-efgh-ijkl-mnop`). 26^16 is about 2^75.2: far beyond any
 * guessing, online or offline, so one salted SHA-256 stores it safely (a slow hash protects weak,
 * human-chosen passwords; this one is not).
 */

export const SECRET_LETTERS = 16;
const GROUP = 4;

/** A new secret, grouped for reading and typing. */
export function newSecret(): string {
  let letters = '';
  for (let i = 0; i < SECRET_LETTERS; i++) letters += String.fromCharCode(0x61 + randomInt(26));
  return groupSecret(letters);
}

/** `abcdefghijklmnop` as `abcd-efgh-ijkl-mnop`. */
export function groupSecret(letters: string): string {
  const groups: string[] = [];
  for (let i = 0; i < letters.length; i += GROUP) groups.push(letters.slice(i, i + GROUP));
  return groups.join('-');
}

/**
 * What is hashed and compared: the letters alone, lower-case. A client may be given the secret
 * with or without its dashes, with spaces instead, or in capitals; all log in. Applied to every
 * password tried, whatever its form, so every login costs the same.
 */
export function normalizeSecret(password: string): string {
  return password.replace(/[\s-]+/g, '').toLowerCase();
}
