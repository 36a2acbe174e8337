import { resolve } from 'node:path';
import { canonicalUserName } from '../user.js';
import { commandLogger, type ConfigReader } from './check-config.js';
import { openUsers } from './users-source.js';
import { planOf } from './plan.js';
import { exitForSecretError, readSecret } from './prompt.js';

/** Exit statuses, as `doveadm auth test` (sysexits.h). */
export const AuthTestExit = { succeeded: 0, failed: 77, temporary: 75 } as const;

const USAGE = `Usage: poplar auth-test USER [PASSWORD] [options]

Tests a login as the daemon would check it (like doveadm auth test): with the users (a file, a
PostgreSQL database or an LDAP directory) of the configuration given by the options (the daemon's:
--users, --config, -m ...; see poplar --help).
Without PASSWORD it is asked for, hidden, on a terminal, or read from stdin when piped. Prints the
backend, the scheme the user's password is stored with, and "auth succeeded" or "auth failed";
never the password.

Exit status: 0 auth succeeded; 77 auth failed (wrong password, unknown user); 75 the backend failed
for now (a database that does not answer, and no cached login); 1 the users file cannot be read;
2 bad arguments; 130 cancelled at the prompt.
`;

/** `poplar auth-test USER [PASSWORD] [the daemon's flags]`. */
export async function authTestCommand(argv: string[], readConfig: ConfigReader): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const leading = argv.findIndex((word) => word.startsWith('-'));
  const words = leading === -1 ? argv : argv.slice(0, leading);
  const [typed, given, ...extra] = words;
  if (typed === undefined || extra.length > 0) {
    process.stderr.write(`poplar auth-test: give USER [PASSWORD], then the daemon's options\n`);
    return 2;
  }
  const user = canonicalUserName(typed);
  if (user === undefined) {
    process.stderr.write('poplar auth-test: invalid user name\n');
    return 2;
  }
  const config = await readConfig(argv.slice(words.length));
  if (typeof config === 'number') return config;
  const logger = commandLogger(config.logLevel);
  const plan = planOf(config);
  let users;
  try {
    users = await openUsers(config, plan, undefined, logger);
  } catch (error) {
    process.stderr.write(
      `poplar auth-test: users file ${resolve(plan.usersPath)}: ${(error as Error).message}\n`,
    );
    return 1;
  }
  try {
    let password = given;
    if (password === undefined) {
      try {
        password = await readSecret({ what: 'Password', isConfirmed: false });
      } catch (error) {
        return exitForSecretError(error, 'poplar auth-test');
      }
    }
    const where = users.backend === 'passwd-file' ? resolve(users.path) : users.path;
    process.stdout.write(`backend: ${users.backend} ${where}${plan.isDemo ? ' (demo mode)' : ''}\n`);
    const scheme = await users.schemeOf(user).then(
      (name) =>
        name === undefined
          ? 'none (no such user)'
          : name === 'bind'
            ? 'checked by the directory (bind)'
            : `{${name}}`,
      () => 'unknown (the database does not answer)',
    );
    process.stdout.write(`scheme: ${scheme}\n`);
    const result = await users.authenticator.authenticate({
      mechanism: 'USER',
      username: user,
      password,
      remoteAddress: '127.0.0.1',
      isTls: true,
      signal: AbortSignal.timeout(60_000),
    });
    if (result.ok) {
      process.stdout.write(`passdb: ${user} auth succeeded\n`);
      return AuthTestExit.succeeded;
    }
    process.stdout.write(
      `passdb: ${user} auth failed${result.reason === 'temporary' ? ' (temporary)' : ''}\n`,
    );
    return result.reason === 'temporary' ? AuthTestExit.temporary : AuthTestExit.failed;
  } finally {
    users.close();
  }
}
