import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { poplarCommand } from '../../helpers/node-script.js';
import { parseStoredPassword, schemeNames } from '../../../src/auth/passwords/registry.js';

/** Runs `poplar hash-password ARGS` with `input` on stdin; it must exit by itself. */
async function hashPasswordCli(
  args: readonly string[],
  input: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { command, args: argv } = poplarCommand(['hash-password', ...args]);
  const child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(input);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  return { code, stdout, stderr };
}

describe('poplar hash-password', () => {
  for (const scheme of ['SHA512-CRYPT', 'BLF-CRYPT', 'ARGON2ID', 'SCRAM-SHA-256']) {
    test(`--scheme ${scheme} prints a field that verifies, and exits by itself`, async () => {
      const { code, stdout, stderr } = await hashPasswordCli(
        ['--scheme', scheme.toLowerCase()],
        'pässwörd\n',
      );
      assert.equal(stderr, '');
      assert.equal(code, 0);
      assert.ok(stdout.startsWith(`{${scheme}}`), stdout);
      const stored = parseStoredPassword(stdout.trimEnd());
      if (typeof stored === 'string') assert.fail(stored);
      assert.equal(await stored.scheme.verify('pässwörd', stored.data), true);
    });
  }

  test('--user prints a whole line; an alias names its scheme', async () => {
    const { code, stdout } = await hashPasswordCli(['--scheme', 'cleartext', '--user', 'alice'], 'pw\n');
    assert.equal(code, 0);
    assert.equal(stdout, 'alice:{PLAIN}pw\n');
  });

  test('--user prints a UTF-8 name composed; the password is hashed prepared (NFKC)', async () => {
    const { code, stdout } = await hashPasswordCli(
      ['--scheme', 'plain', '--user', 'zoe\u0308'],
      'pa\u0308ss\n',
    );
    assert.equal(code, 0);
    assert.equal(stdout, 'zoë:{PLAIN}päss\n');
  });

  test('a password SASLprep refuses, and an invalid name, are refused', async () => {
    const refused = await hashPasswordCli([], 'pässwörd\u202e\n');
    assert.equal(refused.code, 2);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, /SASLprep \(RFC 4013\) refuses/);
    const badName = await hashPasswordCli(['--user', 'a\u202eb'], 'pw\n');
    assert.equal(badName.code, 2);
    assert.equal(badName.stderr, 'poplar hash-password: invalid user name\n');
  });

  test('an unknown scheme is refused, listing the known ones', async () => {
    const { code, stdout, stderr } = await hashPasswordCli(['--scheme', 'md5-crypt'], 'pw\n');
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.equal(
      stderr,
      `poplar hash-password: unknown scheme MD5-CRYPT; known: ${schemeNames().join(', ')}\n`,
    );
  });
});
