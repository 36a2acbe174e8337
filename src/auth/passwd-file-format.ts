import type { StoredPassword } from './passwords/types.js';
import { parseStoredPassword } from './passwords/registry.js';
import { hasControlCharacter } from '../text.js';
import { isValidUserName } from '../user.js';

export interface PasswdFileProblem {
  readonly line: number;
  readonly message: string;
}

export interface ParsedPasswdFile {
  readonly users: ReadonlyMap<string, StoredPassword>;
  readonly problems: readonly PasswdFileProblem[];
}

/**
 * Parses Dovecot's passwd-file form: `user:{SCHEME}data`, optionally followed by more
 * `:`-separated fields (uid, gid, home, ...) that Poplar ignores. Blank lines and lines starting
 * with `#` are skipped. A line that cannot be used (control characters, no `{SCHEME}`, an invalid
 * or duplicate user name...) is reported with its number and skipped: a later line never replaces
 * a user already defined.
 */
export function parsePasswdFile(text: string): ParsedPasswdFile {
  const users = new Map<string, StoredPassword>();
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
      problems.push({ line: number, message: 'invalid user name' });
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
    users.set(name, stored);
  }
  return { users, problems };
}
