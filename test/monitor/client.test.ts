// MonitorClient, the library's monitor client, against a real monitor and POP3 server on loopback.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MonitorClient, MonitorError } from '../../src/index.js';
import { PASSWORDS, ROOT_TOKEN, startMonitorFixture } from './setup.js';

test('MonitorClient reads counters and the snapshot, and makes changes, with an admin token', async (t) => {
  const f = await startMonitorFixture(t);
  const client = new MonitorClient({ host: '127.0.0.1', port: f.monitorPort, token: ROOT_TOKEN });
  assert.equal(await client.counter('loginsSucceeded'), 0n);
  const alice = await f.login('alice', PASSWORDS.alice);
  assert.equal(await client.counter('loginsSucceeded'), 1n);
  assert.equal(await client.counter('historicConnections'), 1n);
  const snapshot = (await client.snapshot()) as { sessions: { user: string }[] };
  assert.deepEqual(
    snapshot.sessions.map((s) => s.user),
    ['alice'],
  );
  await client.config('endSessions', 'alice');
  assert.match(await alice.readLine(), /^-ERR /);
  assert.equal(await client.counter('concurrentConnections'), 0n);
});

test('MonitorClient rejects with MonitorError and its status when the monitor refuses', async (t) => {
  const f = await startMonitorFixture(t);
  const wrong = new MonitorClient({ host: '127.0.0.1', port: f.monitorPort, token: 'not-the-token-01' });
  await assert.rejects(wrong.counter('historicConnections'), (error: unknown) => {
    assert.ok(error instanceof MonitorError);
    assert.equal(error.status, 'authFailed');
    return true;
  });
  const root = new MonitorClient({ host: '127.0.0.1', port: f.monitorPort, token: ROOT_TOKEN });
  await assert.rejects(root.config('setUser', 'no separator'), (error: unknown) => {
    assert.ok(error instanceof MonitorError);
    assert.equal(error.status, 'badData');
    return true;
  });
  assert.throws(() => new MonitorClient({ host: '127.0.0.1', port: 1, token: 'short' }), RangeError);
});
