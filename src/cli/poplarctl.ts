import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { counterValue, sendMonitorRequest, tokenBytes } from '../monitor/client.js';
import { pairData } from '../monitor/protocol/encode.js';
import type { ConfigTarget, GetTarget, MonitorRequest, Status } from '../monitor/protocol/messages.js';
import { readSecret, SecretInputError } from './prompt.js';

const USAGE = `Usage: poplarctl OPTION TOKEN              (the original monitoring client's form)
       poplarctl [options] COMMAND [ARGS]      (the token from POPLAR_TOKEN or --token-file)

Original options:
  -c TOKEN               concurrent connections
  -C TOKEN               historic connections (since start)
  -b TOKEN               transferred bytes (sent to POP3 clients)
  -u USER:PASS TOKEN     add a POP3 user, or set their password
  -U NAME:TOKEN TOKEN    add an admin (a token is 16 printable ASCII characters)
  -d USER TOKEN          delete a POP3 user (their sessions end; their mail stays)
  -D NAME TOKEN          delete an admin (never the last one)
  -m PATH TOKEN          set the Maildir root for sessions that start from now on
  -h                     this help

Commands:
  stats                  every counter
  sessions               the open sessions
  kick USER              end USER's sessions (nothing is deleted)
  users add USER         add a POP3 user or set the password (read from stdin)
  users del USER         delete a POP3 user
  admins add NAME        add an admin (token read from stdin)
  admins del NAME        delete an admin
  maildir PATH           set the Maildir root
  chunk-size BYTES       set the transfer chunk size (512 to 1048576)

Options:
  --host HOST            server address (default 127.0.0.1)
  --port PORT            monitor port (default 1081)
  --token-file FILE      read the admin token from FILE (keeps it out of ps)
  --json                 print results as JSON

Exit status: 0 done; 1 the server answered with an error; 2 usage; 3 no answer.
`;

/** What one invocation asks: a request plus how to word its outcome. */
interface Action {
  readonly request: Omit<MonitorRequest, 'token'>;
  /** What the 0x04 status means for this request. */
  readonly refusal: string;
  readonly describe: (data: Buffer) => { text: string; json: unknown };
}

class UsageError extends Error {}

const get = (target: GetTarget, label: string): Action => ({
  request: { type: 'get', target, data: Buffer.alloc(0) },
  refusal: 'the server refused the request',
  describe: (data) => {
    const value = counterValue(data);
    return { text: `${label}: ${value}`, json: { [target]: Number(value) } };
  },
});

const config = (target: ConfigTarget, data: Buffer, done: string, refusal: string): Action => ({
  request: { type: 'config', target, data },
  refusal,
  describe: () => ({ text: done, json: { ok: true, target } }),
});

function splitPair(value: string, what: string): [string, string] {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) throw new UsageError(`expected ${what}`);
  return [value.slice(0, colon), value.slice(colon + 1)];
}

const USER_REFUSAL =
  'invalid user name or password (a name is 1 to 64 letters, digits or . _ - + @, not starting with a dot)';

const snapshot: Action = {
  request: { type: 'get', target: 'snapshot', data: Buffer.alloc(0) },
  refusal: 'the server refused the request',
  describe: (data) => {
    const doc = JSON.parse(data.toString('utf8')) as {
      counters: Record<string, number>;
      sessions: {
        id: string;
        user: string | null;
        remoteAddress: string;
        state: string;
        startedAt: string;
      }[];
      sessionCount: number;
      isTruncated: boolean;
    };
    const lines = Object.entries(doc.counters).map(([k, v]) => `${k}: ${v}`);
    return { text: lines.join('\n'), json: doc };
  },
};

const sessionsAction: Action = {
  ...snapshot,
  describe: (data) => {
    const { json } = snapshot.describe(data);
    const doc = json as { sessions: Record<string, unknown>[]; sessionCount: number; isTruncated: boolean };
    const rows = doc.sessions.map((s) =>
      [s['id'], s['user'] ?? '-', s['remoteAddress'], s['state'], s['startedAt']].map(String).join('  '),
    );
    const header = `${doc.sessionCount} open session${doc.sessionCount === 1 ? '' : 's'}`;
    const cut = doc.isTruncated ? ` (showing ${doc.sessions.length})` : '';
    return { text: [header + cut, ...rows].join('\n'), json: doc.sessions };
  },
};

async function commandAction(words: string[]): Promise<Action> {
  const [command, ...rest] = words;
  const arg = (i: number, what: string): string => {
    const value = rest[i];
    if (value === undefined || value === '') throw new UsageError(`${command ?? 'command'}: missing ${what}`);
    return value;
  };
  if (command === undefined) throw new UsageError('no command given');
  // An extra word (a token given as in the original form, say) would otherwise be silently dropped.
  const maxArgs: Record<string, number> = { kick: 1, maildir: 1, 'chunk-size': 1, users: 2, admins: 2 };
  if (rest.length > (maxArgs[command] ?? 0) && command in { stats: 0, sessions: 0, ...maxArgs }) {
    throw new UsageError(
      `too many arguments: ${command} takes the token from POPLAR_TOKEN or --token-file, not as an argument`,
    );
  }
  switch (command) {
    case 'stats':
      return snapshot;
    case 'sessions':
      return sessionsAction;
    case 'kick': {
      const user = arg(0, 'USER');
      return config('endSessions', Buffer.from(user), `ended the sessions of ${user}`, 'invalid user name');
    }
    case 'maildir': {
      const path = arg(0, 'PATH');
      return config(
        'maildir',
        Buffer.from(path),
        `Maildir root set to ${path}`,
        `${path} is not an existing directory on the server`,
      );
    }
    case 'chunk-size': {
      const bytes = arg(0, 'BYTES');
      return config(
        'chunkSize',
        Buffer.from(bytes),
        `transfer chunk size set to ${bytes}`,
        'the chunk size must be from 512 to 1048576',
      );
    }
    case 'users':
    case 'admins': {
      const verb = arg(0, 'add or del');
      const name = arg(1, command === 'users' ? 'USER' : 'NAME');
      const isUser = command === 'users';
      if (verb === 'add') {
        const secret = await readSecret({ what: isUser ? 'Password' : 'Token', isConfirmed: true });
        return isUser
          ? config('setUser', pairData(name, secret), `user ${name} saved`, USER_REFUSAL)
          : config(
              'addAdmin',
              pairData(name, secret),
              `admin ${name} added`,
              'the admin exists, or the name or the token is invalid (a token is 16 printable ASCII characters)',
            );
      }
      if (verb === 'del') {
        return isUser
          ? config(
              'deleteUser',
              Buffer.from(name),
              `user ${name} deleted; their sessions were ended, their mail kept`,
              `no such user: ${name}`,
            )
          : config(
              'deleteAdmin',
              Buffer.from(name),
              `admin ${name} deleted`,
              `no such admin, or ${name} is the last admin`,
            );
      }
      throw new UsageError(`${command}: expected add or del`);
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

/** The original client's single options. Resolves to the action and how many positionals it used. */
function originalAction(values: Record<string, string | boolean | undefined>): Action | undefined {
  const str = (key: string): string | undefined => {
    const v = values[key];
    return typeof v === 'string' ? v : undefined;
  };
  if (values['c'] === true) return get('concurrentConnections', 'concurrent connections');
  if (values['C'] === true) return get('historicConnections', 'historic connections');
  if (values['b'] === true) return get('transferredBytes', 'transferred bytes');
  const u = str('u');
  if (u !== undefined) {
    const [user, pass] = splitPair(u, 'USER:PASS');
    return config('setUser', pairData(user, pass), `user ${user} saved`, USER_REFUSAL);
  }
  const U = str('U');
  if (U !== undefined) {
    const [name, token] = splitPair(U, 'NAME:TOKEN');
    return config(
      'addAdmin',
      pairData(name, token),
      `admin ${name} added`,
      'the admin exists, or the name or the token is invalid (a token is 16 printable ASCII characters)',
    );
  }
  const d = str('d');
  if (d !== undefined)
    return config(
      'deleteUser',
      Buffer.from(d),
      `user ${d} deleted; their sessions were ended, their mail kept`,
      `no such user: ${d}`,
    );
  const D = str('D');
  if (D !== undefined)
    return config(
      'deleteAdmin',
      Buffer.from(D),
      `admin ${D} deleted`,
      `no such admin, or ${D} is the last admin`,
    );
  const m = str('m');
  if (m !== undefined)
    return config(
      'maildir',
      Buffer.from(m),
      `Maildir root set to ${m}`,
      `${m} is not an existing directory on the server`,
    );
  return undefined;
}

const STATUS_TEXT: Record<Exclude<Status, 'ok' | 'badData'>, string> = {
  badVersion: 'the server does not speak this protocol version',
  badType: 'the server did not understand the request type',
  badTarget: 'the server does not know this target (is it an older server?)',
  authFailed: 'the server refused the token: check it (POPLAR_TOKEN, --token-file, or the last argument)',
  serverError: 'the server could not make the change; its log says why',
};

export async function poplarctl(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        c: { type: 'boolean', short: 'c' },
        C: { type: 'boolean', short: 'C' },
        b: { type: 'boolean', short: 'b' },
        u: { type: 'string', short: 'u' },
        U: { type: 'string', short: 'U' },
        d: { type: 'string', short: 'd' },
        D: { type: 'string', short: 'D' },
        m: { type: 'string', short: 'm' },
        h: { type: 'boolean', short: 'h' },
        help: { type: 'boolean' },
        host: { type: 'string' },
        port: { type: 'string' },
        'token-file': { type: 'string' },
        json: { type: 'boolean' },
      },
    });
  } catch (error) {
    process.stderr.write(`poplarctl: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.h === true || values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const host = values.host ?? '127.0.0.1';
  const port = Number(values.port ?? 1081);
  let action: Action;
  let token: string | undefined;
  try {
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new UsageError(`invalid port ${String(values.port)}`);
    const original = originalAction(values);
    if (original !== undefined) {
      action = original;
      if (positionals.length > 1) throw new UsageError('too many arguments');
      token = positionals[0];
    } else {
      action = await commandAction(positionals);
    }
    if (token === undefined && values['token-file'] !== undefined) {
      token = (await readFile(values['token-file'], 'utf8')).replace(/\r?\n$/, '');
    }
    token ??= process.env['POPLAR_TOKEN'];
    if (token === undefined)
      throw new UsageError('no token: give it as the last argument, in POPLAR_TOKEN or with --token-file');
    tokenBytes(token);
  } catch (error) {
    if (error instanceof SecretInputError && error.isCancelled) return 130;
    process.stderr.write(`poplarctl: ${(error as Error).message}\n`);
    if (error instanceof UsageError || error instanceof SecretInputError)
      process.stderr.write("Run 'poplarctl -h' for help.\n");
    return 2;
  }
  let response;
  try {
    response = await sendMonitorRequest({ host, port }, {
      ...action.request,
      token: tokenBytes(token),
    } as MonitorRequest);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === 'ECONNREFUSED' ? ': is poplar running, with its monitor on this address and port?' : '';
    process.stderr.write(
      `poplarctl: cannot reach the monitor at ${host}:${port} (${(error as Error).message})${hint}\n`,
    );
    return 3;
  }
  const hex = `0x${(['ok', 'badVersion', 'badType', 'badTarget', 'badData', 'authFailed', 'serverError'] as const).indexOf(response.status).toString(16).padStart(2, '0')}`;
  if (response.status !== 'ok') {
    const message = response.status === 'badData' ? action.refusal : STATUS_TEXT[response.status];
    if (values.json === true)
      process.stdout.write(`${JSON.stringify({ ok: false, status: hex, error: message })}\n`);
    process.stderr.write(`poplarctl: ${message} (status ${hex})\n`);
    return 1;
  }
  const out = action.describe(response.data);
  process.stdout.write(`${values.json === true ? JSON.stringify(out.json) : out.text}\n`);
  return 0;
}
