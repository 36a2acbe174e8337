import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../../../src/config/config.js';
import { compareConfigs } from '../../../src/cli/reload.js';

const base = resolveConfig({ port: 110, users: 'users', workers: 2, tlsCert: 'a.pem', tlsKey: 'a.key' });

test('the same configuration read again changes nothing', () => {
  const changes = compareConfigs(
    base,
    resolveConfig({ port: 110, users: 'users', workers: 2, tlsCert: 'a.pem', tlsKey: 'a.key' }),
  );
  assert.deepEqual([changes.applied, changes.needsRestart, changes.limits], [[], [], {}]);
  assert.deepEqual(changes.config, base);
});

test('limits, the log level, the shutdown grace and the certificate files change live', () => {
  const next = resolveConfig({
    port: 110,
    users: 'users',
    workers: 2,
    tlsCert: 'b.pem',
    tlsKey: 'b.key',
    logLevel: 'debug',
    shutdownGraceMs: 100,
    limits: { maxConnectionsPerIp: 3 },
  });
  const changes = compareConfigs(base, next);
  assert.deepEqual(changes.applied, [
    'limits.maxConnectionsPerIp',
    'logLevel',
    'shutdownGraceMs',
    'tlsCert',
    'tlsKey',
  ]);
  assert.deepEqual(changes.needsRestart, []);
  assert.deepEqual(changes.limits, { maxConnectionsPerIp: 3 });
  assert.deepEqual(changes.config, next);
});

test('ports, addresses, workers, mail root, users file and account need a restart and keep their old value', () => {
  const next = resolveConfig({
    port: 111,
    users: 'other-users',
    workers: 3,
    maildir: '/srv/mail',
    listen: ['127.0.0.1'],
    user: 'poplar',
    tlsCert: 'a.pem',
    tlsKey: 'a.key',
    limits: { loginTimeoutMs: 5000 },
  });
  const changes = compareConfigs(base, next);
  assert.deepEqual(changes.applied, ['limits.loginTimeoutMs']);
  assert.deepEqual(changes.needsRestart, ['port', 'maildir', 'listen', 'users', 'workers', 'user']);
  assert.deepEqual(changes.config, { ...base, limits: next.limits });
});

test('turning TLS on or off needs a restart', () => {
  const plain = resolveConfig({ port: 110, users: 'users', workers: 2 });
  assert.deepEqual(compareConfigs(plain, base).needsRestart, ['tlsCert', 'tlsKey']);
  assert.deepEqual(compareConfigs(base, plain).needsRestart, ['tlsCert', 'tlsKey']);
});
