import { pairData } from '../monitor/protocol/encode.js';
import type { MonitorResponse } from '../monitor/protocol/messages.js';
import { UsageError, type Action, type Outcome } from './poplarctl-actions.js';

/** `poplarctl app-password ...`: the lines of its help. */
export const APP_PASSWORD_USAGE = `  app-password add USER LABEL     make an app password for USER; its secret is shown this once
  app-password list USER          USER's app passwords: label, created, last use (time, address)
  app-password revoke USER LABEL  revoke USER's app password LABEL (logins with it fail at once)`;

interface Listed {
  user: string;
  appPasswords: { label: string; created: string; lastUsed: { at: string; address: string } | null }[];
}

interface Made {
  user: string;
  label: string;
  secret: string;
  created: string;
}

const STATUS_TEXT: Partial<Record<MonitorResponse['status'], string>> = {
  badTarget: 'the server does not know app passwords (is it an older server?)',
  authFailed: 'the server refused the token: check it (POPLAR_TOKEN, --token-file, or the last argument)',
  serverError: 'the server could not do it; its log says why',
};

const failure = (response: MonitorResponse, refusal: string): Outcome => ({
  ok: false,
  error: response.status === 'badData' ? refusal : (STATUS_TEXT[response.status] ?? 'the server refused'),
  status: response.status,
  exitCode: 1,
});

/** Rows of the list, aligned: label, created, last use. */
function table(doc: Listed): string {
  if (doc.appPasswords.length === 0) return `${doc.user} has no app passwords`;
  const rows = [
    ['LABEL', 'CREATED', 'LAST USE'],
    ...doc.appPasswords.map((p) => [
      p.label,
      p.created,
      p.lastUsed === null ? 'never' : `${p.lastUsed.at} from ${p.lastUsed.address}`,
    ]),
  ];
  const width = Math.max(...rows.map((r) => Array.from(r[0] ?? '').length));
  return rows.map(([label = '', ...rest]) => [label.padEnd(width), ...rest].join('  ')).join('\n');
}

const list = (user: string): Action => ({
  async run(send) {
    const response = await send({ type: 'get', target: 'appPasswords', data: Buffer.from(user) });
    if (response.status !== 'ok') return failure(response, `no such user: ${user}`);
    const doc = JSON.parse(response.data.toString('utf8')) as Listed;
    return { ok: true, text: table(doc), json: doc };
  },
});

const add = (user: string, label: string): Action => ({
  async run(send) {
    const response = await send({ type: 'config', target: 'addAppPassword', data: pairData(user, label) });
    if (response.status !== 'ok')
      return failure(
        response,
        `refused: no such user ${user}, a label taken or invalid (1 to 64 characters), or 20 app passwords already`,
      );
    const made = JSON.parse(response.data.toString('utf8')) as Made;
    return {
      ok: true,
      text: `app password ${made.label} of ${made.user} (shown only now; give it to the mail client):\n${made.secret}`,
      json: made,
    };
  },
});

const revoke = (user: string, label: string): Action => ({
  async run(send) {
    const response = await send({ type: 'config', target: 'revokeAppPassword', data: pairData(user, label) });
    if (response.status !== 'ok') return failure(response, `${user} has no app password labelled ${label}`);
    return {
      ok: true,
      text: `app password ${label} of ${user} revoked`,
      json: { ok: true, user, label, revoked: true },
    };
  },
});

/** `poplarctl app-password VERB USER [LABEL]`. */
export function appPasswordAction(words: readonly string[]): Action {
  const [verb, user, label, ...extra] = words;
  const need = (value: string | undefined, what: string): string => {
    if (value === undefined || value === '')
      throw new UsageError(`app-password ${verb ?? ''}: missing ${what}`);
    return value;
  };
  if (extra.length > 0) throw new UsageError('app-password: too many arguments');
  switch (verb) {
    case 'list':
      if (label !== undefined) throw new UsageError('app-password list takes USER only');
      return list(need(user, 'USER'));
    case 'add':
      return add(need(user, 'USER'), need(label, 'LABEL'));
    case 'revoke':
      return revoke(need(user, 'USER'), need(label, 'LABEL'));
    case undefined:
    default:
      throw new UsageError('app-password: expected add, list or revoke');
  }
}
