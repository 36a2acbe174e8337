import type { DeletePolicy, UserPolicy, UserPolicyOverrides } from './policy.js';

/**
 * The one reading of per-user policy values (issue 15), whatever holds them: a users-file extra
 * field (`poplar_delete=hide`), the `[policy]` TOML table (`delete = "hide"`), a PostgreSQL column
 * (`poplar_delete`) or an LDAP attribute (`poplarDelete`). Each value is read the same way; a value
 * that cannot be read is a problem, never a silent default (see docs/policy.md).
 */

export type PolicyKey = keyof UserPolicy;

/** Each policy setting's name in every place that can hold it. */
export interface PolicyFieldNames {
  /** Users-file extra field and PostgreSQL column. */
  readonly field: string;
  /** LDAP attribute (LDAP attribute names cannot hold `_`). */
  readonly ldap: string;
  /** Key of the `[policy]` TOML table. */
  readonly toml: string;
}

export const POLICY_FIELDS: Readonly<Record<PolicyKey, PolicyFieldNames>> = {
  delete: { field: 'poplar_delete', ldap: 'poplarDelete', toml: 'delete' },
  expire: { field: 'poplar_expire', ldap: 'poplarExpire', toml: 'expire' },
  loginDelaySeconds: { field: 'poplar_login_delay', ldap: 'poplarLoginDelay', toml: 'loginDelay' },
  maxSessions: { field: 'poplar_max_sessions', ldap: 'poplarMaxSessions', toml: 'maxSessions' },
  downloadPerDay: {
    field: 'poplar_download_per_day',
    ldap: 'poplarDownloadPerDay',
    toml: 'downloadPerDay',
  },
  appPasswordsOnly: {
    field: 'poplar_app_passwords_only',
    ldap: 'poplarAppPasswordsOnly',
    toml: 'appPasswordsOnly',
  },
};

export const POLICY_KEYS = Object.keys(POLICY_FIELDS) as readonly PolicyKey[];

/** Longest value read (a folder name is the longest thing a value holds). */
export const MAX_POLICY_VALUE_BYTES = 128;
/** Most days `expire` and `keep-days:N` take (100 years). */
export const MAX_POLICY_DAYS = 36_500;
/** Most seconds `loginDelay` takes (31 days). */
export const MAX_LOGIN_DELAY_SECONDS = 31 * 86_400;
/** Most sessions `maxSessions` takes. */
export const MAX_POLICY_SESSIONS = 65_535;
/** Most octets `downloadPerDay` takes (1 PiB). */
export const MAX_DOWNLOAD_PER_DAY = 2 ** 50;

const SUFFIXES: Readonly<Record<string, number>> = {
  '': 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/**
 * A Maildir++ folder `move:` may name: 1 to 100 of letters, digits and `_ - .`, not
 * starting or ending with a dot, no `..` (the folder is `.<name>` in the maildir), and not starting
 * with `poplar-` (Poplar's own files live there).
 */
export function isValidMoveFolder(name: string): boolean {
  return (
    /^[A-Za-z0-9_-](?:[A-Za-z0-9_.-]{0,98}[A-Za-z0-9_-])?$/.test(name) &&
    !name.includes('..') &&
    !name.toLowerCase().startsWith('poplar-')
  );
}

export type PolicyValueResult<K extends PolicyKey> =
  { readonly ok: true; readonly value: UserPolicy[K] } | { readonly ok: false; readonly problem: string };

/**
 * Reads one value as text (a file field, an LDAP attribute), a number or a boolean (TOML,
 * PostgreSQL columns). The problem names the setting with `name` (`poplar_delete`, `delete`).
 */
export function parsePolicyValue<K extends PolicyKey>(
  key: K,
  raw: string | number | bigint | boolean,
  name: string = POLICY_FIELDS[key].field,
): PolicyValueResult<K> {
  const result = parseAny(key, typeof raw === 'string' ? raw.trim() : raw);
  if (typeof result === 'string') return { ok: false, problem: `${name}: ${result}` };
  return { ok: true, value: result.value as UserPolicy[K] };
}

function parseAny(key: PolicyKey, raw: string | number | bigint | boolean): { value: unknown } | string {
  if (typeof raw === 'string' && Buffer.byteLength(raw) > MAX_POLICY_VALUE_BYTES)
    return `longer than ${MAX_POLICY_VALUE_BYTES} bytes`;
  switch (key) {
    case 'delete':
      return typeof raw === 'string'
        ? parseDelete(raw)
        : 'expected expunge, hide, move:FOLDER or keep-days:N';
    case 'expire':
      if (typeof raw === 'string' && raw.toLowerCase() === 'never') return { value: 'never' };
      return wholeNumber(raw, MAX_POLICY_DAYS, 'a number of days or NEVER');
    case 'loginDelaySeconds':
      return wholeNumber(raw, MAX_LOGIN_DELAY_SECONDS, 'a number of seconds');
    case 'maxSessions':
      return wholeNumber(raw, MAX_POLICY_SESSIONS, 'a number of sessions');
    case 'downloadPerDay':
      return octets(raw);
    case 'appPasswordsOnly':
      if (raw === true || raw === 'yes') return { value: true };
      if (raw === false || raw === 'no') return { value: false };
      return 'expected yes or no';
  }
}

function parseDelete(text: string): { value: DeletePolicy } | string {
  if (text === 'expunge' || text === 'hide') return { value: { mode: text } };
  if (text.startsWith('move:')) {
    const folder = text.slice('move:'.length);
    return isValidMoveFolder(folder)
      ? { value: { mode: 'move', folder } }
      : 'move:FOLDER needs a Maildir++ folder name (letters, digits and _ - .; not poplar-...)';
  }
  if (text.startsWith('keep-days:')) {
    const days = wholeNumber(
      text.slice('keep-days:'.length),
      MAX_POLICY_DAYS,
      'keep-days:N, N a number of days',
    );
    return typeof days === 'string' ? days : { value: { mode: 'keep-days', days: days.value } };
  }
  return 'expected expunge, hide, move:FOLDER or keep-days:N';
}

function wholeNumber(
  raw: string | number | bigint | boolean,
  max: number,
  what: string,
): { value: number } | string {
  const n =
    typeof raw === 'number'
      ? raw
      : typeof raw === 'bigint'
        ? Number(raw)
        : typeof raw === 'string' && /^[0-9]{1,16}$/.test(raw)
          ? Number(raw)
          : NaN;
  if (!Number.isSafeInteger(n) || n < 0) return `expected ${what}`;
  if (n > max) return `at most ${max}`;
  return { value: n };
}

function octets(raw: string | number | bigint | boolean): { value: number } | string {
  const what = 'a number of bytes (suffix K, M, G or T: times 1024, 1024², ...)';
  if (typeof raw !== 'string') return wholeNumber(raw, MAX_DOWNLOAD_PER_DAY, what);
  const m = /^([0-9]{1,16})([KMGT]?)$/i.exec(raw);
  if (m === null) return `expected ${what}`;
  const n = Number(m[1]) * (SUFFIXES[(m[2] ?? '').toUpperCase()] ?? 1);
  return n > MAX_DOWNLOAD_PER_DAY ? `at most ${MAX_DOWNLOAD_PER_DAY}` : { value: n };
}

/** What a set of values read to: the user's own policy, or the problems (each naming its setting). */
export type PolicyReading =
  | { readonly ok: true; readonly policy: UserPolicyOverrides }
  | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Reads the values `valueOf` gives for each setting (undefined or null: not set). `nameOf` names
 * a setting in problems (default: its users-file field name).
 */
export function readPolicy(
  valueOf: (key: PolicyKey) => string | number | bigint | boolean | null | undefined,
  nameOf: (key: PolicyKey) => string = (key) => POLICY_FIELDS[key].field,
): PolicyReading {
  const policy: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const key of POLICY_KEYS) {
    const raw = valueOf(key);
    if (raw === undefined || raw === null) continue;
    const result = parsePolicyValue(key, raw, nameOf(key));
    if (result.ok) policy[key] = result.value;
    else problems.push(result.problem);
  }
  // Each value was read for its own key: the record is a UserPolicyOverrides.
  return problems.length > 0 ? { ok: false, problems } : { ok: true, policy };
}

/** A policy value as the users file writes it (`move:Trash`, `never`, `yes`). */
export function formatPolicyValue<K extends PolicyKey>(key: K, value: UserPolicy[K]): string {
  if (value === undefined) return '';
  if (key === 'delete') {
    const d = value as DeletePolicy;
    return d.mode === 'move' ? `move:${d.folder}` : d.mode === 'keep-days' ? `keep-days:${d.days}` : d.mode;
  }
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return typeof value === 'number' || typeof value === 'string' ? String(value) : '';
}

/** A user's own policy as users-file extra fields (`poplar_delete=hide poplar_expire=0`). */
export function formatPolicyFields(policy: UserPolicyOverrides): string {
  return POLICY_KEYS.filter((key) => policy[key] !== undefined)
    .map((key) => `${POLICY_FIELDS[key].field}=${formatPolicyValue(key, policy[key] as never)}`)
    .join(' ');
}

/** Whether the policy sets anything (a user with an empty one is returned without `policy`). */
export const hasPolicy = (policy: UserPolicyOverrides | undefined): policy is UserPolicyOverrides =>
  policy !== undefined && POLICY_KEYS.some((key) => policy[key] !== undefined);
