import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { sendMonitorRequest, tokenBytes } from '../monitor/client.js';
import { Status, type MonitorRequest } from '../monitor/protocol/messages.js';
import {
  COMMANDS,
  commandAction,
  ORIGINAL_OPTIONS,
  originalAction,
  UsageError,
  type Action,
  type OriginalOption,
  type Outcome,
} from './poplarctl-actions.js';
import { uidlAction } from './poplarctl-uidl.js';
import { APP_PASSWORD_USAGE, appPasswordAction } from './poplarctl-app-passwords.js';
import { exitForSecretError, SecretInputError } from './prompt.js';
import { version } from './version.js';
import { userAction } from './poplarctl-user.js';

const USAGE = `Usage: poplarctl OPTION TOKEN [HOST [PORT]]   (the original monitoring client's form)
       poplarctl [options] COMMAND [ARGS]      (the token from POPLAR_TOKEN or --token-file)

Original options (one per call):
  -c TOKEN               concurrent connections
  -C TOKEN               historic connections (since start)
  -b TOKEN               transferred bytes (sent to POP3 clients)
  -u USER:PASS TOKEN     add a POP3 user, or set their password
  -U NAME:TOKEN TOKEN    add an admin (a token is 16 printable ASCII characters)
  -d USER TOKEN          delete a POP3 user (their sessions end; their mail stays)
  -D NAME TOKEN          delete an admin (never the last one)
  -m PATH TOKEN          set the Maildir root for sessions that start from now on
  HOST and PORT after the token: the monitor's address, as --host and --port
  -h                     this help
  -v                     the version

Commands:
  stats                  every counter
  sessions               the open sessions
  kick USER              end USER's sessions (nothing is deleted)
  users list             the POP3 users' names
  users add USER         add a POP3 user or set the password (asked twice, or read from stdin)
  users del USER         delete a POP3 user
  admins list            the admins' names
  admins add NAME        add an admin (token asked twice, or read from stdin)
  admins del NAME        delete an admin
  maildir PATH           set the Maildir root
  chunk-size BYTES       set the transfer chunk size (512 to 1048576)
  reload                 what SIGHUP does: re-read the config file, certificates, users and admins
  uidl USER              USER's messages: UIDL, where it came from, file (docs/migration.md)
  uidl import USER FILE  UIDLs from another server: FILE's lines are \`UIDL file-name\`
  user info USER         USER's policy and last logins (time, address, method, TLS, bytes, deletions)
${APP_PASSWORD_USAGE}

Options:
  --host HOST            server address (default 127.0.0.1)
  --port PORT            monitor port (default 1081)
  --source ADDRESS       connect from this local address (a host with several)
  --token-file FILE      read the admin token from FILE (keeps it out of ps)
  --json                 print results as JSON
  --version              the version

Exit status: 0 done; 1 the server answered with an error; 2 usage; 3 no answer;
68 kick: the user has no session; 130 a prompt was cancelled.
`;

const HINT = "Run 'poplarctl -h' for help.\n";

/** The command line, understood: what to do, where, with which token (if one was given). */
interface Invocation {
  readonly action: Action;
  readonly host: string;
  readonly port: number;
  readonly token: string | undefined;
}

/**
 * Reads the original form (`-C TOKEN [HOST [PORT]]`, as the C project's client: its words after
 * the token are the address, the port third) or the readable one (`stats`, `users list`...). One
 * action per call: the C client ran several options one after the other; here that is refused.
 */
function understand(
  values: Record<string, string | boolean | undefined>,
  positionals: readonly string[],
  originals: readonly { name: OriginalOption; value: string | undefined }[],
): Invocation {
  const option = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === 'string' ? v : undefined;
  };
  let host = option('host') ?? '127.0.0.1';
  let portText = option('port') ?? '1081';
  let action: Action;
  let token: string | undefined;
  const [first, second] = originals;
  if (first !== undefined) {
    if (second !== undefined)
      throw new UsageError(`one action per call: -${first.name} and -${second.name} were given`);
    const command = positionals.find((word) => word in COMMANDS);
    if (command !== undefined)
      throw new UsageError(`one action per call: -${first.name} and ${command} were given`);
    if (positionals.length > 3) throw new UsageError('too many arguments: OPTION TOKEN [HOST [PORT]]');
    action = originalAction(first.name, first.value);
    const [given, givenHost, givenPort] = positionals;
    token = given;
    host = givenHost ?? host;
    portText = givenPort ?? portText;
  } else {
    action =
      positionals[0] === 'uidl'
        ? uidlAction(positionals.slice(1))
        : positionals[0] === 'user'
          ? userAction(positionals.slice(1))
          : positionals[0] === 'app-password'
            ? appPasswordAction(positionals.slice(1))
            : commandAction(positionals);
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)
    throw new UsageError(`invalid port ${portText}`);
  return { action, host, port: Number(portText), token };
}

export async function poplarctl(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      tokens: true,
      options: {
        c: { type: 'boolean', short: 'c', multiple: true },
        C: { type: 'boolean', short: 'C', multiple: true },
        b: { type: 'boolean', short: 'b', multiple: true },
        u: { type: 'string', short: 'u', multiple: true },
        U: { type: 'string', short: 'U', multiple: true },
        d: { type: 'string', short: 'd', multiple: true },
        D: { type: 'string', short: 'D', multiple: true },
        m: { type: 'string', short: 'm', multiple: true },
        h: { type: 'boolean', short: 'h' },
        help: { type: 'boolean' },
        v: { type: 'boolean', short: 'v' },
        version: { type: 'boolean' },
        host: { type: 'string' },
        port: { type: 'string' },
        source: { type: 'string' },
        'token-file': { type: 'string' },
        json: { type: 'boolean' },
      },
    });
  } catch (error) {
    process.stderr.write(`poplarctl: ${(error as Error).message}\n${HINT}`);
    return 2;
  }
  const { values, positionals, tokens } = parsed;
  if (values.h === true || values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.v === true || values.version === true) {
    process.stdout.write(`poplarctl ${version()}\n`);
    return 0;
  }
  const isJson = values.json === true;
  const originals = tokens.flatMap((t) =>
    t.kind === 'option' && (ORIGINAL_OPTIONS as readonly string[]).includes(t.name)
      ? [{ name: t.name as OriginalOption, value: t.value }]
      : [],
  );
  let invocation: Invocation;
  let token: string;
  try {
    invocation = understand({ host: values.host, port: values.port }, positionals, originals);
    let given = invocation.token;
    if (given === undefined && values['token-file'] !== undefined) {
      given = (await readFile(values['token-file'], 'utf8')).replace(/\r?\n$/, '');
    }
    given ??= process.env['POPLAR_TOKEN'];
    if (given === undefined)
      throw new UsageError('no token: give it as the last argument, in POPLAR_TOKEN or with --token-file');
    tokenBytes(given);
    token = given;
  } catch (error) {
    process.stderr.write(
      `poplarctl: ${(error as Error).message}\n${error instanceof UsageError ? HINT : ''}`,
    );
    return 2;
  }
  const { action, host, port } = invocation;
  const localAddress = values.source;
  let outcome: Outcome;
  try {
    outcome = await action.run((request) =>
      sendMonitorRequest({ host, port, ...(localAddress === undefined ? {} : { localAddress }) }, {
        ...request,
        token: tokenBytes(token),
      } as MonitorRequest),
    );
  } catch (error) {
    if (error instanceof SecretInputError) return exitForSecretError(error, 'poplarctl', HINT);
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === 'ECONNREFUSED' ? ': is poplar running, with its monitor on this address and port?' : '';
    process.stderr.write(
      `poplarctl: cannot reach the monitor at ${host}:${port} (${(error as Error).message})${hint}\n`,
    );
    return 3;
  }
  if (!outcome.ok) {
    const hex =
      outcome.status === undefined ? undefined : `0x${Status[outcome.status].toString(16).padStart(2, '0')}`;
    if (isJson) {
      const status = hex === undefined ? {} : { status: hex };
      process.stdout.write(`${JSON.stringify({ ok: false, ...status, error: outcome.error })}\n`);
    }
    process.stderr.write(`poplarctl: ${outcome.error}${hex === undefined ? '' : ` (status ${hex})`}\n`);
    return outcome.exitCode;
  }
  const text = isJson ? JSON.stringify(outcome.json) : outcome.text;
  process.stdout.write(text === '' ? '' : `${text}\n`);
  return 0;
}
