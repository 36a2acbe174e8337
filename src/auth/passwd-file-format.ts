import type { StoredPassword } from './passwords/types.js';
import { parseStoredPassword } from './passwords/registry.js';
import { hasControlCharacter } from '../text.js';
import { isValidUserName, prepareUserName } from '../user.js';
import type { UserPolicyOverrides } from '../policy.js';
import { hasPolicy, POLICY_FIELDS, POLICY_KEYS, readPolicy, type PolicyKey } from '../policy-fields.js';

export interface PasswdFileProblem {
  readonly line: number;
  readonly message: string;
}

export interface ParsedPasswdFile {
  readonly users: ReadonlyMap<string, StoredPassword>;
  /** The users' own policy (`poplar_*` extra fields), for the users that have one. */
  readonly policies: ReadonlyMap<string, UserPolicyOverrides>;
  readonly problems: readonly PasswdFileProblem[];
}

/**
 * Parses Dovecot's passwd-file form: `user:{SCHEME}data`, optionally followed by more
 * `:`-separated fields (`uid:gid:gecos:home:shell:extra_fields`). Poplar ignores them but the
 * extra fields (space-separated `key=value`), of which it reads the `poplar_*` ones (the user's
 * own policy, docs/policy.md) and ignores the others (Dovecot's). A `poplar_*` field Poplar does
 * not know or cannot read makes the line a problem like any other: the user cannot log in (a
 * typo in `poplar_app_passwords_only` must not let the main password in). Blank lines and lines starting
 * with `#` are skipped. A line that cannot be used (control characters, no `{SCHEME}`, an invalid
 * or duplicate user name...) is reported with its number and skipped: a later line never replaces
 * a user already defined.
 */
export function parsePasswdFile(text: string): ParsedPasswdFile {
  const users = new Map<string, StoredPassword>();
  const policies = new Map<string, UserPolicyOverrides>();
  const problems: PasswdFileProblem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    const number = i + 1;
    if (line.trim() === '' || line.startsWith('#')) continue;
    // NUL, a CR inside the line (a file with old Mac line ends reads as one long line) or other
    // binary: a damaged or hostile line, not a secret anyone could type into PASS.
    if (hasControlCharacter(line, { isTabAllowed: true })) {
      problems.push({ line: number, message: 'control characters in the line' });
      continue;
    }
    const colon = line.indexOf(':');
    if (colon === -1) {
      problems.push({ line: number, message: 'expected user:{SCHEME}password' });
      continue;
    }
    const name = line.slice(0, colon);
    const rest = line.slice(colon + 1);
    const field = rest.split(':', 1)[0] ?? '';
    if (!isValidUserName(name)) {
      // A name in another spelling (decomposed, fullwidth...) is not read as its prepared form: the
      // file would then hold two spellings of one user, and edits find a line by its exact name.
      const prepared = prepareUserName(name);
      const hint = prepared !== name && isValidUserName(prepared) ? `, write it as ${prepared}` : '';
      problems.push({ line: number, message: `invalid user name${hint}` });
      continue;
    }
    if (users.has(name)) {
      problems.push({ line: number, message: `user ${name} already defined, line ignored` });
      continue;
    }
    const stored = parseStoredPassword(field);
    if (typeof stored === 'string') {
      problems.push({ line: number, message: stored });
      continue;
    }
    const policy = policyOf(rest.split(':').slice(6).join(':'));
    if (!policy.ok) {
      problems.push({ line: number, message: policy.problems.join('; ') });
      continue;
    }
    users.set(name, stored);
    if (hasPolicy(policy.policy)) policies.set(name, policy.policy);
  }
  return { users, policies, problems };
}

const FIELD_KEYS = new Map(POLICY_KEYS.map((key) => [POLICY_FIELDS[key].field, key]));

/**
 * The `poplar_*` fields of the extra fields (Dovecot joins the fields past the shell with `:`
 * again, and so does Poplar). Others, Dovecot's own, are ignored.
 */
function policyOf(extra: string): ReturnType<typeof readPolicy> {
  const values = new Map<PolicyKey, string>();
  const problems: string[] = [];
  for (const pair of extra.split(/[ \t]+/)) {
    if (!pair.toLowerCase().startsWith('poplar_')) continue;
    const equals = pair.indexOf('=');
    const field = equals === -1 ? pair : pair.slice(0, equals);
    const key = FIELD_KEYS.get(field);
    if (key === undefined) problems.push(`unknown field ${field}`);
    else if (equals === -1) problems.push(`${field} needs a value (${field}=...)`);
    else if (values.has(key)) problems.push(`${field} given twice`);
    else values.set(key, pair.slice(equals + 1));
  }
  if (problems.length > 0) return { ok: false, problems };
  return readPolicy((key) => values.get(key));
}
