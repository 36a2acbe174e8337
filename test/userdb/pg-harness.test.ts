import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startPostgres } from '../helpers/engines/postgres.js';

test('the PostgreSQL harness starts, stops and starts again', async (t) => {
  const db = await startPostgres(t);
  await db.createMailboxTable();
  await db.addMailbox('alice@example.org', '{PLAIN}pw');
  assert.equal((await db.query('SELECT count(*)::int AS n FROM mailbox')).rows[0]?.['n'], 1);
  await db.stop();
  await assert.rejects(db.query('SELECT 1'));
  await db.start();
  assert.equal((await db.query('SELECT count(*)::int AS n FROM mailbox')).rows[0]?.['n'], 1);
});
