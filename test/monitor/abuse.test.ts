// The monitor listener against slow, partial, oversized, garbage and greedy clients: each gets its
// status byte (or a closed connection) at once or at the deadline, and POP3 service goes on.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { RawClient } from '../helpers/raw-client.js';
import type { AdminStore } from '../../src/monitor/admins.js';
import type { MonitoredPop3 } from '../../src/monitor/handlers.js';
import { MonitorServer } from '../../src/monitor/server.js';
import {
  CapturingLogger,
  hex,
  PASSWORDS,
  rawExchange,
  startMonitorFixture,
  type MonitorFixture,
} from './setup.js';

const ROOT_HEX = '31323334353637383961626364656631';
/** A whole valid request: GET 0x01 (concurrent connections) as the original client sends it. */
const GET_CONCURRENT = hex(`01 ${ROOT_HEX} 00 01 0001 00`);
const BAD_DATA = hex('04 0001 00');
/** The same GET with a wrong token. */
const WRONG_GET = hex(`01 ${'41'.repeat(16)} 00 01 0001 00`);
const AUTH_FAILED = hex('05 0001 00');
/** For a monitor whose requests never get past the token check. */
const NO_POP3 = { stats: { connectionsOpen: 0 } } as unknown as MonitoredPop3;

/** Admins whose token checks end when the test says: `pending[i](admin)` answers the i-th check. */
function manualChecks(): {
  admins: AdminStore;
  pending: ((admin: string | undefined) => void)[];
  called: (n: number) => Promise<void>;
} {
  const pending: ((admin: string | undefined) => void)[] = [];
  let wake = (): void => {};
  const admins = {
    verify: (): Promise<string | undefined> =>
      new Promise((resolve) => {
        pending.push(resolve);
        wake();
      }),
  } as unknown as AdminStore;
  const called = async (n: number): Promise<void> => {
    while (pending.length < n) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  };
  return { admins, pending, called };
}
/**
 * For the "at once" cases: a deadline far longer than the test's own timeout, so that an answer
 * that only came at the deadline fails the test instead of passing slowly.
 */
const LONG_DEADLINE = { requestDeadlineMs: 600_000, headerDeadlineMs: 600_000 };
const AT_ONCE = { timeout: 30_000 };

async function raw(t: TestContext, port: number, localAddress?: string): Promise<RawClient> {
  const client = await RawClient.connect(port, localAddress === undefined ? {} : { localAddress });
  t.after(() => {
    client.close();
  });
  return client;
}

/** A full POP3 session (login, STAT, RETR, QUIT) on its own connection. */
async function fullPop3Session(f: MonitorFixture): Promise<void> {
  const client = await Pop3TestClient.connect(f.pop3Port);
  try {
    assert.match(client.greeting, /^\+OK Poplar POP3 server ready/);
    assert.equal(await client.login('alice', PASSWORDS.alice), '+OK alice has 2 messages (47 octets)');
    assert.equal(await client.command('STAT'), '+OK 2 47');
    const retr = await client.multi('RETR 2');
    assert.equal(retr.status, '+OK 24 octets');
    assert.deepEqual(retr.lines, ['Subject: two', '', 'second']);
    assert.equal(await client.command('QUIT'), '+OK Poplar signing off (2 messages left)');
    assert.equal(await client.closed(), '');
  } finally {
    client.close();
  }
}

test('a request whose DATA never completes gets 0x04 at the deadline', async (t) => {
  const f = await startMonitorFixture(t, { monitorLimits: { requestDeadlineMs: 200 } });
  // CONFIG 0x04 announcing 10 bytes of data, of which 3 are sent.
  const exchange = await rawExchange(f.monitorPort, hex(`01 ${ROOT_HEX} 01 04 000a 626f62`));
  assert.deepEqual(exchange.received, BAD_DATA);
  assert.equal(exchange.chunks.length, 1);
  const entry = await f.log.waitFor('monitor request too slow');
  assert.equal(entry.fields['received'], 24);
  assert.equal(f.monitor.counts.get('none:badData'), 1);
  assert.equal(f.users.hasUser('bob'), true, 'nothing was acted upon');
});

test('a request with only part of its header is closed without a response at the deadline', async (t) => {
  const f = await startMonitorFixture(t, { monitorLimits: { requestDeadlineMs: 200 } });
  const exchange = await rawExchange(f.monitorPort, hex(`01 ${ROOT_HEX.slice(0, 18)}`));
  assert.deepEqual(exchange.received, Buffer.alloc(0));
  assert.deepEqual(exchange.events, ['end', 'close']);
  assert.equal((await f.log.waitFor('monitor request too slow')).fields['received'], 10);
  assert.equal(f.monitor.counts.get('none:closed'), 1);
});

test('a client that connects and sends nothing is closed at the deadline', async (t) => {
  const f = await startMonitorFixture(t, { monitorLimits: { requestDeadlineMs: 200 } });
  const client = await raw(t, f.monitorPort);
  assert.equal(await client.closed(), '');
  assert.equal((await f.log.waitFor('monitor request too slow')).fields['received'], 0);
  // The monitor still answers afterwards.
  assert.equal(await f.get('concurrentConnections'), 0n);
});

test('an oversized DLEN gets 0x04 at once; DLEN at the limit is read', AT_ONCE, async (t) => {
  const f = await startMonitorFixture(t, { monitorLimits: LONG_DEADLINE });
  // 60000 (0xea60) with the default maxDataBytes of 8192: no DATA sent, no waiting for it.
  const client = await raw(t, f.monitorPort);
  client.write(hex(`01 ${ROOT_HEX} 01 04 ea60`));
  assert.equal(await client.closed(), BAD_DATA.toString('latin1'));
  // One byte over the limit.
  const over = await raw(t, f.monitorPort);
  over.write(hex(`01 ${ROOT_HEX} 00 00 2001`));
  assert.equal(await over.closed(), BAD_DATA.toString('latin1'));
  // Exactly the limit: a GET whose 8192 DATA bytes are ignored.
  const limit = await rawExchange(f.monitorPort, [
    hex(`01 ${ROOT_HEX} 00 01 2000`),
    Buffer.alloc(8192, 0x61),
  ]);
  assert.deepEqual(limit.received, hex('00 0004 00000000'));
  assert.equal(f.monitor.counts.get('none:badData'), 2);
});

test('framing errors are answered at once: version 0x01, type 0x02, target 0x03', AT_ONCE, async (t) => {
  const f = await startMonitorFixture(t, { monitorLimits: LONG_DEADLINE });
  const answer = async (bytes: Buffer): Promise<Buffer> => (await rawExchange(f.monitorPort, bytes)).received;

  // Garbage from the first byte: an HTTP request, or one stray byte, without the rest.
  assert.deepEqual(await answer(Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')), hex('01 0001 00'));
  assert.deepEqual(await answer(hex('02')), hex('01 0001 00'));
  assert.deepEqual(await answer(hex('00')), hex('01 0001 00'));
  // Version ok, type 0x09: answered as soon as the type byte is there.
  assert.deepEqual(await answer(hex(`01 ${ROOT_HEX} 09`)), hex('02 0001 00'));
  assert.deepEqual(await answer(hex(`01 ${ROOT_HEX} 09 00 0001 00`)), hex('02 0001 00'));
  // Unknown targets, GET and CONFIG.
  assert.deepEqual(await answer(hex(`01 ${ROOT_HEX} 00 30`)), hex('03 0001 00'));
  assert.deepEqual(await answer(hex(`01 ${ROOT_HEX} 00 30 0001 00`)), hex('03 0001 00'));
  assert.deepEqual(await answer(hex(`01 ${ROOT_HEX} 00 0b 0001 00`)), hex('03 0001 00'));
  assert.deepEqual(await answer(hex(`01 ${ROOT_HEX} 01 0b 0001 00`)), hex('03 0001 00'));
  // A framing error comes before the token check: a wrong token gets the framing error.
  assert.deepEqual(await answer(hex(`01 ${'00'.repeat(16)} 00 30 0001 00`)), hex('03 0001 00'));

  assert.equal(f.monitor.counts.get('none:badVersion'), 3);
  assert.equal(f.monitor.counts.get('none:badType'), 2);
  assert.equal(f.monitor.counts.get('none:badTarget'), 5);
  assert.equal(f.log.find('monitor request too slow').length, 0);
});

test('idle connections holding every place make room for a request sent in one write', AT_ONCE, async (t) => {
  const f = await startMonitorFixture(t, { monitorLimits: { ...LONG_DEADLINE, maxConcurrentRequests: 3 } });
  // From three other addresses, so that only the limit in all applies.
  const idle = [
    await raw(t, f.monitorPort, '127.0.0.2'),
    await raw(t, f.monitorPort, '127.0.0.3'),
    await raw(t, f.monitorPort, '127.0.0.4'),
  ];
  // The listener handles connections in the order it accepts them: this one comes after the three.
  assert.deepEqual(await f.request('get', 'concurrentConnections'), { status: 'ok', data: hex('00000000') });
  assert.equal(await idle[0]?.closed(), '', 'the oldest idle one made room');
  assert.ok(!(idle[1]?.isClosed ?? true) && !(idle[2]?.isClosed ?? true), 'the others are still waiting');
  assert.equal(f.monitor.counts.get('none:closed'), 1);
});

test(
  'the address holding the most places loses its oldest idle one, not an older one of another',
  AT_ONCE,
  async (t) => {
    const f = await startMonitorFixture(t, { monitorLimits: { ...LONG_DEADLINE, maxConcurrentRequests: 3 } });
    const other = await raw(t, f.monitorPort, '127.0.0.3'); // the oldest of all
    const first = await raw(t, f.monitorPort, '127.0.0.2');
    const second = await raw(t, f.monitorPort, '127.0.0.2');
    const third = await raw(t, f.monitorPort, '127.0.0.2');
    third.write(GET_CONCURRENT);
    assert.deepEqual(Buffer.from(await third.closed(), 'latin1'), hex('00 0004 00000000'));
    assert.equal(await first.closed(), '', 'the oldest of 127.0.0.2 made room');
    assert.equal(second.isClosed, false);
    assert.equal(other.isClosed, false, 'another address keeps its place');
  },
);

test(
  'a connection that sends no header within headerDeadlineMs is closed; a started request is not',
  AT_ONCE,
  async (t) => {
    const f = await startMonitorFixture(t, {
      monitorLimits: { requestDeadlineMs: 600_000, headerDeadlineMs: 100 },
    });
    const started = await raw(t, f.monitorPort);
    started.write(hex(`01 ${ROOT_HEX} 01 04 000a 626f62`)); // a whole header, 3 of 10 DATA bytes
    const idle = await raw(t, f.monitorPort);
    idle.write(hex('01 3132')); // 3 bytes of the header
    assert.equal(await idle.closed(), '');
    assert.equal((await f.log.waitFor('monitor request too slow')).fields['received'], 3);
    assert.equal(started.isClosed, false, 'its header came in time; DATA has the request deadline');
  },
);

test(
  'when every place is taken by a request being answered, a new connection is closed at once',
  AT_ONCE,
  async (t) => {
    // Admins whose token check never ends: each request holds its place, being answered.
    const checks = manualChecks();
    const monitor = new MonitorServer(
      { pop3: NO_POP3, admins: checks.admins, logger: new CapturingLogger(), refusesDefaultToken: false },
      { ...LONG_DEADLINE, maxConcurrentRequests: 2 },
    );
    const { port } = await monitor.listen({ host: '127.0.0.1', port: 0 });
    t.after(() => monitor.close());
    const held = [await raw(t, port, '127.0.0.2'), await raw(t, port, '127.0.0.3')];
    for (const c of held) c.write(GET_CONCURRENT);
    await checks.called(2);
    const refused = await rawExchange(port, GET_CONCURRENT);
    assert.deepEqual(refused.received, Buffer.alloc(0));
    assert.equal(monitor.counts.get('none:closed'), 1);
    assert.ok(held.every((c) => !c.isClosed));
  },
);

test('POP3 is served while the monitor is under abuse', AT_ONCE, async (t) => {
  const f = await startMonitorFixture(t, { monitorLimits: { ...LONG_DEADLINE, maxConcurrentRequests: 4 } });
  await raw(t, f.monitorPort); // silent
  const partial = await raw(t, f.monitorPort);
  partial.write(hex(`01 ${ROOT_HEX}`));
  const slow = await raw(t, f.monitorPort);
  slow.write(hex(`01 ${ROOT_HEX} 01 04 0100 61`));
  const refused = await rawExchange(f.monitorPort, hex(`ff ${ROOT_HEX}`));
  assert.deepEqual(refused.received, hex('01 0001 00'));
  const flood = await Promise.all(
    Array.from({ length: 10 }, () => rawExchange(f.monitorPort, GET_CONCURRENT)),
  );
  for (const { received } of flood) {
    // Each is answered, or closed without a response to make room for a newer one.
    assert.ok(received.length === 0 || received.equals(hex('00 0004 00000000')), received.toString('hex'));
  }

  await fullPop3Session(f);
  await fullPop3Session(f);
  assert.equal(await f.get('historicConnections'), 2n, 'monitor connections are not POP3 connections');
  assert.equal(await f.get('messagesRetrieved'), 2n);
});

test(
  'clients that never read the response, or never close, do not block the next request',
  AT_ONCE,
  async (t) => {
    const f = await startMonitorFixture(t, { monitorLimits: { ...LONG_DEADLINE, maxConcurrentRequests: 2 } });
    const sockets: Socket[] = [];
    t.after(() => {
      for (const s of sockets) s.destroy();
    });
    const open = async (options: { allowHalfOpen: boolean }): Promise<Socket> => {
      const socket = connect({ host: '127.0.0.1', port: f.monitorPort, ...options });
      sockets.push(socket);
      socket.on('error', () => {});
      await once(socket, 'connect');
      return socket;
    };

    // Never reads: the response waits, unread, in the socket; the client never closes.
    for (let i = 0; i < 3; i++) {
      const socket = await open({ allowHalfOpen: false });
      socket.write(GET_CONCURRENT);
      await once(socket, 'readable'); // the response is there; nothing calls read()
    }
    // Reads the response and the server's FIN, but keeps its own side open.
    for (let i = 0; i < 3; i++) {
      const socket = await open({ allowHalfOpen: true });
      socket.write(GET_CONCURRENT);
      const data = once(socket, 'data');
      await once(socket, 'end');
      assert.deepEqual((await data)[0], hex('00 0004 00000000'));
    }

    // With room for two requests at a time, the next one is still answered.
    assert.equal(await f.get('concurrentConnections'), 0n);
    assert.equal(f.monitor.counts.get('none:closed') ?? 0, 0, 'nobody was turned away');
    await fullPop3Session(f);
  },
);

test(
  'past its free wrong tokens an address is held back: its requests wait, unchecked; others do not',
  AT_ONCE,
  async (t) => {
    const f = await startMonitorFixture(t, {
      monitorLimits: {
        ...LONG_DEADLINE,
        freeTokenFailures: 2,
        tokenLockoutMs: 600_000,
        tokenFailureLogIntervalMs: 0, // a line for every request, to see each one
      },
    });
    for (let i = 0; i < 3; i++) {
      assert.deepEqual((await rawExchange(f.monitorPort, WRONG_GET)).received, AUTH_FAILED);
    }
    const lines = (): unknown[] =>
      f.log.find('monitor request with a wrong token').map(({ fields: { failures, held, lockoutMs } }) => ({
        failures,
        held,
        isLockedOut: typeof lockoutMs === 'number' && lockoutMs > 0,
      }));
    const failed = { failures: 1, held: 0 };
    await f.log.waitFor('monitor request with a wrong token', 3);
    assert.deepEqual(lines(), [
      { ...failed, isLockedOut: false },
      { ...failed, isLockedOut: false },
      { ...failed, isLockedOut: true },
    ]);
    // A request from the locked-out address, even with the right token, waits unchecked.
    const waiting = await raw(t, f.monitorPort);
    waiting.write(GET_CONCURRENT);
    await f.log.waitFor('monitor request held');
    assert.deepEqual(lines()[3], { failures: 0, held: 1, isLockedOut: true });
    // From another address, the right token is answered at once.
    const elsewhere = await raw(t, f.monitorPort, '127.0.0.5');
    elsewhere.write(GET_CONCURRENT);
    assert.deepEqual(Buffer.from(await elsewhere.closed(), 'latin1'), hex('00 0004 00000000'));
    assert.equal(waiting.isClosed, false);
    assert.equal(f.monitor.counts.get('get:authFailed'), 3);
  },
);

test(
  'guesses sent side by side are checked one at a time; a closed one never; a right one gets its turn',
  AT_ONCE,
  async (t) => {
    const checks = manualChecks();
    const log = new CapturingLogger();
    const monitor = new MonitorServer(
      { pop3: NO_POP3, admins: checks.admins, logger: log, refusesDefaultToken: false },
      { ...LONG_DEADLINE, freeTokenFailures: 0, tokenLockoutMs: 1 },
    );
    const { port } = await monitor.listen({ host: '127.0.0.1', port: 0 });
    t.after(() => monitor.close());
    const guesses = await Promise.all([raw(t, port), raw(t, port), raw(t, port), raw(t, port)]);
    for (const c of guesses) c.write(WRONG_GET);
    await checks.called(1);
    await log.waitFor('monitor request held', 3);
    assert.equal(checks.pending.length, 1, 'one token checked, three wait');
    assert.ok(guesses.every((c) => !c.isClosed));
    // The guesses give up; the one being checked fails.
    for (const c of guesses) c.close();
    checks.pending[0]?.(undefined);
    // The operator's request from the same address: the next token checked is its own.
    const operator = await raw(t, port);
    operator.write(GET_CONCURRENT);
    await checks.called(2);
    checks.pending[1]?.('root');
    assert.deepEqual(Buffer.from(await operator.closed(), 'latin1'), hex('00 0004 00000000'));
    assert.equal(checks.pending.length, 2);
  },
);

test('wrong tokens are logged once per address per interval, not once per guess', AT_ONCE, async (t) => {
  const f = await startMonitorFixture(t, { monitorLimits: { ...LONG_DEADLINE, freeTokenFailures: 1000 } });
  for (let i = 0; i < 20; i++) {
    assert.deepEqual((await rawExchange(f.monitorPort, WRONG_GET)).received, AUTH_FAILED);
  }
  assert.equal(f.monitor.counts.get('get:authFailed'), 20);
  const [line, ...more] = f.log.find('monitor request with a wrong token');
  assert.deepEqual(more, []);
  assert.equal(line?.level, 'warn');
  assert.deepEqual(line.fields, {
    component: 'monitor',
    remote: '127.0.0.1',
    failures: 1,
    held: 0,
    lockoutMs: 0,
  });
});
