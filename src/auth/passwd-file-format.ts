import { parseStoredPassword, type StoredPassword } from './passwords.js';
import { isValidUserName } from './user-name.js';

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
 * with `#` are skipped. A line that cannot be used is reported with its number and skipped.
 */
export function parsePasswdFile(text: string): ParsedPasswdFile {
  const users = new Map<string, StoredPassword>();
  const problems: PasswdFileProblem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    const number = i + 1;
    if (line.trim() === '' || line.startsWith('#')) continue;
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
