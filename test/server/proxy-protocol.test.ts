// The PROXY protocol at the server: connections from `proxyProtocolFrom` networks start with a
// header naming the client, and that client is the session's address for everything; a trusted
// source without a header, and a header from anywhere else, are refused. The server trusts
// 127.0.0.1/32 only; an "untrusted" client binds 127.0.0.2 (all of 127/8 is loopback on Linux).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as connectTcp } from 'node:net';
import { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { connect as connectTls } from 'node:tls';
import type { Logger } from '../../src/log.js';
import type { Pop3ServerOptions } from '../../src/pop3/server.js';
import { RawClient } from '../helpers/raw-client.js';
import { startServer } from '../helpers/start-server.js';
import { pair, usePki } from '../tls/certs.js';
import { secured } from '../tls/tls-client.js';

/** A planted bug may leave a connection waiting for ever: fail instead of hanging the run. */
const bounded = { timeout: 20_000 };

const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const u16 = (n: number): number[] => [n >> 8, n & 0xff];

/** `send-proxy-v2`'s header for a TCP over IPv4 client (built by hand, as the spec draws it). */
function v2Tcp4(source: string, sourcePort: number, destination: string, destinationPort: number): Buffer {
  const body = [
    ...source.split('.').map(Number),
    ...destination.split('.').map(Number),
    ...u16(sourcePort),
    ...u16(destinationPort),
  ];
  return Buffer.from([...SIG, 0x21, 0x11, ...u16(body.length), ...body]);
}
const V2_LOCAL = Buffer.from([...SIG, 0x20, 0x00, 0, 0]);
const V2_TCP6 = Buffer.from([
  ...SIG,
  0x21,
  0x21,
  0,
  36,
  ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7],
  ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11],
  ...u16(40000),
  ...u16(110),
]);
const V1 = 'PROXY TCP4 203.0.113.7 10.0.0.11 51234 110\r\n';

interface Entry {
  readonly level: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A logger that keeps every entry with its level, and lets a test wait for one. */
class LogRecorder implements Logger {
  readonly entries: Entry[] = [];
  #waiters: (() => void)[] = [];
  readonly debug = this.#at('debug');
  readonly info = this.#at('info');
  readonly warn = this.#at('warn');
  readonly error = this.#at('error');
  child(): Logger {
    return this;
  }
  #at(level: string) {
    return (fields: object, msg?: string): void => {
      this.entries.push({ ...fields, level, msg: msg ?? '' });
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
    };
  }
  async waitFor(predicate: (e: Entry) => boolean): Promise<Entry> {
    for (;;) {
      const found = this.entries.find(predicate);
      if (found !== undefined) return found;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
  /** Entries at warn or error. */
  get problems(): Entry[] {
    return this.entries.filter((e) => e.level === 'warn' || e.level === 'error');
  }
}

async function serve(
  t: TestContext,
  options: Partial<Pop3ServerOptions> = {},
): Promise<{ port: number; log: LogRecorder } & Awaited<ReturnType<typeof startServer>>> {
  const log = new LogRecorder();
  const started = await startServer(t, {
    proxyProtocolFrom: ['127.0.0.1/32'],
    logger: log,
    mailboxes: { alice: ['Subject: one\r\n\r\nbody\r\n'] },
    ...options,
  });
  return { ...started, log };
}

const untrusted = { localAddress: '127.0.0.2' };

test(
  'a v1 header from a trusted balancer: the client inside is the session address everywhere',
  bounded,
  async (t) => {
    // The client is not local now: its password needs TLS, or this.
    const { server, port, log } = await serve(t, { allowCleartextLogin: true });
    const connected = once(server, 'connect');
    const loggedIn = once(server, 'login');
    const client = await RawClient.connect(port);
    client.write(V1);
    await client.waitFor('+OK Poplar');
    const [info] = (await connected) as [{ remoteAddress: string; remotePort: number }];
    assert.equal(info.remoteAddress, '203.0.113.7');
    assert.equal(info.remotePort, 51234);
    const opened = await log.waitFor((e) => e.msg === 'connection opened');
    assert.equal(opened['remote'], '203.0.113.7');
    assert.equal(opened['port'], 51234);
    assert.deepEqual(
      server.sessions().map((s) => s.remoteAddress),
      ['203.0.113.7'],
    );
    client.write('USER alice\r\nPASS wrong\r\n');
    await client.waitFor('-ERR [AUTH]');
    // The login throttle counts the client's address.
    const failed = await log.waitFor((e) => e.msg === 'login failed');
    assert.equal(failed['remote'], '203.0.113.7');
    assert.equal(failed['failures'], 1);
    client.write('USER alice\r\nPASS pw\r\n');
    await client.waitFor('+OK alice');
    const [login] = (await loggedIn) as [{ remoteAddress: string }];
    assert.equal(login.remoteAddress, '203.0.113.7');
    client.write('QUIT\r\n');
    await client.closed();
    assert.deepEqual(
      log.problems.map((e) => e.msg),
      ['login failed'],
    );
  },
);

test(
  'a v2 header with CAPA in the same write: CAPA is answered once, after the greeting',
  bounded,
  async (t) => {
    const { server, port } = await serve(t);
    const client = await RawClient.connect(port);
    client.write(
      Buffer.concat([v2Tcp4('203.0.113.7', 40000, '10.0.0.11', 110), Buffer.from('CAPA\r\nQUIT\r\n')]),
    );
    const text = await client.closed();
    assert.match(text, /^\+OK Poplar[^\r]*\r\n\+OK[^\r]*\r\n(?:[^\r]*\r\n)*?\.\r\n\+OK[^\r]*\r\n$/);
    assert.equal(text.split('IMPLEMENTATION').length, 2, 'CAPA answered exactly once');
    assert.equal(server.stats.connectionsRefused, 0);
  },
);

test('a v2 TCP6 header: the IPv6 client is the session address', bounded, async (t) => {
  const { server, port } = await serve(t);
  const client = await RawClient.connect(port);
  client.write(V2_TCP6);
  await client.waitFor('+OK Poplar');
  assert.deepEqual(
    server.sessions().map((s) => s.remoteAddress),
    ['2001:db8::7'],
  );
});

for (const [name, header] of [
  ['v2 LOCAL (a health check)', V2_LOCAL],
  ['v1 UNKNOWN', Buffer.from('PROXY UNKNOWN\r\n')],
] as const) {
  test(`${name}: served, with the balancer's own address`, bounded, async (t) => {
    const { server, port, log } = await serve(t);
    const client = await RawClient.connect(port);
    client.write(Buffer.concat([header, Buffer.from('NOOP\r\n')]));
    await client.waitFor('+OK Poplar');
    assert.deepEqual(
      server.sessions().map((s) => s.remoteAddress),
      ['127.0.0.1'],
    );
    client.close();
    await log.waitFor((e) => e.msg === 'connection closed');
    assert.deepEqual(log.problems, []);
  });
}

test('a trusted source without a header is closed unserved, with one warning', bounded, async (t) => {
  const { server, port, log } = await serve(t);
  const client = await RawClient.connect(port);
  client.write('CAPA\r\n');
  assert.equal(await client.closed(), '');
  const warned = await log.waitFor((e) => e.level === 'warn');
  assert.equal(warned.msg, 'PROXY protocol header expected: connection closed');
  assert.equal(warned['remote'], '127.0.0.1');
  assert.equal(warned['reason'], 'NOT_PROXY');
  assert.equal(log.problems.length, 1);
  assert.equal(server.stats.connectionsTotal, 0);
});

test(
  'a trusted source that sends nothing is closed after proxyHeaderTimeoutMs, with one warning',
  bounded,
  async (t) => {
    const { port, log } = await serve(t, { limits: { proxyHeaderTimeoutMs: 50 } });
    const client = await RawClient.connect(port);
    assert.equal(await client.closed(), '');
    const warned = await log.waitFor((e) => e.level === 'warn');
    assert.equal(warned.msg, 'PROXY protocol header expected: connection closed');
    assert.equal(warned['reason'], 'timeout');
  },
);

test('a header that does not complete in time is closed and logged', bounded, async (t) => {
  const { port, log } = await serve(t, { limits: { proxyHeaderTimeoutMs: 50 } });
  const client = await RawClient.connect(port);
  client.write('PROXY TCP4 203.0.113.7 ');
  assert.equal(await client.closed(), '');
  const warned = await log.waitFor((e) => e.level === 'warn');
  assert.equal(warned.msg, 'no valid PROXY protocol header: connection closed');
  assert.equal(warned['reason'], 'timeout');
  assert.equal(warned['received'], 23);
});

test('a truncated v2 header, then the end of the stream: closed and logged', bounded, async (t) => {
  const { port, log } = await serve(t);
  const client = await RawClient.connect(port);
  client.socket.end(v2Tcp4('203.0.113.7', 1, '10.0.0.11', 110).subarray(0, 20));
  assert.equal(await client.closed(), '');
  const warned = await log.waitFor((e) => e.level === 'warn');
  assert.equal(warned['reason'], 'closed');
  assert.equal(warned['received'], 20);
});

for (const [name, bytes, code] of [
  ['bad v1 syntax', 'PROXY TCP4 203.0.113.007 10.0.0.11 1 110\r\nCAPA\r\n', 'BAD_V1'],
  ['a v1 line over 107 bytes', `PROXY UNKNOWN ${'f'.repeat(120)}\r\n`, 'V1_TOO_LONG'],
  [
    'a v2 header of version 1',
    Buffer.from([...SIG, 0x11, 0x11, 0, 12, ...Array<number>(12).fill(1)]),
    'BAD_VERSION',
  ],
  [
    'a v2 header with command 2',
    Buffer.from([...SIG, 0x22, 0x11, 0, 12, ...Array<number>(12).fill(1)]),
    'BAD_COMMAND',
  ],
  [
    'a v2 header with family 5',
    Buffer.from([...SIG, 0x21, 0x51, 0, 12, ...Array<number>(12).fill(1)]),
    'BAD_FAMILY',
  ],
  ['a v2 header longer than 4096 bytes', Buffer.from([...SIG, 0x21, 0x11, 0x10, 0x01]), 'BAD_LENGTH'],
] as const) {
  test(`${name}: closed unserved and logged (${code})`, bounded, async (t) => {
    const { server, port, log } = await serve(t);
    const client = await RawClient.connect(port);
    client.write(bytes);
    assert.equal(await client.closed(), '');
    const warned = await log.waitFor((e) => e.level === 'warn');
    assert.equal(warned.msg, 'no valid PROXY protocol header: connection closed');
    assert.equal(warned['reason'], code);
    assert.equal(server.stats.connectionsTotal, 0);
  });
}

for (const [name, header] of [
  ['v1', Buffer.from(V1)],
  ['v2', v2Tcp4('203.0.113.7', 40000, '10.0.0.11', 110)],
] as const) {
  test(
    `a ${name} header from an untrusted address is refused with -ERR before any line of it runs`,
    bounded,
    async (t) => {
      const { server, port, log } = await serve(t);
      const client = await RawClient.connect(port, untrusted);
      await client.waitFor('+OK Poplar');
      client.write(Buffer.concat([header, Buffer.from('CAPA\r\n')]));
      const text = await client.closed();
      const afterGreeting = text.slice(text.indexOf('\r\n') + 2);
      // The v2 signature holds "QUIT\n": it must not have been answered "+OK".
      assert.equal(afterGreeting, '-ERR PROXY protocol header not expected from your address\r\n');
      const warned = await log.waitFor((e) => e.level === 'warn');
      assert.equal(warned.msg, 'PROXY protocol header not expected: refused');
      assert.equal(warned['remote'], '127.0.0.2');
      assert.equal(server.stats.connectionsTotal, 1);
    },
  );
}

test(
  'a second header behind a trusted one (a client spoofing through the balancer) is refused',
  bounded,
  async (t) => {
    const { port } = await serve(t);
    const client = await RawClient.connect(port);
    client.write(V1 + 'PROXY TCP4 198.51.100.1 10.0.0.11 1 110\r\n');
    const text = await client.closed();
    assert.match(text, /^\+OK Poplar[^\r]*\r\n-ERR PROXY protocol header not expected/);
  },
);

test('an untrusted client without a header is served as usual', bounded, async (t) => {
  const { server, port } = await serve(t);
  const client = await RawClient.connect(port, untrusted);
  await client.waitFor('+OK Poplar');
  assert.deepEqual(
    server.sessions().map((s) => s.remoteAddress),
    ['127.0.0.2'],
  );
});

test('maxConnectionsPerIp counts the clients the headers name, not the balancer', bounded, async (t) => {
  const { server, port } = await serve(t, { limits: { maxConnectionsPerIp: 1 } });
  const first = await RawClient.connect(port);
  first.write(v2Tcp4('203.0.113.7', 1, '10.0.0.11', 110));
  await first.waitFor('+OK Poplar');
  const other = await RawClient.connect(port);
  other.write(v2Tcp4('203.0.113.8', 1, '10.0.0.11', 110));
  await other.waitFor('+OK Poplar');
  const refusal = once(server, 'refuse');
  const again = await RawClient.connect(port);
  again.write(v2Tcp4('203.0.113.7', 2, '10.0.0.11', 110));
  assert.equal(await again.closed(), '-ERR [SYS/TEMP] too many connections from your address\r\n');
  assert.deepEqual(await refusal, [
    { remoteAddress: '203.0.113.7', reason: 'too many connections from your address' },
  ]);
});

test(
  'connections still reading their header are at most maxConnections; close() ends them',
  bounded,
  async (t) => {
    // Long enough that only close() can end them within the test's time.
    const { server, port } = await serve(t, { limits: { maxConnections: 2, proxyHeaderTimeoutMs: 600_000 } });
    const waiting = [await RawClient.connect(port), await RawClient.connect(port)];
    const refusal = once(server, 'refuse');
    const third = await RawClient.connect(port);
    assert.equal(
      await third.closed(),
      '-ERR [SYS/TEMP] too many connections waiting for their PROXY header\r\n',
    );
    await refusal;
    await server.close({ graceMs: 0 });
    for (const socket of waiting) assert.equal(await socket.closed(), '');
  },
);

test(
  'POP3S: the header, then the TLS handshake, in one write; the client inside is the address',
  bounded,
  async (t) => {
    const pki = await usePki();
    const { server } = await serve(t, { tls: pair(pki.localhost) });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0, tls: true });
    const raw = connectTcp({ port, host: '127.0.0.1' });
    raw.setNoDelay(true);
    t.after(() => raw.destroy());
    await once(raw, 'connect');
    // The header goes out in the same write as the ClientHello, so the server must put the hello back.
    let header: Buffer | undefined = v2Tcp4('203.0.113.7', 40000, '10.0.0.11', 995);
    const carrier = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        raw.write(header === undefined ? chunk : Buffer.concat([header, chunk]), callback);
        header = undefined;
      },
      final(callback) {
        raw.end();
        callback();
      },
    });
    raw.on('data', (chunk: Buffer) => carrier.push(chunk));
    raw.on('end', () => carrier.push(null));
    const secure = connectTls({ socket: carrier, ca: pki.ca, servername: 'localhost' });
    t.after(() => secure.destroy());
    await secured(secure);
    const greeting = await new Promise<string>((resolve) =>
      secure.once('data', (d: Buffer) => {
        resolve(d.toString());
      }),
    );
    assert.match(greeting, /^\+OK Poplar/);
    assert.deepEqual(
      server.sessions().map((s) => [s.remoteAddress, s.state]),
      [['203.0.113.7', 'AUTHORIZATION']],
    );
  },
);
