// The app-password store: what add, list, revoke and a login's last use write, the bounds and
// labels it refuses, and its files read as hostile input (damaged: logged once, read as none).
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import {
  APP_PASSWORDS_FILE,
  APP_PASSWORDS_USED_FILE,
  MAX_APP_PASSWORDS,
  MAX_APP_PASSWORDS_FILE_BYTES,
} from '../../src/auth/app-passwords/format.js';
import { normalizeSecret } from '../../src/auth/app-passwords/secret.js';
import { AppPasswordError, AppPasswordStore } from '../../src/auth/app-passwords/store.js';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { tempDir } from '../helpers/temp-dir.js';

const NOW = new Date('2026-12-07T10:00:00.000Z');

async function storeIn(t: TestContext) {
  const root = await tempDir(t);
  const logger = recordingLogger();
  let now = NOW;
  const store = new AppPasswordStore({ root: () => root, logger, now: () => now });
  return {
    root,
    logger,
    store,
    file: join(root, 'alice', APP_PASSWORDS_FILE),
    used: join(root, 'alice', APP_PASSWORDS_USED_FILE),
    setNow(date: Date) {
      now = date;
    },
  };
}

describe('add, list, revoke', () => {
  test('add makes a 16-letter secret in four groups, stores only its salted hash, mode 0600', async (t) => {
    const { store, file } = await storeIn(t);
    const made = await store.add('alice', 'phone');
    assert.match(made.secret, /^[a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4}$/);
    assert.equal(made.created, NOW.toISOString());
    const text = await readFile(file, 'utf8');
    assert.ok(
      !text.includes(made.secret) && !text.includes(normalizeSecret(made.secret)),
      'no secret in clear',
    );
    assert.match(text, /"hash": "\{SSHA256\}[A-Za-z0-9+/=]+"/);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await store.list('alice'), [
      { label: 'phone', created: NOW.toISOString(), lastUsed: undefined },
    ]);
    const [entry] = await store.read('alice');
    assert.ok(await entry?.stored.scheme.verify(normalizeSecret(made.secret), entry.stored.data));
  });

  test('two secrets differ; a label is unique per user, any user may reuse it', async (t) => {
    const { store } = await storeIn(t);
    const a = await store.add('alice', 'phone');
    const b = await store.add('bob', 'phone');
    assert.notEqual(a.secret, b.secret);
    await assert.rejects(store.add('alice', 'phone'), AppPasswordError);
  });

  test(`at most ${MAX_APP_PASSWORDS} per user`, async (t) => {
    const { store } = await storeIn(t);
    for (let i = 0; i < MAX_APP_PASSWORDS; i++) await store.add('alice', `device ${i}`);
    await assert.rejects(store.add('alice', 'one more'), /20 app passwords, the most allowed/);
    assert.equal((await store.list('alice')).length, MAX_APP_PASSWORDS);
  });

  test('labels: 1 to 64 printable characters, not padded; user names as everywhere', async (t) => {
    const { store } = await storeIn(t);
    for (const label of ['', 'x'.repeat(65), 'a\tb', 'a\nb', 'del\u007f', 'c1\u0085', ' lead', 'trail ']) {
      await assert.rejects(store.add('alice', label), AppPasswordError, JSON.stringify(label));
    }
    await store.add('alice', 'é'.repeat(64));
    await store.add('alice', 'Thunderbird on the laptop');
    await assert.rejects(store.add('../etc', 'x'), /invalid user name/);
    assert.deepEqual(await store.read('../etc'), []);
  });

  test('revoke removes one label; revokeAll removes both files', async (t) => {
    const { store, file, used } = await storeIn(t);
    await store.add('alice', 'phone');
    const laptop = await store.add('alice', 'laptop');
    const [, entry] = await store.read('alice');
    assert.ok(entry !== undefined);
    await store.recordUse('alice', entry.id, '192.0.2.7', [entry.id]);
    assert.equal(await store.revoke('alice', 'phone'), true);
    assert.equal(await store.revoke('alice', 'phone'), false);
    assert.deepEqual(
      (await store.list('alice')).map((p) => p.label),
      ['laptop'],
    );
    assert.ok(laptop.secret.length > 0);
    assert.equal(await store.revokeAll('alice'), 1);
    await assert.rejects(stat(file), { code: 'ENOENT' });
    await assert.rejects(stat(used), { code: 'ENOENT' });
    assert.equal(await store.revokeAll('alice'), 0);
  });

  test('changes of one user made at once in this process all land', async (t) => {
    const { store } = await storeIn(t);
    await Promise.all(Array.from({ length: 8 }, (_, i) => store.add('alice', `d${i}`)));
    assert.equal((await store.list('alice')).length, 8);
  });
});

describe('last use', () => {
  test('a login records its time and address; an id no longer in the file is dropped', async (t) => {
    const env = await storeIn(t);
    const { store, used } = env;
    const setNow = (date: Date) => {
      env.setNow(date);
    };
    await store.add('alice', 'phone');
    const [entry] = await store.read('alice');
    assert.ok(entry !== undefined);
    setNow(new Date('2026-12-07T11:00:00.000Z'));
    await store.recordUse('alice', entry.id, '2001:db8::1', [entry.id]);
    assert.deepEqual((await store.list('alice'))[0]?.lastUsed, {
      at: '2026-12-07T11:00:00.000Z',
      address: '2001:db8::1',
    });
    assert.equal((await stat(used)).mode & 0o777, 0o600);
    await store.recordUse('alice', 'ffffffffffffffff', '192.0.2.1', ['ffffffffffffffff']);
    assert.ok(!(await readFile(used, 'utf8')).includes(entry.id), 'pruned');
  });

  test('a use recorded after a revoke (a login that read the file before it) does not bring it back', async (t) => {
    const { store } = await storeIn(t);
    await store.add('alice', 'phone');
    const [entry] = await store.read('alice');
    assert.ok(entry !== undefined);
    await store.revoke('alice', 'phone');
    await store.recordUse('alice', entry.id, '192.0.2.7', [entry.id]);
    assert.deepEqual(await store.read('alice'), []);
    assert.deepEqual(await store.list('alice'), []);
  });

  test('a label revoked and added again does not inherit the old last use', async (t) => {
    const { store } = await storeIn(t);
    await store.add('alice', 'phone');
    const [old] = await store.read('alice');
    assert.ok(old !== undefined);
    await store.recordUse('alice', old.id, '192.0.2.7', [old.id]);
    await store.revoke('alice', 'phone');
    await store.add('alice', 'phone');
    assert.equal((await store.list('alice'))[0]?.lastUsed, undefined);
  });
});

describe('hostile files: logged once, read as no app passwords', () => {
  const valid = async (extra: Record<string, unknown> = {}) => ({
    id: '0123456789abcdef',
    label: 'phone',
    hash: await hashPassword('abcdefghijklmnop', 'SSHA256'),
    created: NOW.toISOString(),
    ...extra,
  });
  const doc = (passwords: unknown[]) => JSON.stringify({ version: 1, passwords });
  const cases: [string, () => Promise<string | Buffer>][] = [
    ['not JSON', () => Promise.resolve('{"version":1,')],
    ['not UTF-8', () => Promise.resolve(Buffer.from([0x7b, 0xff, 0x7d]))],
    ['another version', async () => JSON.stringify({ version: 2, passwords: [await valid()] })],
    ['too big', () => Promise.resolve(' '.repeat(MAX_APP_PASSWORDS_FILE_BYTES + 1))],
    ['too many', () => Promise.resolve(doc(Array.from({ length: MAX_APP_PASSWORDS + 1 }, () => ({}))))],
    ['a {PLAIN} hash', async () => doc([await valid({ hash: '{PLAIN}abcdefghijklmnop' })])],
    ['a slow scheme', async () => doc([await valid({ hash: await hashPassword('x', 'PBKDF2') })])],
    ['a malformed hash', async () => doc([await valid({ hash: '{SSHA256}!!' })])],
    ['a bad label', async () => doc([await valid({ label: 'a\u0000b' })])],
    ['a bad id', async () => doc([await valid({ id: '../x' })])],
    ['a bad time', async () => doc([await valid({ created: 'yesterday' })])],
    ['duplicate labels', async () => doc([await valid(), await valid({ id: 'fedcba9876543210' })])],
    ['an entry not an object', () => Promise.resolve(doc(['x']))],
  ];
  for (const [name, content] of cases) {
    test(name, async (t) => {
      const { store, file, logger } = await storeIn(t);
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, await content());
      assert.deepEqual(await store.read('alice'), []);
      assert.deepEqual(await store.list('alice'), []);
      const warnings = logger.lines.filter((l) => l.includes('damaged app passwords file ignored'));
      assert.equal(warnings.length, 1, 'logged once');
    });
  }

  test('the same valid file is read', async (t) => {
    const { store, file } = await storeIn(t);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, doc([await valid()]));
    assert.equal((await store.read('alice')).length, 1);
  });

  test('a symbolic link, or a folder, in place of the file', async (t) => {
    const { store, file, root, logger } = await storeIn(t);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(join(root, 'elsewhere'), doc([await valid()]));
    await symlink(join(root, 'elsewhere'), file);
    assert.deepEqual(await store.read('alice'), []);
    await mkdir(join(root, 'bob', APP_PASSWORDS_FILE), { recursive: true });
    assert.deepEqual(await store.read('bob'), []);
    assert.equal(logger.lines.filter((l) => l.includes('damaged')).length, 2);
  });

  test('add over a damaged file replaces it', async (t) => {
    const { store, file } = await storeIn(t);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, 'garbage');
    await store.add('alice', 'phone');
    assert.equal((await store.read('alice')).length, 1);
  });

  test('a damaged last-use file: no last use, and the next login rewrites it', async (t) => {
    const { store, used } = await storeIn(t);
    await store.add('alice', 'phone');
    const [entry] = await store.read('alice');
    assert.ok(entry !== undefined);
    await writeFile(used, JSON.stringify({ version: 1, uses: { [entry.id]: { at: 'x', address: '1' } } }));
    assert.equal((await store.list('alice'))[0]?.lastUsed, undefined);
    await store.recordUse('alice', entry.id, '192.0.2.9', [entry.id]);
    assert.equal((await store.list('alice'))[0]?.lastUsed?.address, '192.0.2.9');
  });
});
