import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { tempDir } from '../../helpers/temp-dir.js';
import { asLogged } from '../../helpers/recording-logger.js';
import { hashPassword } from '../../../src/auth/passwords/registry.js';
import { staticAuth } from '../../../src/auth/static.js';
import type { Logger } from '../../../src/log.js';
import { MemoryStore } from '../../../src/mailstore/memory.js';
import { createServer, type Pop3Server, type SessionSnapshot } from '../../../src/pop3/server.js';
import { AdminStore } from '../../../src/monitor/admins.js';
import { handleRequest, type MonitorBackends, type UserDirectory } from '../../../src/monitor/handlers.js';
import { MonitorRefusal } from '../../../src/monitor/extensions.js';
import { encodeResponse } from '../../../src/monitor/protocol/encode.js';
import type {
  ConfigTarget,
  GetTarget,
  MonitorRequest,
  MonitorResponse,
} from '../../../src/monitor/protocol/messages.js';

const ROOT_TOKEN = '123456789abcdef1';
const OPS_TOKEN = 'abcdefghijklmnop';
const WRONG_TOKEN = 'wrongwrongwrong!';
const PASSWORD = 'Tr0ub4dor&3';
const UTF8_PASSWORD = 'pässwörd-7';

/** Every token and password this file sends: none of them may ever reach a log. */
const SECRETS = [
  ROOT_TOKEN,
  OPS_TOKEN,
  WRONG_TOKEN,
  '123456789ABCDEF1',
  'abcdefghijklmno ',
  'abcdefghijklmnopq',
  'qrstuvwxyz012345',
  PASSWORD,
  UTF8_PASSWORD,
  'pw-with\x01control',
  'pw-with\ttab',
  'pw-with\x7fdel',
  'pw-with\r\nbreak',
];

interface LogCall {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: object;
  readonly message: string | undefined;
}

function recordingLogger(calls: LogCall[], bindings: Record<string, unknown> = {}): Logger {
  const at =
    (level: LogCall['level']) =>
    (fields: object, message?: string): void => {
      calls.push({ level, fields: { ...bindings, ...fields }, message });
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => recordingLogger(calls, { ...bindings, ...more }),
  };
}

function hasBytes(value: unknown): boolean {
  if (value instanceof Uint8Array) return true;
  if (typeof value !== 'object' || value === null) return false;
  return Object.values(value).some(hasBytes);
}

function assertNothingSecretLogged(calls: readonly LogCall[]): void {
  for (const call of calls) {
    assert.equal(hasBytes(call.fields), false, `raw bytes logged: ${call.message ?? ''}`);
    const text = asLogged(call);
    for (const secret of SECRETS) {
      const escaped = JSON.stringify(secret).slice(1, -1);
      assert.ok(!text.includes(secret) && !text.includes(escaped), `a secret was logged: ${text}`);
    }
  }
}

/** A user directory that records what it is asked and can be told to fail. */
class FakeUsers implements UserDirectory {
  readonly calls: string[][] = [];
  readonly passwords = new Map<string, string>();
  failure: Error | undefined;

  constructor(users: Readonly<Record<string, string>> = {}) {
    for (const [name, password] of Object.entries(users)) this.passwords.set(name, password);
  }

  setPassword(name: string, password: string): Promise<void> {
    this.calls.push(['setPassword', name, password]);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    this.passwords.set(name, password);
    return Promise.resolve();
  }

  deleteUser(name: string): Promise<boolean> {
    this.calls.push(['deleteUser', name]);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return Promise.resolve(this.passwords.delete(name));
  }
}

interface SetupOptions {
  /** Admin names and tokens; root with the default token unless given. */
  readonly admins?: Readonly<Record<string, string>>;
  readonly refusesDefaultToken?: boolean;
  readonly hasUsers?: boolean;
  readonly hasMailRoot?: boolean;
}

interface Harness {
  readonly backends: MonitorBackends;
  readonly server: Pop3Server;
  readonly admins: AdminStore;
  readonly adminsPath: string;
  readonly users: FakeUsers;
  readonly mailRoot: { root: string };
  readonly logs: LogCall[];
  readonly dir: string;
}

/** Real server (not listening), real admins file on a temp dir, fake users, recording logger. */
async function setup(t: TestContext, options: SetupOptions = {}): Promise<Harness> {
  const dir = await tempDir(t, 'poplar-monitor-');
  const logs: LogCall[] = [];
  const logger = recordingLogger(logs);
  t.after(() => {
    assertNothingSecretLogged(logs);
  });
  const adminsPath = join(dir, 'admins');
  const lines: string[] = [];
  for (const [name, token] of Object.entries(options.admins ?? { root: ROOT_TOKEN })) {
    lines.push(`${name}:${await hashPassword(token, 'SSHA256')}`);
  }
  await writeFile(adminsPath, `${lines.join('\n')}\n`);
  const admins = new AdminStore(adminsPath, { logger });
  await admins.reload();
  const server = createServer({ store: new MemoryStore(), authenticator: staticAuth({ bob: 'pw' }), logger });
  const users = new FakeUsers({ bob: 'old-password', carol: 'old-password' });
  const mailRoot = { root: '/x' };
  const backends: MonitorBackends = {
    pop3: server,
    admins,
    logger,
    refusesDefaultToken: options.refusesDefaultToken ?? false,
    ...(options.hasUsers === false ? {} : { users }),
    ...(options.hasMailRoot === false ? {} : { mailRoot }),
  };
  return { backends, server, admins, adminsPath, users, mailRoot, logs, dir };
}

function tokenOf(token: string | Buffer): Buffer {
  return typeof token === 'string' ? Buffer.from(token, 'latin1') : token;
}

function get(target: GetTarget, token: string | Buffer = ROOT_TOKEN): MonitorRequest {
  return { type: 'get', token: tokenOf(token), target, data: Buffer.from([0x00]) };
}

function config(
  target: ConfigTarget,
  data: string | Buffer,
  token: string | Buffer = ROOT_TOKEN,
): MonitorRequest {
  return {
    type: 'config',
    token: tokenOf(token),
    target,
    data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
  };
}

/** The response as the hex of its wire bytes: what the client would see. */
async function wire(h: Harness, request: MonitorRequest): Promise<string> {
  const response: MonitorResponse = await handleRequest(h.backends, request);
  return encodeResponse(response).toString('hex');
}

const OK = '00000100';
const BAD_DATA = '04000100';
const AUTH_FAILED = '05000100';
const SERVER_ERROR = '06000100';
/** 00 0004 00000000: a uint32 counter of 0. */
const ZERO_COUNT = '00000400000000';

describe('handleRequest: the token comes first', () => {
  test('a wrong token gets authFailed and changes nothing, whatever the request', async (t) => {
    const h = await setup(t);
    const existing = await tempDir(t);
    const endSessionsOf = t.mock.method(h.server, 'endSessionsOf');
    const adminsBefore = await readFile(h.adminsPath, 'utf8');
    const requests: MonitorRequest[] = [
      ...(
        [
          'historicConnections',
          'concurrentConnections',
          'transferredBytes',
          'transferredBytes64',
          'receivedBytes',
          'authenticatedSessions',
          'loginsSucceeded',
          'loginsFailed',
          'messagesRetrieved',
          'messagesDeleted',
          'uptimeSeconds',
          'snapshot',
        ] as const
      ).map((target) => get(target, WRONG_TOKEN)),
      config('maildir', existing, WRONG_TOKEN),
      config('chunkSize', '4096', WRONG_TOKEN),
      config('addAdmin', `ops\0${OPS_TOKEN}`, WRONG_TOKEN),
      config('deleteAdmin', 'root', WRONG_TOKEN),
      config('setUser', `bob\0${PASSWORD}`, WRONG_TOKEN),
      config('deleteUser', 'bob', WRONG_TOKEN),
      config('endSessions', 'bob', WRONG_TOKEN),
    ];
    for (const request of requests) {
      const response = await handleRequest(h.backends, request);
      assert.deepEqual(response, { status: 'authFailed', data: Buffer.alloc(0) }, request.target);
    }
    assert.deepEqual(h.users.calls, []);
    assert.equal(endSessionsOf.mock.callCount(), 0);
    assert.equal(h.mailRoot.root, '/x');
    assert.equal(h.server.limits.transferChunkBytes, 65_536);
    assert.equal(await readFile(h.adminsPath, 'utf8'), adminsBefore);
    assert.equal(h.admins.count, 1);
    assert.equal(await h.admins.verify(OPS_TOKEN), undefined);
    // The server logs wrong tokens, a line per address now and then (test/monitor/abuse.test.ts).
    assert.deepEqual(
      h.logs.filter((call) => call.level === 'warn'),
      [],
      'not logged here',
    );
  });

  test('the spec example: a wrong token answers 05 0001 00', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, get('concurrentConnections', '123456789abcdef2')), AUTH_FAILED);
  });

  test('tokens are compared byte for byte: another case is another token', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, get('historicConnections', '123456789ABCDEF1')), AUTH_FAILED);
    assert.equal(await wire(h, get('historicConnections', ROOT_TOKEN)), ZERO_COUNT);
  });

  test('a token of the wrong shape is refused without being tried', async (t) => {
    const h = await setup(t);
    const verify = t.mock.method(h.admins, 'verify');
    const tokens: Buffer[] = [
      Buffer.from('abcdefghijklmno ', 'latin1'), // a space
      Buffer.alloc(16, 0x00),
      Buffer.alloc(16, 0xff),
      Buffer.from([
        0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x0a,
      ]),
      Buffer.from('123456789abcdef', 'latin1'), // 15 bytes
      Buffer.from('123456789abcdef12', 'latin1'), // 17 bytes
    ];
    for (const token of tokens) {
      assert.equal(await wire(h, get('historicConnections', token)), AUTH_FAILED, token.toString('hex'));
      assert.equal(await wire(h, config('setUser', `bob\0${PASSWORD}`, token)), AUTH_FAILED);
    }
    assert.equal(verify.mock.callCount(), 0);
    assert.deepEqual(h.users.calls, []);
  });
});

describe('handleRequest: GET', () => {
  const NOW = 1_700_000_000_000;

  async function withStats(t: TestContext): Promise<Harness> {
    const h = await setup(t);
    t.mock.method(Date, 'now', () => NOW);
    const stats = h.server.stats;
    (stats as { startedAt: number }).startedAt = NOW - 3_600_999; // 3600.999 s: uptime 3600
    stats.connectionsTotal = 2 ** 32 + 5;
    stats.connectionsOpen = 3;
    stats.bytesOut = 5_000_000_000;
    stats.bytesIn = 0x01_0203_0405;
    stats.sessionsAuthenticated = 2;
    stats.loginsSucceeded = 0x0708;
    stats.loginsFailed = 9;
    stats.messagesRetrieved = 0x1234;
    stats.messagesDeleted = 0x1_0000;
    return h;
  }

  test('every target answers its counter: uint32 (saturated) for 0x00-0x02, uint64 for the rest', async (t) => {
    const h = await withStats(t);
    const expected: readonly [GetTarget, string][] = [
      ['historicConnections', '00 0004 ffffffff'],
      ['concurrentConnections', '00 0004 00000003'],
      ['transferredBytes', '00 0004 ffffffff'],
      ['transferredBytes64', '00 0008 000000012a05f200'],
      ['receivedBytes', '00 0008 0000000102030405'],
      ['authenticatedSessions', '00 0008 0000000000000002'],
      ['loginsSucceeded', '00 0008 0000000000000708'],
      ['loginsFailed', '00 0008 0000000000000009'],
      ['messagesRetrieved', '00 0008 0000000000001234'],
      ['messagesDeleted', '00 0008 0000000000010000'],
      ['uptimeSeconds', '00 0008 0000000000000e10'],
    ];
    for (const [target, bytes] of expected) {
      assert.equal(await wire(h, get(target)), bytes.replace(/ /g, ''), target);
    }
  });

  test('the uint32 targets saturate at 2^32-1 and never wrap', async (t) => {
    const h = await setup(t);
    const stats = h.server.stats;
    stats.connectionsTotal = 2 ** 32 - 1;
    stats.connectionsOpen = 2 ** 32 - 2;
    stats.bytesOut = 2 ** 32;
    assert.equal(await wire(h, get('historicConnections')), '000004ffffffff');
    assert.equal(await wire(h, get('concurrentConnections')), '000004fffffffe');
    assert.equal(await wire(h, get('transferredBytes')), '000004ffffffff');
    assert.equal(await wire(h, get('transferredBytes64')), '0000080000000100000000');
  });

  test('the DATA of a GET is ignored: DLEN 0 and DLEN 1 answer alike', async (t) => {
    const h = await setup(t);
    h.server.stats.loginsFailed = 4;
    for (const data of [Buffer.alloc(0), Buffer.from([0x00]), Buffer.from('anything')]) {
      const response = await handleRequest(h.backends, {
        type: 'get',
        token: tokenOf(ROOT_TOKEN),
        target: 'loginsFailed',
        data,
      });
      assert.equal(encodeResponse(response).toString('hex'), '0000080000000000000004');
    }
  });

  test('the snapshot is JSON with every counter and no sessions when none is open', async (t) => {
    const h = await withStats(t);
    const response = await handleRequest(h.backends, get('snapshot'));
    assert.equal(response.status, 'ok');
    assert.deepEqual(JSON.parse(response.data.toString('utf8')), {
      counters: {
        historicConnections: 2 ** 32 + 5,
        concurrentConnections: 3,
        transferredBytes: 5_000_000_000,
        receivedBytes: 0x01_0203_0405,
        authenticatedSessions: 2,
        loginsSucceeded: 0x0708,
        loginsFailed: 9,
        loginsThrottled: 0,
        authCacheHits: 0,
        authCacheMisses: 0,
        messagesRetrieved: 0x1234,
        messagesDeleted: 0x1_0000,
        uptimeSeconds: 3600,
      },
      sessionCount: 0,
      sessions: [],
      isTruncated: false,
    });
    const bytes = encodeResponse(response);
    assert.equal(bytes.readUInt16BE(1), response.data.length, 'DLEN is the JSON length in bytes');
  });

  test('the snapshot lists the open sessions', async (t) => {
    const h = await withStats(t);
    const sessions: SessionSnapshot[] = [
      {
        id: 'c1',
        user: undefined,
        remoteAddress: '127.0.0.1',
        state: 'AUTHORIZATION',
        startedAt: NOW - 5000,
        bytesIn: 10,
        bytesOut: 120,
      },
      {
        id: 'c2',
        user: 'bob',
        remoteAddress: '::1',
        state: 'TRANSACTION',
        startedAt: Date.UTC(2023, 10, 14, 22, 13, 20),
        bytesIn: 40,
        bytesOut: 5_000_000_000,
      },
    ];
    t.mock.method(h.server, 'sessions', () => sessions);
    const response = await handleRequest(h.backends, get('snapshot'));
    const json = JSON.parse(response.data.toString('utf8')) as Record<string, unknown>;
    assert.equal(json['sessionCount'], 2);
    assert.equal(json['isTruncated'], false);
    assert.deepEqual(json['sessions'], [
      {
        id: 'c1',
        user: null,
        remoteAddress: '127.0.0.1',
        state: 'AUTHORIZATION',
        startedAt: '2023-11-14T22:13:15.000Z',
        bytesIn: 10,
        bytesOut: 120,
      },
      {
        id: 'c2',
        user: 'bob',
        remoteAddress: '::1',
        state: 'TRANSACTION',
        startedAt: '2023-11-14T22:13:20.000Z',
        bytesIn: 40,
        bytesOut: 5_000_000_000,
      },
    ]);
  });

  test('a snapshot too long for DLEN is cut to the most sessions that fit, and says so', async (t) => {
    const h = await withStats(t);
    // Multi-byte characters: the limit is 65535 bytes, not characters.
    const sessions: SessionSnapshot[] = Array.from({ length: 1000 }, (_, i) => ({
      id: `connection-${i}`,
      user: `ü${'ñ'.repeat(40)}${i}`,
      remoteAddress: '2001:db8::1',
      state: 'TRANSACTION',
      startedAt: NOW,
      bytesIn: i,
      bytesOut: i * 1000,
    }));
    t.mock.method(h.server, 'sessions', () => sessions);
    const response = await handleRequest(h.backends, get('snapshot'));
    assert.equal(response.status, 'ok');
    assert.ok(response.data.length <= 65_535, `${response.data.length} bytes`);
    assert.doesNotThrow(() => encodeResponse(response));
    const json = JSON.parse(response.data.toString('utf8')) as {
      sessionCount: number;
      sessions: { id: string }[];
      isTruncated: boolean;
    };
    assert.equal(json.sessionCount, 1000);
    assert.equal(json.isTruncated, true);
    const kept = json.sessions.length;
    assert.ok(kept > 0 && kept < 1000, `${kept} sessions kept`);
    assert.deepEqual(
      json.sessions.map((s) => s.id),
      sessions.slice(0, kept).map((s) => s.id),
    );
    // One more would not have fitted.
    const next = sessions[kept];
    assert.ok(next !== undefined);
    const longer = JSON.stringify({
      ...json,
      sessions: [
        ...json.sessions,
        { ...next, user: next.user ?? null, startedAt: new Date(NOW).toISOString() },
      ],
    });
    assert.ok(Buffer.byteLength(longer) > 65_535);
  });
});

describe('handleRequest: CONFIG 0x00 maildir', () => {
  test('an existing directory becomes the mail root', async (t) => {
    const h = await setup(t);
    const dir = await tempDir(t);
    assert.equal(await wire(h, config('maildir', dir)), OK);
    assert.equal(h.mailRoot.root, dir);
    // A trailing slash names the same directory.
    const other = await tempDir(t);
    assert.equal(await wire(h, config('maildir', `${other}/`)), OK);
    assert.equal(h.mailRoot.root, other);
  });

  test('a missing path, a file or a path with NUL is refused and the root stays', async (t) => {
    const h = await setup(t);
    const file = join(h.dir, 'a-file');
    await writeFile(file, 'x');
    for (const path of [join(h.dir, 'missing'), file, `${h.dir}\0x`, '']) {
      assert.equal(await wire(h, config('maildir', path)), BAD_DATA, JSON.stringify(path));
      assert.equal(h.mailRoot.root, '/x');
    }
  });

  test('without a mail root to change, badData', async (t) => {
    const h = await setup(t, { hasMailRoot: false });
    assert.equal(await wire(h, config('maildir', h.dir)), BAD_DATA);
  });
});

describe('handleRequest: CONFIG 0x01 chunk size', () => {
  test('512 to 1048576 are accepted', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, config('chunkSize', '512')), OK);
    assert.equal(h.server.limits.transferChunkBytes, 512);
    assert.equal(await wire(h, config('chunkSize', '1048576')), OK);
    assert.equal(h.server.limits.transferChunkBytes, 1_048_576);
    assert.equal(await wire(h, config('chunkSize', '4096')), OK);
    assert.equal(h.server.limits.transferChunkBytes, 4096);
  });

  test('anything else is badData and the size stays', async (t) => {
    const h = await setup(t);
    for (const text of [
      '511',
      '1048577',
      '0',
      'abc',
      '',
      '-512',
      '512.0',
      ' 512',
      '512 ',
      '1e3',
      '99999999999',
    ]) {
      assert.equal(await wire(h, config('chunkSize', text)), BAD_DATA, JSON.stringify(text));
      assert.equal(h.server.limits.transferChunkBytes, 65_536, JSON.stringify(text));
    }
  });
});

describe('handleRequest: CONFIG 0x02 add admin', () => {
  test('a new admin is saved hashed, and its token works at once', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, config('addAdmin', `ops\0${OPS_TOKEN}`)), OK);
    assert.equal(h.admins.count, 2);
    assert.equal(await h.admins.verify(OPS_TOKEN), 'ops');
    const file = await readFile(h.adminsPath, 'utf8');
    assert.match(file, /^ops:\{SSHA256\}/m);
    assert.ok(!file.includes(OPS_TOKEN), 'the token is stored hashed');
    assert.equal(await wire(h, get('historicConnections', OPS_TOKEN)), ZERO_COUNT);
  });

  test('an existing name is badData and its token is not replaced', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, config('addAdmin', `root\0${OPS_TOKEN}`)), BAD_DATA);
    assert.equal(h.admins.count, 1);
    assert.equal(await h.admins.verify(OPS_TOKEN), undefined);
    assert.equal(await h.admins.verify(ROOT_TOKEN), 'root');
  });

  test('a token that is not 16 printable ASCII characters is badData', async (t) => {
    const h = await setup(t);
    for (const data of [
      'ops\0short',
      'ops\0abcdefghijklmno ', // a space
      'ops\0abcdefghijklmnopq', // 17
      'ops\0abcdefghijklmnö', // 16 characters, 17 bytes
      'ops\0abcdefghijklmn\x01p',
      'ops\0',
      `ops${OPS_TOKEN}`, // no separator
    ]) {
      assert.equal(await wire(h, config('addAdmin', data)), BAD_DATA, JSON.stringify(data));
    }
    assert.equal(h.admins.count, 1);
  });

  test('an invalid admin name is badData', async (t) => {
    const h = await setup(t);
    for (const name of ['../x', '.x', '', 'a:b', 'a'.repeat(65)]) {
      assert.equal(await wire(h, config('addAdmin', `${name}\0${OPS_TOKEN}`)), BAD_DATA, name);
    }
    assert.equal(h.admins.count, 1);
  });

  test('the default token is refused outside demo mode or beyond loopback', async (t) => {
    const h = await setup(t, { admins: { ops: OPS_TOKEN }, refusesDefaultToken: true });
    assert.equal(await wire(h, config('addAdmin', `root\0${ROOT_TOKEN}`, OPS_TOKEN)), BAD_DATA);
    assert.equal(await h.admins.verify(ROOT_TOKEN), undefined);
    // Any other token is fine.
    assert.equal(await wire(h, config('addAdmin', 'root\0qrstuvwxyz012345', OPS_TOKEN)), OK);
  });

  test('on loopback the default token may be added back', async (t) => {
    const h = await setup(t, { admins: { ops: OPS_TOKEN }, refusesDefaultToken: false });
    assert.equal(await wire(h, config('addAdmin', `root\0${ROOT_TOKEN}`, OPS_TOKEN)), OK);
    assert.equal(await h.admins.verify(ROOT_TOKEN), 'root');
  });
});

describe('handleRequest: the public token outside demo mode', () => {
  test('opens nothing whichever admin holds it, while the other admins work', async (t) => {
    const h = await setup(t, { admins: { root: ROOT_TOKEN, ops: OPS_TOKEN }, refusesDefaultToken: true });
    assert.equal(await wire(h, get('historicConnections', ROOT_TOKEN)), AUTH_FAILED);
    assert.equal(await wire(h, config('deleteAdmin', 'ops', ROOT_TOKEN)), AUTH_FAILED);
    assert.equal(h.admins.count, 2);
    assert.equal(await wire(h, get('historicConnections', OPS_TOKEN)), ZERO_COUNT);
    assert.equal(await wire(h, config('deleteAdmin', 'root', OPS_TOKEN)), OK);
  });
});

describe('handleRequest: CONFIG 0x03 delete admin', () => {
  test('an unknown admin is badData', async (t) => {
    const h = await setup(t, { admins: { root: ROOT_TOKEN, ops: OPS_TOKEN } });
    assert.equal(await wire(h, config('deleteAdmin', 'nobody')), BAD_DATA);
    assert.equal(await wire(h, config('deleteAdmin', 'roo')), BAD_DATA);
    assert.equal(h.admins.count, 2);
  });

  test('the last admin is never deleted', async (t) => {
    const h = await setup(t);
    const before = await readFile(h.adminsPath, 'utf8');
    assert.equal(await wire(h, config('deleteAdmin', 'root')), BAD_DATA);
    assert.equal(h.admins.count, 1);
    assert.equal(await readFile(h.adminsPath, 'utf8'), before);
    assert.equal(await wire(h, get('historicConnections')), ZERO_COUNT);
  });

  test('another admin is deleted, and its token stops working', async (t) => {
    const h = await setup(t, { admins: { root: ROOT_TOKEN, ops: OPS_TOKEN } });
    assert.equal(await wire(h, config('deleteAdmin', 'ops')), OK);
    assert.equal(h.admins.count, 1);
    assert.doesNotMatch(await readFile(h.adminsPath, 'utf8'), /^ops:/m);
    assert.equal(await wire(h, get('historicConnections', OPS_TOKEN)), AUTH_FAILED);
  });
});

describe('handleRequest: CONFIG 0x04 set user', () => {
  test('a valid name and password go to the user directory', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, config('setUser', `bob\0${PASSWORD}`)), OK);
    assert.equal(await wire(h, config('setUser', `dave\0${UTF8_PASSWORD}`)), OK);
    assert.equal(await wire(h, config('setUser', `${'a'.repeat(64)}\0${PASSWORD}`)), OK);
    assert.deepEqual(h.users.calls, [
      ['setPassword', 'bob', PASSWORD],
      ['setPassword', 'dave', UTF8_PASSWORD],
      ['setPassword', 'a'.repeat(64), PASSWORD],
    ]);
  });

  test('a UTF-8 name goes to the directory in its prepared form, typed composed or decomposed', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, config('setUser', `zoë\0${PASSWORD}`)), OK);
    assert.equal(await wire(h, config('setUser', `zoe\u0308\0${UTF8_PASSWORD}`)), OK);
    assert.equal(await wire(h, config('setUser', `用户\0${PASSWORD}`)), OK);
    assert.deepEqual(h.users.calls, [
      ['setPassword', 'zoë', PASSWORD],
      ['setPassword', 'zoë', UTF8_PASSWORD],
      ['setPassword', '用户', PASSWORD],
    ]);
  });

  test('a password SASLprep refuses is badData (it could never match)', async (t) => {
    const h = await setup(t);
    for (const password of ['pässwörd\u202e', 'שלוםabc', 'pw\u200f!']) {
      assert.equal(await wire(h, config('setUser', `bob\0${password}`)), BAD_DATA, JSON.stringify(password));
    }
    assert.deepEqual(h.users.calls, []);
  });

  test('a password of 255 bytes is accepted, 256 is not', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, config('setUser', `bob\0${'p'.repeat(255)}`)), OK);
    assert.equal(await wire(h, config('setUser', `bob\0${'p'.repeat(256)}`)), BAD_DATA);
    assert.equal(h.users.calls.length, 1);
  });

  test('an invalid user name is badData and the directory is not called', async (t) => {
    const h = await setup(t);
    for (const name of [
      '../x',
      '.x',
      'a'.repeat(65),
      '',
      'ë'.repeat(33),
      'a/b',
      'a:b',
      'a b',
      'a\u202eb',
      'א1',
    ]) {
      assert.equal(await wire(h, config('setUser', `${name}\0${PASSWORD}`)), BAD_DATA, JSON.stringify(name));
    }
    assert.deepEqual(h.users.calls, []);
  });

  test('an empty password, a control character, a second NUL or no separator is badData', async (t) => {
    const h = await setup(t);
    const requests: (string | Buffer)[] = [
      'bob\0',
      'bob\0pw-with\x01control',
      'bob\0pw-with\ttab',
      'bob\0pw-with\x7fdel',
      'bob\0pw-with\r\nbreak',
      `bob\0${PASSWORD}\0more`,
      'bob',
      '',
      Buffer.from([0x62, 0x6f, 0x62, 0x00, 0xff, 0xfe]), // not UTF-8
    ];
    for (const data of requests) {
      assert.equal(await wire(h, config('setUser', data)), BAD_DATA, JSON.stringify(data));
    }
    assert.deepEqual(h.users.calls, []);
  });

  test('without a user directory, badData', async (t) => {
    const h = await setup(t, { hasUsers: false });
    assert.equal(await wire(h, config('setUser', `bob\0${PASSWORD}`)), BAD_DATA);
    assert.deepEqual(h.users.calls, []);
  });

  test('a directory that fails to save gets serverError, logged as an error', async (t) => {
    const h = await setup(t);
    h.users.failure = new Error('EACCES: permission denied, open users.tmp');
    assert.equal(await wire(h, config('setUser', `bob\0${PASSWORD}`)), SERVER_ERROR);
    assert.deepEqual(h.users.calls, [['setPassword', 'bob', PASSWORD]]);
    assert.ok(h.logs.some((call) => call.level === 'error' && asLogged(call).includes('EACCES')));
  });
});

describe('handleRequest: CONFIG 0x05 delete user', () => {
  test('an unknown user is badData and no session is touched', async (t) => {
    const h = await setup(t);
    const endSessionsOf = t.mock.method(h.server, 'endSessionsOf');
    assert.equal(await wire(h, config('deleteUser', 'nobody')), BAD_DATA);
    assert.deepEqual(h.users.calls, [['deleteUser', 'nobody']]);
    assert.equal(endSessionsOf.mock.callCount(), 0);
  });

  test("a known user is deleted and the user's sessions are ended", async (t) => {
    const h = await setup(t);
    const endSessionsOf = t.mock.method(h.server, 'endSessionsOf');
    assert.equal(await wire(h, config('deleteUser', 'bob')), OK);
    assert.deepEqual(h.users.calls, [['deleteUser', 'bob']]);
    assert.equal(h.users.passwords.has('bob'), false);
    assert.equal(h.users.passwords.has('carol'), true);
    assert.equal(endSessionsOf.mock.callCount(), 1);
    assert.equal(endSessionsOf.mock.calls[0]?.arguments[0], 'bob');
  });

  test('an empty name is badData; a failing directory is serverError', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, config('deleteUser', '')), BAD_DATA);
    h.users.failure = new Error('disk full');
    assert.equal(await wire(h, config('deleteUser', 'bob')), SERVER_ERROR);
  });

  test('without a user directory, badData', async (t) => {
    const h = await setup(t, { hasUsers: false });
    assert.equal(await wire(h, config('deleteUser', 'bob')), BAD_DATA);
  });
});

describe('handleRequest: every target that takes a name applies the user-name rule', () => {
  // A name with ":" could hit a users-file line by its secret field; one with "/" or ".." a path.
  const INVALID = [
    'bob:{PLAIN}pw',
    'bob:',
    '../bob',
    '.bob',
    'a/b',
    'bob ',
    'a\u202eb',
    'ë'.repeat(33),
    'a'.repeat(65),
  ];

  test('delete user: badData, the directory is not asked and no session is ended', async (t) => {
    const h = await setup(t);
    const endSessionsOf = t.mock.method(h.server, 'endSessionsOf');
    for (const name of INVALID) {
      assert.equal(await wire(h, config('deleteUser', name)), BAD_DATA, name);
    }
    assert.deepEqual(h.users.calls, []);
    assert.equal(endSessionsOf.mock.callCount(), 0);
  });

  test('delete admin: badData, and the admins file is unchanged', async (t) => {
    const h = await setup(t, { admins: { root: ROOT_TOKEN, ops: OPS_TOKEN } });
    const remove = t.mock.method(h.admins, 'remove');
    const before = await readFile(h.adminsPath, 'utf8');
    for (const name of [...INVALID, 'ops:{SSHA256}']) {
      assert.equal(await wire(h, config('deleteAdmin', name)), BAD_DATA, name);
    }
    assert.equal(remove.mock.callCount(), 0);
    assert.equal(await readFile(h.adminsPath, 'utf8'), before);
    assert.equal(h.admins.count, 2);
  });

  test('end sessions: badData, and no session is looked up', async (t) => {
    const h = await setup(t);
    const endSessionsOf = t.mock.method(h.server, 'endSessionsOf');
    for (const name of INVALID) {
      assert.equal(await wire(h, config('endSessions', name)), BAD_DATA, name);
    }
    assert.equal(endSessionsOf.mock.callCount(), 0);
  });
});

describe('handleRequest: CONFIG 0x06 end sessions', () => {
  test('ends the sessions of the named user', async (t) => {
    const h = await setup(t);
    const endSessionsOf = t.mock.method(h.server, 'endSessionsOf');
    assert.equal(await wire(h, config('endSessions', 'bob')), OK);
    assert.equal(endSessionsOf.mock.callCount(), 1);
    assert.equal(endSessionsOf.mock.calls[0]?.arguments[0], 'bob');
    assert.deepEqual(h.users.calls, [], 'the user is not deleted');
  });

  test('an empty name is badData', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, config('endSessions', '')), BAD_DATA);
  });
});

describe('handleRequest: extension targets', () => {
  test('answers 0x03 for an extension target the server does not serve, after the token', async (t) => {
    const h = await setup(t);
    assert.equal(await wire(h, get('userInfo')), '03000100');
    assert.equal(await wire(h, config('addAppPassword', 'bob\0phone')), '03000100');
    assert.equal(await wire(h, get('userInfo', 'wrong-token-0000')), AUTH_FAILED);
  });

  test('hands DATA and the admin to a registered handler: its answer, 0x04 on MonitorRefusal, 0x06 on anything else', async (t) => {
    const h = await setup(t);
    const seen: string[] = [];
    const backends: MonitorBackends = {
      ...h.backends,
      extensions: {
        get: {
          userInfo: (data, { admin }) => {
            seen.push(`${admin}:${data.toString()}`);
            return Promise.resolve(Buffer.from('{"user":"bob"}'));
          },
        },
        config: {
          importUidl: () => Promise.reject(new MonitorRefusal('no such user')),
          revokeAppPassword: () => Promise.reject(new Error('disk full')),
        },
      },
    };
    const info = await handleRequest(backends, { ...get('userInfo'), data: Buffer.from('bob') });
    assert.deepEqual([info.status, info.data.toString()], ['ok', '{"user":"bob"}']);
    assert.deepEqual(seen, ['root:bob']);
    assert.equal((await handleRequest(backends, config('importUidl', 'x'))).status, 'badData');
    assert.equal((await handleRequest(backends, config('revokeAppPassword', 'x'))).status, 'serverError');
  });
});
