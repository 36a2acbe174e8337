import { randomInt } from 'node:crypto';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hashPassword } from '../auth/passwords/registry.js';
import { isErrno } from '../errors.js';
import { DEFAULT_ADMIN, TOKEN_SCHEME } from '../monitor/admins.js';
import { TOKEN_BYTES } from '../monitor/protocol/messages.js';
import { ensureCredentialFile } from './demo.js';

/** Letters and digits only: a generated token never starts with `-` and needs no quoting. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random admin token of the protocol's 16 characters (about 95 bits), from node:crypto. */
function generateToken(): string {
  return Array.from({ length: TOKEN_BYTES }, () => ALPHABET.charAt(randomInt(ALPHABET.length))).join('');
}

/** Where the token generated for the admins file `adminsPath` is shown, once. */
const tokenFileOf = (adminsPath: string): string => `${adminsPath}.token`;

/**
 * Outside demo mode, without --admins: unless the admins file exists, creates it with the admin
 * root holding a random token (stored hashed) and writes that token to `<admins>.token`, mode 0600,
 * before the admins file, so that the token is never lost. Resolves to the token file's path if
 * created, else undefined. An existing admins file is never replaced.
 */
export async function ensureGeneratedAdmin(adminsPath: string): Promise<string | undefined> {
  try {
    await access(adminsPath);
    return undefined;
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
  }
  const token = generateToken();
  const tokenPath = tokenFileOf(adminsPath);
  // A stale token file (its admins file deleted) is replaced, and created afresh so its mode is 0600.
  await rm(tokenPath, { force: true });
  await mkdir(dirname(adminsPath), { recursive: true, mode: 0o700 });
  await writeFile(tokenPath, `${token}\n`, { mode: 0o600, flag: 'wx' });
  if (await ensureCredentialFile(adminsPath, DEFAULT_ADMIN, await hashPassword(token, TOKEN_SCHEME))) {
    return tokenPath;
  }
  await rm(tokenPath, { force: true }); // made meanwhile by someone else: this token opens nothing
  return undefined;
}
