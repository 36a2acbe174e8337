import type { LedgerState } from '../mailstore/ledger.js';
import type { UserInfo } from '../monitor/user-info.js';
import { POLICY_FIELDS, POLICY_KEYS, formatPolicyValue } from '../policy-fields.js';
import { UsageError, type Action } from './poplarctl-actions.js';

/**
 * `poplarctl user info NAME`: GET 0x23 (the user's effective policy, whether the backend knows them,
 * and the ledger: last logins, the day's downloads), printed readably, or as the server's JSON with
 * `--json`.
 */
export function userAction(rest: readonly string[]): Action {
  const [verb, name] = rest;
  if (verb !== 'info') throw new UsageError('user: expected info');
  if (name === undefined || name === '') throw new UsageError('user info: missing USER');
  if (rest.length > 2)
    throw new UsageError(
      'too many arguments: user info takes one USER (the token from POPLAR_TOKEN or --token-file)',
    );
  return {
    async run(send) {
      const response = await send({ type: 'get', target: 'userInfo', data: Buffer.from(name, 'utf8') });
      if (response.status !== 'ok') {
        const error =
          response.status === 'badData'
            ? `invalid user name: ${name}`
            : response.status === 'badTarget'
              ? 'the server does not know this target (is it an older server?)'
              : `the server refused the request (status ${response.status})`;
        return { ok: false, error, status: response.status, exitCode: 1 };
      }
      const info = JSON.parse(response.data.toString('utf8')) as UserInfo;
      return { ok: true, text: describeUserInfo(info), json: info };
    },
  };
}

const time = (ms: number | undefined): string =>
  ms === undefined
    ? '-'
    : new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');

/** The answer as lines: the policy (own values marked), the day's downloads, then one line per session, newest first. */
export function describeUserInfo(info: UserInfo): string {
  const exists =
    info.exists === null ? 'unknown (the user backend did not answer)' : info.exists ? 'yes' : 'no';
  const lines = [`user ${info.user}`, `exists: ${exists}`, 'policy:'];
  for (const key of POLICY_KEYS) {
    const value = info.policy[key];
    const shown = value === undefined ? 'no limit' : formatPolicyValue(key, value as never);
    const mark = info.own[key] === undefined ? '' : '  (own)';
    lines.push(`  ${POLICY_FIELDS[key].toml.padEnd(17)} ${shown}${mark}`);
  }
  lines.push(...ledgerLines(info.ledger, info.policy.downloadPerDay));
  return lines.join('\n');
}

function ledgerLines(ledger: LedgerState, limit: number | undefined): string[] {
  const today = new Date().toISOString().slice(0, 10);
  const bytes = ledger.day === today ? ledger.dayBytes : 0;
  const lines = [
    `last login: ${time(ledger.lastStart)}`,
    `downloaded today (UTC ${today}): ${bytes} octets${limit === undefined ? '' : ` of ${limit}`}`,
  ];
  if (ledger.sessions.length === 0) return [...lines, 'sessions: none recorded'];
  lines.push(`last ${ledger.sessions.length} sessions (newest first):`);
  for (const s of [...ledger.sessions].reverse()) {
    const how = `${s.method}${s.tls ? ' TLS' : ''}${s.appPassword === undefined ? '' : ` app password "${s.appPassword}"`}`;
    const end = s.end === undefined ? 'not ended' : `${Math.round((s.end - s.start) / 1000)} s`;
    lines.push(
      `  ${time(s.start)}  ${s.address}  ${how}  ${end}  sent ${s.bytesSent} octets, ` +
        `${s.retrieved} retrieved (${s.downloaded} octets), ${s.deleted} deleted`,
    );
  }
  return lines;
}
