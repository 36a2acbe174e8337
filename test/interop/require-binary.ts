import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

/** Whether this is a CI run (`CI=true`, which `.ci/run` sets): there nothing may be skipped for a missing tool. */
export const onCI = (): boolean => process.env['CI'] === 'true';

/** The Debian package of each program the tests run; `.ci/run` installs all of them. */
const DEBIAN_PACKAGES: Readonly<Record<string, string>> = {
  curl: 'curl',
  doveadm: 'dovecot-core',
  'fail2ban-regex': 'fail2ban',
  fetchmail: 'fetchmail',
  mpop: 'mpop',
  openssl: 'openssl',
  python3: 'python3',
  script: 'bsdutils',
  'systemd-analyze': 'systemd',
};

/** The command that installs program `name` on Debian, e.g. `apt-get install dovecot-core` for doveadm. */
export function installCommand(name: string): string {
  return `apt-get install ${DEBIAN_PACKAGES[name] ?? name}`;
}

/**
 * For a test whose program `name` is missing: skips the test with the install command, or in CI
 * (where `.ci/run` installs every program) throws, which fails it.
 */
export function skipForMissing(t: TestContext, name: string): void {
  const message = `${name} is not installed (${installCommand(name)})`;
  if (onCI()) throw new Error(`${message}; .ci/run must install it`);
  t.skip(message);
}

/** Where `name` is on PATH, or undefined. */
export async function findBinary(name: string): Promise<string | undefined> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The path of a real client the test needs, found on PATH. When it is missing the test is skipped
 * with the command that installs it, except in CI (`CI=true`), where it fails.
 */
export async function requireBinary(t: TestContext, name: string): Promise<string | undefined> {
  const path = await findBinary(name);
  if (path === undefined) skipForMissing(t, name);
  return path;
}
