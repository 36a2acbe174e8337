import { parseArgs } from 'node:util';
import { DEFAULT_SCHEME, findScheme, hashPassword, schemeNames } from '../auth/passwords/registry.js';
import { hasControlCharacter } from '../text.js';
import { preparePassword } from '../auth/passwords/prepare.js';
import { canonicalUserName } from '../user.js';
import { exitForSecretError, readSecret } from './prompt.js';

const USAGE = `Usage: poplar hash-password [--scheme SCHEME] [--user NAME]

Reads a password and prints it hashed, as the users file holds it ({SCHEME}hash), or as a whole
users-file line (NAME:{SCHEME}hash) with --user. On a terminal the password is asked twice and not
shown; otherwise it is read from stdin (one line; its line end is not part of it).

Options:
  --scheme SCHEME   ${DEFAULT_SCHEME} by default; one of ${schemeNames().join(', ')}
  --user NAME       print a whole line for the users (or admins) file
  -h, --help        show this help

Exit status: 0 done; 2 bad arguments or password; 130 cancelled at the prompt.
`;

/**
 * `poplar hash-password [--scheme S] [--user NAME]`: reads a password (see {@link readSecret}) and
 * prints the users-file field, or a whole line with --user. Every scheme is written as Dovecot's
 * `doveadm pw` would accept it (PBKDF2, SSHA256, SSHA512, SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT,
 * CRYPT, ARGON2I, ARGON2ID, SCRAM-SHA-256, PLAIN).
 */
export async function hashPasswordCommand(argv: string[]): Promise<number> {
  let values: { scheme?: string | undefined; user?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        scheme: { type: 'string' },
        user: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    process.stderr.write(`poplar hash-password: ${(error as Error).message}\n`);
    process.stderr.write("Run 'poplar hash-password --help' for help.\n");
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  // Any scheme the users file reads can be written, Dovecot's aliases ({CLEARTEXT}) included.
  const scheme = findScheme(values.scheme ?? DEFAULT_SCHEME);
  if (scheme === undefined) {
    process.stderr.write(
      `poplar hash-password: unknown scheme ${(values.scheme ?? '').toUpperCase()}; known: ${schemeNames().join(', ')}\n`,
    );
    return 2;
  }
  // The name as the users file must hold it: in its prepared form (composed, one spelling).
  const user = values.user === undefined ? undefined : canonicalUserName(values.user);
  if (values.user !== undefined && user === undefined) {
    process.stderr.write('poplar hash-password: invalid user name\n');
    return 2;
  }
  let password: string;
  try {
    password = await readSecret({ what: 'Password', isConfirmed: true });
  } catch (error) {
    return exitForSecretError(error, 'poplar hash-password');
  }
  // A {PLAIN} field is the password itself: the users file ends it at the first ':' (Dovecot's field
  // separator) and refuses a line with control characters, so such a password would not round-trip.
  if (
    scheme.isPlaintext &&
    (password.includes(':') || hasControlCharacter(password, { isTabAllowed: true }))
  ) {
    process.stderr.write(
      'poplar hash-password: a {PLAIN} password cannot hold ":" or control characters (the users file ' +
        'would read it differently); choose a hashing scheme\n',
    );
    return 2;
  }
  if (preparePassword(password) === undefined) {
    process.stderr.write(
      'poplar hash-password: the password holds characters SASLprep (RFC 4013) refuses (a bidirectional ' +
        'or other control character, or right-to-left letters mixed with left-to-right ones)\n',
    );
    return 2;
  }
  const field = await hashPassword(password, scheme.name);
  process.stdout.write(user === undefined ? `${field}\n` : `${user}:${field}\n`);
  return 0;
}
