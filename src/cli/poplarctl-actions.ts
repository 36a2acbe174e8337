import { counterValue } from '../monitor/client.js';
import { pairData } from '../monitor/protocol/encode.js';
import type {
  ConfigTarget,
  GetTarget,
  MonitorRequest,
  MonitorResponse,
  Status,
} from '../monitor/protocol/messages.js';
import { readSecret } from './prompt.js';

/** A command line poplarctl cannot act on (exit 2, with a hint to -h). */
export class UsageError extends Error {}

/** Sends one request (the token is added) and resolves to the response. */
export type Send = (request: Omit<MonitorRequest, 'token'>) => Promise<MonitorResponse>;

/** How an action ended: what to print, or why it failed and with which exit status. */
export type Outcome =
  | { readonly ok: true; readonly text: string; readonly json: unknown }
  | { readonly ok: false; readonly error: string; readonly status?: Status; readonly exitCode: number };

/** What one invocation asks of the monitor: one request, or a few (a list in pages, a check first). */
export interface Action {
  run(send: Send): Promise<Outcome>;
}

/** `poplarctl kick USER` when USER has no session (doveadm kick's status for "no users kicked"). */
export const EXIT_NO_SESSIONS = 68;

const STATUS_TEXT: Record<Exclude<Status, 'ok' | 'badData'>, string> = {
  badVersion: 'the server does not speak this protocol version',
  badType: 'the server did not understand the request type',
  badTarget: 'the server does not know this target (is it an older server?)',
  authFailed: 'the server refused the token: check it (POPLAR_TOKEN, --token-file, or the last argument)',
  serverError: 'the server could not make the change; its log says why',
};

/** A response other than OK, in words; `refusal` says what status 0x04 means for this request. */
const failure = (response: MonitorResponse, refusal: string): Outcome => ({
  ok: false,
  error: response.status === 'badData' ? refusal : STATUS_TEXT[response.status as keyof typeof STATUS_TEXT],
  status: response.status,
  exitCode: 1,
});

/** One request; `describe` words a successful answer. */
const single = (
  request: Omit<MonitorRequest, 'token'>,
  refusal: string,
  describe: (data: Buffer) => { text: string; json: unknown },
): Action => ({
  async run(send) {
    const response = await send(request);
    return response.status === 'ok' ? { ok: true, ...describe(response.data) } : failure(response, refusal);
  },
});

const REFUSED = 'the server refused the request';

const counter = (target: GetTarget, label: string): Action =>
  single({ type: 'get', target, data: Buffer.alloc(0) }, REFUSED, (data) => {
    const value = counterValue(data);
    return { text: `${label}: ${value}`, json: { [target]: Number(value) } };
  });

const config = (target: ConfigTarget, data: Buffer, done: string, refusal: string): Action =>
  single({ type: 'config', target, data }, refusal, () => ({ text: done, json: { ok: true, target } }));

interface SnapshotDoc {
  counters: Record<string, number>;
  sessions: {
    id: string;
    user: string | null;
    remoteAddress: string;
    state: string;
    startedAt: string;
    node?: string;
  }[];
  sessionCount: number;
  isTruncated: boolean;
  /** With --cluster: nodes that did not answer in time, left out of the list. */
  nodesMissing?: string[];
}
const SNAPSHOT = { type: 'get', target: 'snapshot', data: Buffer.alloc(0) } as const;
const snapshotOf = (data: Buffer): SnapshotDoc => JSON.parse(data.toString('utf8')) as SnapshotDoc;

const stats = single(SNAPSHOT, REFUSED, (data) => {
  const doc = snapshotOf(data);
  return {
    text: Object.entries(doc.counters)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n'),
    json: doc,
  };
});

const sessions = single(SNAPSHOT, REFUSED, (data) => {
  const doc = snapshotOf(data);
  const rows = doc.sessions.map((s) =>
    [s.id, s.user ?? '-', s.remoteAddress, s.state, s.startedAt, ...(s.node === undefined ? [] : [s.node])]
      .map(String)
      .join('  '),
  );
  const header = `${doc.sessionCount} open session${doc.sessionCount === 1 ? '' : 's'}`;
  const cut = doc.isTruncated ? ` (showing ${doc.sessions.length})` : '';
  const missing =
    doc.nodesMissing === undefined ? '' : ` (no answer from node ${doc.nodesMissing.join(', ')})`;
  return { text: [header + cut + missing, ...rows].join('\n'), json: doc.sessions };
});

/**
 * Ends USER's sessions. The snapshot is read first: with no session of USER nothing is sent and
 * the outcome says so (exit 68, as `doveadm kick`), since CONFIG 0x06 answers OK either way.
 */
const kick = (user: string): Action => ({
  async run(send) {
    const before = await send(SNAPSHOT);
    if (before.status !== 'ok') return failure(before, REFUSED);
    const doc = snapshotOf(before.data);
    const count = doc.sessions.filter((s) => s.user === user).length;
    // A cut list may hide USER's sessions: then ask the server anyway.
    if (count === 0 && !doc.isTruncated)
      return { ok: false, error: `no sessions of ${user}`, exitCode: EXIT_NO_SESSIONS };
    const response = await send({ type: 'config', target: 'endSessions', data: Buffer.from(user) });
    if (response.status !== 'ok') return failure(response, 'invalid user name');
    const what = count === 0 ? 'the sessions' : `${count} session${count === 1 ? '' : 's'}`;
    return { ok: true, text: `ended ${what} of ${user}`, json: { ok: true, user, sessions: count } };
  },
});

/** Every name of a GET 0x21 / 0x22 list, page after page, one per line. */
const names = (target: 'users' | 'admins'): Action => ({
  async run(send) {
    const all: string[] = [];
    let after = Buffer.alloc(0);
    for (;;) {
      const response = await send({ type: 'get', target, data: after });
      if (response.status !== 'ok') return failure(response, `the server cannot list its ${target}`);
      const page = JSON.parse(response.data.toString('utf8')) as { names: string[]; isTruncated: boolean };
      all.push(...page.names);
      const last = page.names.at(-1);
      if (!page.isTruncated || last === undefined) break;
      after = Buffer.from(last);
    }
    return { ok: true, text: all.join('\n'), json: all };
  },
});

const USER_REFUSAL =
  'invalid user name or password (a name is 1 to 64 letters, digits or . _ - + @, not starting with a dot)';
const ADMIN_REFUSAL =
  'the admin exists, or the name or the token is invalid (a token is 16 printable ASCII characters)';

const setUser = (user: string, password: string): Action =>
  config('setUser', pairData(user, password), `user ${user} saved`, USER_REFUSAL);
const addAdmin = (name: string, token: string): Action =>
  config('addAdmin', pairData(name, token), `admin ${name} added`, ADMIN_REFUSAL);
const deleteUser = (user: string): Action =>
  config(
    'deleteUser',
    Buffer.from(user),
    `user ${user} deleted; their sessions were ended, their mail kept`,
    `no such user: ${user}`,
  );
const deleteAdmin = (name: string): Action =>
  config(
    'deleteAdmin',
    Buffer.from(name),
    `admin ${name} deleted`,
    `no such admin, or ${name} is the last admin`,
  );
const maildir = (path: string): Action =>
  config(
    'maildir',
    Buffer.from(path),
    `Maildir root set to ${path}`,
    `${path} is not an existing directory on the server`,
  );

/** CONFIG 0x07: what SIGHUP does; the answer lists what changed and what needs a restart. */
const reload: Action = {
  async run(send) {
    const response = await send({ type: 'config', target: 'reload', data: Buffer.alloc(0) });
    if (response.status === 'serverError')
      return {
        ok: false,
        error: 'the configuration was not reloaded (the old one stays in use): the server log says why',
        status: response.status,
        exitCode: 1,
      };
    if (response.status !== 'ok') return failure(response, 'the server cannot reload');
    const report = JSON.parse(response.data.toString('utf8')) as {
      applied: string[];
      needsRestart: string[];
    };
    const list = (names: string[]): string => (names.length === 0 ? 'nothing' : names.join(', '));
    const restart =
      report.needsRestart.length === 0 ? '' : `\nchanged but needs a restart: ${list(report.needsRestart)}`;
    return {
      ok: true,
      text: `configuration reloaded; applied: ${list(report.applied)}${restart}`,
      json: report,
    };
  },
};

/** The readable commands and the most words each takes after its name. */
export const COMMANDS: Readonly<Record<string, number>> = {
  stats: 0,
  sessions: 0,
  kick: 1,
  users: 2,
  admins: 2,
  maildir: 1,
  'chunk-size': 1,
  reload: 0,
  uidl: 3,
};

/** `poplarctl COMMAND ARGS`: the readable form. */
export function commandAction(words: readonly string[]): Action {
  const [command, ...rest] = words;
  if (command === undefined) throw new UsageError('no command given');
  const maxArgs = COMMANDS[command];
  if (maxArgs === undefined) throw new UsageError(`unknown command ${command}`);
  const second = rest.find((word) => word in COMMANDS);
  if (second !== undefined) throw new UsageError(`one action per call: ${command} and ${second} were given`);
  if (rest.length > maxArgs) {
    // An extra word (a token given as in the original form, say) would otherwise be silently dropped.
    throw new UsageError(
      `too many arguments: ${command} takes the token from POPLAR_TOKEN or --token-file, not as an argument`,
    );
  }
  const arg = (i: number, what: string): string => {
    const value = rest[i];
    if (value === undefined || value === '') throw new UsageError(`${command}: missing ${what}`);
    return value;
  };
  switch (command) {
    case 'stats':
      return stats;
    case 'sessions':
      return sessions;
    case 'kick':
      return kick(arg(0, 'USER'));
    case 'maildir':
      return maildir(arg(0, 'PATH'));
    case 'reload':
      return reload;
    case 'chunk-size': {
      const bytes = arg(0, 'BYTES');
      return config(
        'chunkSize',
        Buffer.from(bytes),
        `transfer chunk size set to ${bytes}`,
        'the chunk size must be from 512 to 1048576',
      );
    }
    default: {
      const isUsers = command === 'users';
      const verb = arg(0, 'list, add or del');
      if (verb === 'list') {
        if (rest.length > 1) throw new UsageError(`${command} list takes no name`);
        return names(isUsers ? 'users' : 'admins');
      }
      const name = arg(1, isUsers ? 'USER' : 'NAME');
      if (verb === 'add') {
        // Asked for once the rest of the command line is known to be good (the token included).
        return {
          async run(send) {
            const secret = await readSecret({ what: isUsers ? 'Password' : 'Token', isConfirmed: true });
            return (isUsers ? setUser(name, secret) : addAdmin(name, secret)).run(send);
          },
        };
      }
      if (verb === 'del') return isUsers ? deleteUser(name) : deleteAdmin(name);
      throw new UsageError(`${command}: expected list, add or del`);
    }
  }
}

function splitPair(value: string, what: string): [string, string] {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) throw new UsageError(`expected ${what}`);
  return [value.slice(0, colon), value.slice(colon + 1)];
}

/** The original client's options, each one action: `-c`, `-C`, `-b` take nothing, the rest a value. */
export const ORIGINAL_OPTIONS = ['c', 'C', 'b', 'u', 'U', 'd', 'D', 'm'] as const;
export type OriginalOption = (typeof ORIGINAL_OPTIONS)[number];

/** The action of one original option and its value. */
export function originalAction(option: OriginalOption, value: string | undefined): Action {
  const text = value ?? '';
  switch (option) {
    case 'c':
      return counter('concurrentConnections', 'concurrent connections');
    case 'C':
      return counter('historicConnections', 'historic connections');
    case 'b':
      return counter('transferredBytes', 'transferred bytes');
    case 'u':
      return setUser(...splitPair(text, 'USER:PASS'));
    case 'U':
      return addAdmin(...splitPair(text, 'NAME:TOKEN'));
    case 'd':
      return deleteUser(text);
    case 'D':
      return deleteAdmin(text);
    case 'm':
      return maildir(text);
  }
}
