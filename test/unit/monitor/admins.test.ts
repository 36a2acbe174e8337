import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { findScheme, hashPassword, parseStoredPassword } from '../../../src/auth/passwords/registry.js';
import { AdminStore, TOKEN_SCHEME } from '../../../src/monitor/admins.js';
import { tempDir } from '../../helpers/temp-dir.js';

const ADMINS = [
  ['first', 'first-admin-tok1'],
  ['second', 'second-admin-tk2'],
  ['third', 'third-admin-tok3'],
  ['last', 'last-admin-token'],
] as const;

test('a token is checked against every admin, with no early exit: a match first, last or nowhere costs the same verifications', async (t) => {
  const fields = await Promise.all(ADMINS.map(([, token]) => hashPassword(token, TOKEN_SCHEME)));
  const path = join(await tempDir(t), 'admins');
  await writeFile(path, ADMINS.map(([name], i) => `${name}:${fields[i] ?? ''}\n`).join(''));
  const admins = new AdminStore(path);
  await admins.reload();
  t.after(() => {
    admins.close();
  });
  assert.equal(admins.count, ADMINS.length);
  const everyAdmin = fields.map((field) => {
    const stored = parseStoredPassword(field);
    assert.ok(typeof stored !== 'string');
    return stored.data;
  });

  const scheme = findScheme(TOKEN_SCHEME);
  assert.ok(scheme !== undefined);
  const verify = t.mock.method(scheme, 'verify').mock;
  for (const [token, expected] of [
    ['first-admin-tok1', 'first'],
    ['last-admin-token', 'last'],
    ['nobody-s-token-0', undefined],
  ] as const) {
    verify.resetCalls();
    assert.equal(await admins.verify(token), expected, token);
    assert.deepEqual(
      verify.calls.map((call) => call.arguments),
      everyAdmin.map((data) => [token, data]),
      `${token}: every admin's hash, in order`,
    );
  }
});
