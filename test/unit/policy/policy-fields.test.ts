// The one reader of per-user policy values (src/policy-fields.ts), as the users file, the [policy]
// table and the databases use it: every accepted spelling, every refusal with its setting named.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePasswdFile } from '../../../src/auth/passwd-file-format.js';
import { layerFromToml, resolveConfig } from '../../../src/config/config.js';
import { ConfigError } from '../../../src/errors.js';
import {
  formatPolicyFields,
  isValidMoveFolder,
  parsePolicyValue,
  readPolicy,
  type PolicyKey,
} from '../../../src/policy-fields.js';
import type { UserPolicyOverrides } from '../../../src/policy.js';

const value = (key: PolicyKey, raw: string | number | boolean): unknown => {
  const result = parsePolicyValue(key, raw);
  return result.ok ? result.value : `problem: ${result.problem}`;
};

describe('policy values', () => {
  test('delete: expunge, hide, move:FOLDER, keep-days:N', () => {
    assert.deepEqual(value('delete', 'expunge'), { mode: 'expunge' });
    assert.deepEqual(value('delete', 'hide'), { mode: 'hide' });
    assert.deepEqual(value('delete', 'move:Trash'), { mode: 'move', folder: 'Trash' });
    assert.deepEqual(value('delete', 'move:Archive.2026'), { mode: 'move', folder: 'Archive.2026' });
    assert.deepEqual(value('delete', 'keep-days:30'), { mode: 'keep-days', days: 30 });
    for (const bad of [
      'Expunge',
      'delete',
      'move:',
      'move:.Trash',
      'move:a/b',
      'move:../x',
      'move:a..b',
      'move:poplar-ledger',
      'move:Poplar-x',
      'keep-days:',
      'keep-days:-1',
      'keep-days:1.5',
      'keep-days:36501',
      'x'.repeat(200),
    ]) {
      assert.match(String(value('delete', bad)), /^problem: poplar_delete: /, bad);
    }
    assert.match(String(value('delete', 3)), /^problem: /);
  });

  test('expire: days or NEVER (any case); loginDelay, maxSessions: whole numbers in range', () => {
    assert.equal(value('expire', '0'), 0);
    assert.equal(value('expire', 7), 7);
    assert.equal(value('expire', 'NEVER'), 'never');
    assert.equal(value('expire', 'never'), 'never');
    assert.equal(value('loginDelaySeconds', '900'), 900);
    assert.equal(value('maxSessions', 0), 0);
    for (const [key, bad] of [
      ['expire', '-1'],
      ['expire', '1e3'],
      ['expire', ''],
      ['expire', 1.5],
      ['loginDelaySeconds', '2678401'],
      ['loginDelaySeconds', '5m'],
      ['maxSessions', '65536'],
      ['maxSessions', true],
    ] as const) {
      assert.match(String(value(key, bad)), /^problem: /, `${key} ${String(bad)}`);
    }
  });

  test('downloadPerDay: bytes, with K, M, G, T meaning powers of 1024', () => {
    assert.equal(value('downloadPerDay', '1000'), 1000);
    assert.equal(value('downloadPerDay', '500M'), 500 * 1024 * 1024);
    assert.equal(value('downloadPerDay', '2g'), 2 * 1024 ** 3);
    assert.equal(value('downloadPerDay', 4096), 4096);
    for (const bad of ['1.5M', 'M', '10 M', '10MB', '-5', '2048T']) {
      assert.match(String(value('downloadPerDay', bad)), /^problem: poplar_download_per_day/, bad);
    }
  });

  test('appPasswordsOnly: yes or no, or a boolean; nothing else', () => {
    assert.equal(value('appPasswordsOnly', 'yes'), true);
    assert.equal(value('appPasswordsOnly', 'no'), false);
    assert.equal(value('appPasswordsOnly', true), true);
    for (const bad of ['Yes', 'true', '1', '', 'y']) {
      assert.match(String(value('appPasswordsOnly', bad)), /^problem: /, bad);
    }
  });

  test('move folders: Maildir++ names only, never Poplar’s own', () => {
    assert.ok(isValidMoveFolder('Trash'));
    assert.ok(!isValidMoveFolder('poplar-uidl'));
    assert.ok(!isValidMoveFolder('Trash.'));
    assert.ok(!isValidMoveFolder('My Trash'));
  });

  test('readPolicy gathers every problem, each naming its setting; formatPolicyFields reads back', () => {
    const reading = readPolicy((key) => ({ expire: 'soon', maxSessions: 'many' })[key as string]);
    assert.deepEqual(reading, {
      ok: false,
      problems: [
        'poplar_expire: expected a number of days or NEVER',
        'poplar_max_sessions: expected a number of sessions',
      ],
    });
    const policy: UserPolicyOverrides = {
      delete: { mode: 'keep-days', days: 3 },
      expire: 'never',
      loginDelaySeconds: 60,
      maxSessions: 1,
      downloadPerDay: 10,
      appPasswordsOnly: true,
    };
    const fields = formatPolicyFields(policy);
    assert.equal(
      fields,
      'poplar_delete=keep-days:3 poplar_expire=never poplar_login_delay=60 poplar_max_sessions=1 poplar_download_per_day=10 poplar_app_passwords_only=yes',
    );
    assert.deepEqual(parsePasswdFile(`u:{PLAIN}x::::::${fields}\n`).policies.get('u'), policy);
  });
});

describe('the users file’s poplar_* extra fields', () => {
  test('read among Dovecot’s own, which are ignored', () => {
    const parsed = parsePasswdFile(
      [
        'alice:{PLAIN}a:1000:1000::/home/alice::userdb_mail=maildir:~/Maildir poplar_delete=move:Trash nopassword',
        'bob:{PLAIN}b',
        'carol:{PLAIN}c:::::: poplar_expire=0  poplar_login_delay=300\tpoplar_download_per_day=1M',
      ].join('\n'),
    );
    assert.deepEqual(parsed.problems, []);
    assert.deepEqual([...parsed.users.keys()], ['alice', 'bob', 'carol']);
    assert.deepEqual(Object.fromEntries(parsed.policies), {
      alice: { delete: { mode: 'move', folder: 'Trash' } },
      carol: { expire: 0, loginDelaySeconds: 300, downloadPerDay: 1024 * 1024 },
    });
  });

  test('a bad, unknown, valueless or repeated poplar_* field is a problem on its line, and the user cannot log in', () => {
    const parsed = parsePasswdFile(
      [
        'ok:{PLAIN}x:::::: poplar_max_sessions=1',
        'typo:{PLAIN}x:::::: poplar_app_passwords_only=ye',
        '# a comment',
        'unknown:{PLAIN}x:::::: poplar_quota=5',
        'valueless:{PLAIN}x:::::: poplar_expire',
        'twice:{PLAIN}x:::::: poplar_expire=1 poplar_expire=2',
      ].join('\n'),
    );
    assert.deepEqual([...parsed.users.keys()], ['ok']);
    assert.deepEqual(parsed.problems, [
      { line: 2, message: 'poplar_app_passwords_only: expected yes or no' },
      { line: 4, message: 'unknown field poplar_quota' },
      { line: 5, message: 'poplar_expire needs a value (poplar_expire=...)' },
      { line: 6, message: 'poplar_expire given twice' },
    ]);
  });
});

describe('the [policy] table', () => {
  const policyOf = (table: Record<string, unknown>) =>
    resolveConfig(layerFromToml({ policy: table }, 'poplar.toml')).policy;

  test('takes TOML’s own types and the users file’s spellings', () => {
    assert.deepEqual(policyOf({}), {});
    assert.deepEqual(
      policyOf({
        delete: 'hide',
        expire: 0,
        loginDelay: 600,
        maxSessions: 1,
        downloadPerDay: '1G',
        appPasswordsOnly: true,
      }),
      {
        delete: { mode: 'hide' },
        expire: 0,
        loginDelaySeconds: 600,
        maxSessions: 1,
        downloadPerDay: 1024 ** 3,
        appPasswordsOnly: true,
      },
    );
    assert.deepEqual(policyOf({ expire: 'never', downloadPerDay: 5000 }), {
      expire: 'never',
      downloadPerDay: 5000,
    });
    assert.deepEqual(resolveConfig().policy, {});
  });

  test('refuses unknown keys (with a hint), bad values and a non-table', () => {
    assert.throws(
      () => policyOf({ loginDelaySeconds: 5 }),
      (e: unknown) =>
        e instanceof ConfigError && /unknown policy setting "loginDelaySeconds"/.test(e.message),
    );
    assert.throws(() => policyOf({ expire: -1 }), /policy\.expire: expected a number of days or NEVER/);
    assert.throws(
      () => policyOf({ appPasswordsOnly: 'maybe' }),
      /policy\.appPasswordsOnly: expected yes or no/,
    );
    assert.throws(() => policyOf({ delete: ['hide'] }), /policy\.delete/);
    assert.throws(
      () => resolveConfig(layerFromToml({ policy: 3 }, 'poplar.toml')),
      /\[policy\] must be a table/,
    );
  });
});
