import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { tempDir } from '../../helpers/temp-dir.js';
import { ConfigError } from '../../../src/errors.js';
import { DEFAULT_LIMITS } from '../../../src/pop3/limits.js';
import { availableParallelism, hostname } from 'node:os';
import {
  layerFromToml,
  MAX_WORKERS,
  readConfigFile,
  resolveConfig,
  type ConfigLayer,
} from '../../../src/config/config.js';

/** Asserts a ConfigError whose message contains every one of `parts`. */
function isConfigError(...parts: string[]): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    for (const part of parts)
      assert.ok(error.message.includes(part), `"${error.message}" should mention ${part}`);
    return true;
  };
}

async function configFile(t: TestContext, text: string): Promise<string> {
  const path = join(await tempDir(t), 'poplar.toml');
  await writeFile(path, text);
  return path;
}

describe('resolveConfig', () => {
  test('defaults: port 1100, maildir ./directories/', () => {
    assert.deepEqual(resolveConfig(), {
      port: 1100,
      maildir: './directories/',
      listen: [],
      users: undefined,
      hostname: undefined,
      logLevel: 'info',
      logFormat: undefined,
      shutdownGraceMs: 5000,
      limits: DEFAULT_LIMITS,
      monitorPort: 1081,
      monitorListen: ['127.0.0.1', '::1'],
      admins: undefined,
      metricsListen: undefined,
      tlsCert: undefined,
      tlsKey: undefined,
      tlsPort: undefined,
      sni: {},
      allowCleartextLogin: false,
      passwordScheme: 'PBKDF2',
      oauth: undefined,
      workers: Math.min(availableParallelism(), MAX_WORKERS),
      blockingIo: true,
      user: undefined,
      group: undefined,
      policy: {},
      proxyProtocolFrom: [],
      cluster: undefined,
      clusterPasswordFile: undefined,
      nodeName: hostname(),
      lockTtl: 30,
      userdb: {
        passwordQuery: undefined,
        addQuery: undefined,
        deleteQuery: undefined,
        listQuery: undefined,
        passwordFile: undefined,
        baseDn: undefined,
        filter: undefined,
        bindDn: undefined,
        bindPasswordFile: undefined,
        passwordAttribute: undefined,
        cacheTtlMs: 3_600_000,
      },
    });
    assert.deepEqual(resolveConfig({}, {}), resolveConfig());
  });

  test('workers and blockingIo: from the file, checked', () => {
    const layer = layerFromToml({ workers: 3, blockingIo: false }, 'f.toml');
    const config = resolveConfig(layer);
    assert.equal(config.workers, 3);
    assert.equal(config.blockingIo, false);
    assert.throws(() => resolveConfig({ workers: 0 }), isConfigError('workers'));
    assert.throws(() => resolveConfig({ workers: MAX_WORKERS + 1 }), isConfigError('workers'));
    assert.throws(() => layerFromToml({ blockingIo: 'no' }, 'f.toml'), isConfigError('blockingIo'));
  });

  test('a limit set at the top of the file is sent to [limits]', () => {
    assert.throws(
      () => layerFromToml({ maxConectionsPerIp: 3, port: 110 }, 'f.toml'),
      isConfigError('unknown setting "maxConectionsPerIp" (did you mean "maxConnectionsPerIp" in [limits]?)'),
    );
  });

  test('user and group: from the file, a group only with a user', () => {
    const config = resolveConfig(layerFromToml({ user: 'poplar', group: 'mail' }, 'f.toml'));
    assert.equal(config.user, 'poplar');
    assert.equal(config.group, 'mail');
    assert.equal(resolveConfig({ user: 'poplar' }).group, undefined);
    assert.throws(() => resolveConfig({ group: 'mail' }), isConfigError('group needs user'));
    assert.throws(() => layerFromToml({ user: 65534 }, 'f.toml'), isConfigError('user'));
  });

  test('later layers win (flags over file), untouched settings come from earlier layers', () => {
    const file: ConfigLayer = {
      port: 2110,
      maildir: '/srv/mail',
      logLevel: 'debug',
      users: '/etc/poplar/users',
    };
    const flags: ConfigLayer = { port: 3110, listen: ['127.0.0.1'] };
    const config = resolveConfig(file, flags);
    assert.equal(config.port, 3110);
    assert.equal(config.maildir, '/srv/mail');
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.users, '/etc/poplar/users');
    assert.deepEqual(config.listen, ['127.0.0.1']);
  });

  test('limits from all layers are merged, later ones winning per limit', () => {
    const config = resolveConfig(
      { limits: { maxCommandBytes: 2048, maxConnections: 50 } },
      { port: 1 },
      { limits: { maxConnections: 5 } },
    );
    assert.deepEqual(config.limits, { ...DEFAULT_LIMITS, maxCommandBytes: 2048, maxConnections: 5 });
  });

  test('port 0 (any free port) and 65535 are accepted, outside that is refused', () => {
    assert.equal(resolveConfig({ port: 0 }).port, 0);
    assert.equal(resolveConfig({ port: 65535 }).port, 65535);
    assert.throws(() => resolveConfig({ port: 65536 }), isConfigError('port'));
    assert.throws(() => resolveConfig({ port: -1 }), isConfigError('port'));
    assert.throws(() => resolveConfig({ port: 1.5 }), isConfigError('port'));
  });

  test('logLevel must be a pino level', () => {
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
      assert.equal(resolveConfig({ logLevel: level }).logLevel, level);
    }
    assert.throws(() => resolveConfig({ logLevel: 'loud' }), isConfigError('logLevel'));
  });

  test('a negative shutdownGraceMs is refused', () => {
    assert.equal(resolveConfig({ shutdownGraceMs: 0 }).shutdownGraceMs, 0);
    assert.throws(() => resolveConfig({ shutdownGraceMs: -1 }), isConfigError('shutdownGraceMs'));
  });

  test('limits out of range are refused, naming the limit', () => {
    assert.throws(() => resolveConfig({ limits: { idleTimeoutMs: 60_000 } }), isConfigError('idleTimeoutMs'));
    assert.throws(
      () => resolveConfig({ limits: { maxCommandBytes: 100 } }),
      isConfigError('maxCommandBytes'),
    );
  });
});

describe('layerFromToml', () => {
  test('takes every known setting', () => {
    const layer = layerFromToml(
      {
        port: 995,
        maildir: '/var/mail',
        listen: ['::1', '127.0.0.1'],
        users: '/etc/users',
        hostname: 'mail.example.org',
        logLevel: 'warn',
        shutdownGraceMs: 100,
        limits: { maxConnections: 10 },
      },
      'test.toml',
    );
    assert.deepEqual(layer, {
      port: 995,
      maildir: '/var/mail',
      listen: ['::1', '127.0.0.1'],
      users: '/etc/users',
      hostname: 'mail.example.org',
      logLevel: 'warn',
      shutdownGraceMs: 100,
      limits: { maxConnections: 10 },
    });
  });

  test('an empty document is an empty layer', () => {
    assert.deepEqual(layerFromToml({}, 'x'), {});
  });

  test('unknown settings are refused, naming the setting and the source', () => {
    assert.throws(() => layerFromToml({ prot: 1100 }, 'my.toml'), isConfigError('prot', 'my.toml'));
    assert.throws(
      () => layerFromToml({ limits: { maxLineBytes: 10 } }, 'my.toml'),
      isConfigError('maxLineBytes', 'my.toml'),
    );
  });

  test('limit names inherited from Object.prototype are unknown', () => {
    const limits = Object.assign(Object.create(null) as Record<string, unknown>, { toString: 5 });
    assert.throws(() => layerFromToml({ limits }, 'my.toml'), isConfigError('toString'));
  });

  test('bad types are refused, naming the setting', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ port: '1100' }, 'port'],
      [{ port: 1.5 }, 'port'],
      [{ maildir: 5 }, 'maildir'],
      [{ maildir: '' }, 'maildir'],
      [{ users: true }, 'users'],
      [{ hostname: [] }, 'hostname'],
      [{ logLevel: 1 }, 'logLevel'],
      [{ shutdownGraceMs: '5s' }, 'shutdownGraceMs'],
      [{ listen: '127.0.0.1' }, 'listen'],
      [{ listen: [1] }, 'listen'],
      [{ listen: [''] }, 'listen'],
      [{ limits: 5 }, 'limits'],
      [{ limits: [] }, 'limits'],
      [{ limits: null }, 'limits'],
    ];
    for (const [doc, name] of cases) {
      assert.throws(() => layerFromToml(doc, 'f.toml'), isConfigError(name, 'f.toml'), JSON.stringify(doc));
    }
  });
});

describe('readConfigFile', () => {
  test('reads a TOML file into a layer', async (t) => {
    const path = await configFile(
      t,
      [
        '# Poplar',
        'port = 2110',
        'maildir = "/srv/mail"',
        'listen = ["127.0.0.1", "::1"]',
        'logLevel = "debug"',
        '',
        '[limits]',
        'maxCommandBytes = 4096',
        'idleTimeoutMs = 900_000',
        '',
      ].join('\n'),
    );
    const { limits, ...rest } = await readConfigFile(path);
    assert.deepEqual(rest, {
      port: 2110,
      maildir: '/srv/mail',
      listen: ['127.0.0.1', '::1'],
      logLevel: 'debug',
    });
    // smol-toml tables have a null prototype; compare the entries.
    assert.deepEqual({ ...limits }, { maxCommandBytes: 4096, idleTimeoutMs: 900_000 });
  });

  test('relative paths name files next to the config file, not in the working directory', async (t) => {
    const path = await configFile(
      t,
      [
        'maildir = "mail"',
        'users = "etc/users"',
        'admins = "../admins"',
        'tlsCert = "tls/cert.pem"',
        'tlsKey = "/abs/key.pem"',
        '[sni."mail.example.org"]',
        'cert = "sni/cert.pem"',
        'key = "sni/key.pem"',
        '[oauth]',
        'jwksFile = "jwks.json"',
        'audience = "pop3"',
      ].join('\n'),
    );
    const dir = dirname(path);
    const config = resolveConfig(await readConfigFile(path));
    assert.equal(config.maildir, join(dir, 'mail'));
    assert.equal(config.users, join(dir, 'etc/users'));
    assert.equal(config.admins, join(dirname(dir), 'admins'));
    assert.equal(config.tlsCert, join(dir, 'tls/cert.pem'));
    assert.equal(config.tlsKey, '/abs/key.pem');
    assert.deepEqual(config.sni['mail.example.org'], {
      cert: join(dir, 'sni/cert.pem'),
      key: join(dir, 'sni/key.pem'),
    });
    assert.equal(config.oauth?.jwksFile, join(dir, 'jwks.json'));
  });

  test('file, then flags: the flags win and the file limits stay', async (t) => {
    const path = await configFile(t, 'port = 2110\nmaildir = "/srv/mail"\n[limits]\nmaxConnections = 7\n');
    const config = resolveConfig(await readConfigFile(path), { port: 4110 });
    assert.equal(config.port, 4110);
    assert.equal(config.maildir, '/srv/mail');
    assert.equal(config.limits.maxConnections, 7);
  });

  test('an unknown key in the file is refused, naming it and the file', async (t) => {
    const path = await configFile(t, 'port = 2110\nmail_dir = "/x"\n');
    await assert.rejects(readConfigFile(path), isConfigError('mail_dir', path));
  });

  test('an unknown limit in the file is refused', async (t) => {
    const path = await configFile(t, '[limits]\ntoString = 5\n');
    await assert.rejects(readConfigFile(path), isConfigError('toString', path));
  });

  test('a bad type in the file is refused', async (t) => {
    const path = await configFile(t, 'port = "1100"\n');
    await assert.rejects(readConfigFile(path), isConfigError('port', path));
  });

  test('malformed TOML gives a ConfigError naming the file', async (t) => {
    for (const text of ['port = \n', 'port = 1\nport = 2\n', '[limits\n', 'maildir = "unterminated\n']) {
      const path = await configFile(t, text);
      await assert.rejects(readConfigFile(path), isConfigError(path), JSON.stringify(text));
    }
  });

  test('a missing file gives a ConfigError naming the file', async (t) => {
    const path = join(await tempDir(t), 'absent.toml');
    await assert.rejects(readConfigFile(path), isConfigError(path));
  });

  test('a limit out of range in the file is refused when resolving', async (t) => {
    const path = await configFile(t, '[limits]\nmaxCommandBytes = 100\n');
    const layer = await readConfigFile(path);
    assert.throws(() => resolveConfig(layer), isConfigError('maxCommandBytes'));
  });
});

test('passwordScheme: a hashing scheme, by any of its names; PLAIN refused', () => {
  assert.equal(resolveConfig({ passwordScheme: 'scram-sha-256' }).passwordScheme, 'SCRAM-SHA-256');
  assert.equal(resolveConfig({ passwordScheme: 'ARGON2ID' }).passwordScheme, 'ARGON2ID');
  assert.throws(() => resolveConfig({ passwordScheme: 'PLAIN' }), /passwordScheme must be a hashing scheme/);
  assert.throws(() => resolveConfig({ passwordScheme: 'MD5' }), /passwordScheme must be a hashing scheme/);
});
