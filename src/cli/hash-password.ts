import { text } from 'node:stream/consumers';
import { parseArgs } from 'node:util';
import { DEFAULT_SCHEME, findScheme, hashPassword, schemeNames } from '../auth/passwords/registry.js';
import { isValidUserName } from '../user.js';

/**
 * `poplar hash-password [--scheme S] [--user NAME]`: reads a password on stdin (one line; its line
 * end is not part of it) and prints the users-file field, or a whole line with --user. Every
 * scheme is written as Dovecot's `doveadm pw` would accept it (PBKDF2, SSHA256, SSHA512,
 * SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, CRYPT, ARGON2I, ARGON2ID, SCRAM-SHA-256, PLAIN).
 */
export async function hashPasswordCommand(argv: string[]): Promise<number> {
  let values: { scheme?: string | undefined; user?: string | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: { scheme: { type: 'string' }, user: { type: 'string' } },
    }));
  } catch (error) {
    process.stderr.write(`poplar hash-password: ${(error as Error).message}\n`);
    return 2;
  }
  // Any scheme the users file reads can be written, Dovecot's aliases ({CLEARTEXT}) included.
  const scheme = findScheme(values.scheme ?? DEFAULT_SCHEME)?.name;
  if (scheme === undefined) {
    process.stderr.write(
      `poplar hash-password: unknown scheme ${(values.scheme ?? '').toUpperCase()}; known: ${schemeNames().join(', ')}\n`,
    );
    return 2;
  }
  if (values.user !== undefined && !isValidUserName(values.user)) {
    process.stderr.write('poplar hash-password: invalid user name\n');
    return 2;
  }
  if (process.stdin.isTTY) process.stderr.write('Password: ');
  const input = await text(process.stdin);
  const password = input.replace(/\r?\n$/, '');
  if (password === '' || password.includes('\n')) {
    process.stderr.write('poplar hash-password: give one non-empty password on stdin\n');
    return 2;
  }
  const field = await hashPassword(password, scheme);
  process.stdout.write(values.user === undefined ? `${field}\n` : `${values.user}:${field}\n`);
  return 0;
}
