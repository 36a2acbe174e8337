// A user's own policy from PostgreSQL columns and LDAP attributes: read as the users file's extra
// fields are (NULL or absent: not set), and a value that cannot be read refuses the user, logged
// with the column or attribute it came from (fail-closed: a damaged poplar_app_passwords_only must
// not let the main password in).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DatabaseAuthenticator } from '../../src/auth/userdb/authenticator.js';
import { LdapUsers } from '../../src/auth/userdb/ldap.js';
import { PostgresUsers } from '../../src/auth/userdb/postgres.js';
import { perFile } from '../helpers/engines/engine-process.js';
import { startPostgres } from '../helpers/engines/postgres.js';
import { SERVICE_DN, SERVICE_PASSWORD, startSlapd } from '../helpers/engines/slapd.js';
import { recordingLogger } from '../helpers/recording-logger.js';

const postgres = perFile(startPostgres);
const slapd = perFile((cleanup) => startSlapd(cleanup));
const request = (username: string, password: string) => ({
  mechanism: 'USER' as const,
  username,
  password,
  remoteAddress: '127.0.0.1',
  isTls: true,
  signal: new AbortController().signal,
});
const signal = new AbortController().signal;

test('PostgreSQL: policy columns of any type, NULL unset, a bad value refuses the user', async (t) => {
  const db = await postgres();
  await db.createMailboxTable('pol.mailbox');
  await db.addPolicyColumns('pol.mailbox');
  await db.addMailbox('alice', '{PLAIN}pw', {
    table: 'pol.mailbox',
    policy: {
      poplar_delete: 'hide',
      poplar_download_per_day: 5_000_000_000,
      poplar_app_passwords_only: true,
    },
  });
  await db.addMailbox('bob', '{PLAIN}pw', { table: 'pol.mailbox' });
  await db.addMailbox('eve', '{PLAIN}pw', { table: 'pol.mailbox', policy: { poplar_expire: 'soon' } });
  await db.addMailbox('mal', '{PLAIN}pw', { table: 'pol.mailbox', policy: { poplar_max_sessions: -1 } });
  const logger = recordingLogger();
  const users = new DatabaseAuthenticator(
    new PostgresUsers({
      url: db.url({ withPassword: true }),
      logger,
      passwordQuery:
        'SELECT password, poplar_delete, poplar_expire, poplar_max_sessions, poplar_download_per_day, ' +
        'poplar_app_passwords_only FROM pol.mailbox WHERE username = $1',
    }),
    { cacheTtlMs: 60_000, logger },
  );
  t.after(() => users.close());
  const alice = {
    name: 'alice',
    policy: { delete: { mode: 'hide' }, downloadPerDay: 5_000_000_000, appPasswordsOnly: true },
  };
  assert.deepEqual(await users.authenticate(request('alice', 'pw')), { ok: true, user: alice });
  assert.deepEqual(await users.lookupUser('alice', signal), alice);
  assert.deepEqual(await users.authenticate(request('bob', 'pw')), { ok: true, user: { name: 'bob' } });
  for (const name of ['eve', 'mal']) {
    assert.deepEqual(await users.authenticate(request(name, 'pw')), { ok: false, reason: 'invalid' }, name);
    assert.equal(await users.lookupUser(name, signal), undefined, name);
  }
  assert.ok(
    logger.lines.some(
      (l) =>
        l.includes('"user":"eve"') && l.includes('column poplar_expire: expected a number of days or NEVER'),
    ),
  );
  assert.ok(logger.lines.some((l) => l.includes('"user":"mal"') && l.includes('column poplar_max_sessions')));
});

test('LDAP: poplar* attributes (deploy/ldap/poplar.schema), in both modes; a bad value refuses the user', async (t) => {
  const directory = await slapd();
  const baseDn = await directory.addOu('policy');
  const ssha = await directory.sshaOf('pw');
  await directory.addUser(
    { uid: 'alice', userPassword: ssha, policy: { poplarExpire: '0', poplarLoginDelay: '600' } },
    baseDn,
  );
  await directory.addUser({ uid: 'bob', userPassword: ssha }, baseDn);
  await directory.addUser(
    { uid: 'eve', userPassword: ssha, policy: { poplarAppPasswordsOnly: 'maybe' } },
    baseDn,
  );
  const logger = recordingLogger();
  for (const passwordAttribute of ['userPassword', undefined]) {
    const users = new DatabaseAuthenticator(
      new LdapUsers({
        url: directory.url,
        baseDn,
        bindDn: SERVICE_DN,
        bindPassword: SERVICE_PASSWORD,
        logger,
        ...(passwordAttribute === undefined ? {} : { passwordAttribute }),
      }),
      { cacheTtlMs: 60_000, logger },
    );
    t.after(() => users.close());
    const mode = passwordAttribute ?? 'bind';
    const alice = { name: 'alice', policy: { expire: 0, loginDelaySeconds: 600 } };
    assert.deepEqual(await users.authenticate(request('alice', 'pw')), { ok: true, user: alice }, mode);
    assert.deepEqual(await users.lookupUser('alice', signal), alice, mode);
    assert.deepEqual(await users.lookupUser('bob', signal), { name: 'bob' }, mode);
    assert.deepEqual(await users.authenticate(request('eve', 'pw')), { ok: false, reason: 'invalid' }, mode);
    assert.equal(await users.lookupUser('eve', signal), undefined, mode);
  }
  assert.ok(logger.lines.some((l) => l.includes('attribute poplarAppPasswordsOnly: expected yes or no')));
});
