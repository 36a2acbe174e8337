import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { layerFromToml, resolveConfig, withPathsFrom } from '../../../src/config/config.js';
import { ConfigError } from '../../../src/errors.js';

const fromToml = (doc: Record<string, unknown>) => resolveConfig(layerFromToml(doc, 'poplar.toml'));

describe('scale-out settings', () => {
  test('proxyProtocolFrom takes networks and bare addresses, IPv4 and IPv6', () => {
    const config = fromToml({ proxyProtocolFrom: ['10.0.0.0/8', '192.0.2.7', 'fd00::/8'] });
    assert.deepEqual(config.proxyProtocolFrom, ['10.0.0.0/8', '192.0.2.7', 'fd00::/8']);
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'example.org/8', '10.0.0.0/8/1', '10.0.0.0/x', ''])
      assert.throws(() => fromToml({ proxyProtocolFrom: [bad] }), ConfigError, bad);
    assert.throws(() => fromToml({ proxyProtocolFrom: '10.0.0.0/8' }), /must be a list of networks/);
  });

  test('cluster is a redis:// or rediss:// URL with an optional database number', () => {
    for (const ok of ['redis://127.0.0.1:6379', 'rediss://redis.example.org:6380/2', 'redis://r:1/'])
      assert.equal(fromToml({ cluster: ok }).cluster, ok);
    for (const bad of ['http://x:1', 'redis://x:1/db', 'redis://', '10.0.0.1:6379'])
      assert.throws(() => fromToml({ cluster: bad }), /cluster must be redis:\/\//, bad);
  });

  test('nodeName and lockTtl are checked', () => {
    assert.equal(fromToml({ nodeName: 'pop-1.example' }).nodeName, 'pop-1.example');
    assert.throws(() => fromToml({ nodeName: 'a b' }), /nodeName must be/);
    assert.throws(() => fromToml({ nodeName: '-x' }), /nodeName must be/);
    assert.equal(fromToml({ lockTtl: 5 }).lockTtl, 5);
    for (const bad of [4, 3601, 1.5]) assert.throws(() => fromToml({ lockTtl: bad }), /lockTtl must be/);
  });

  test('[userdb] takes its keys and refuses unknown ones', () => {
    const config = fromToml({
      userdb: { passwordQuery: 'SELECT password FROM users WHERE name = $1', cacheTtlMs: 0 },
    });
    assert.equal(config.userdb.passwordQuery, 'SELECT password FROM users WHERE name = $1');
    assert.equal(config.userdb.cacheTtlMs, 0);
    assert.throws(() => fromToml({ userdb: { passwordQuerry: 'x' } }), /passwordQuery/);
    assert.throws(() => fromToml({ userdb: { cacheTtlMs: -1 } }), /cacheTtlMs must be/);
    assert.throws(() => fromToml({ userdb: 'x' }), /\[userdb\] must be a table/);
  });

  test("a config file's folder resolves the files, not a database URL in users", () => {
    const layer = withPathsFrom('/etc/poplar', {
      users: 'postgresql://poplar@db/mail',
      clusterPasswordFile: 'redis-password',
      userdb: { bindPasswordFile: 'ldap-password' },
    });
    assert.equal(layer.users, 'postgresql://poplar@db/mail');
    assert.equal(layer.clusterPasswordFile, '/etc/poplar/redis-password');
    assert.equal(layer.userdb?.bindPasswordFile, '/etc/poplar/ldap-password');
    assert.equal(withPathsFrom('/etc/poplar', { users: 'users' }).users, '/etc/poplar/users');
  });
});
