// Security probe finding 16: LIST and UIDL of a very large maildrop must not hold up the server.
// The listing is built and written in batches; with a client that does not read, it stops at the
// socket's buffer, and other sessions are served meanwhile. The slow client comes through a Unix
// socket, whose small kernel buffer (about 200 KiB) is far below the listing, so where the server
// stops does not depend on how much loopback TCP would buffer.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Pop3Server } from '../../src/pop3/server.js';
import { LISTING_BATCH_LINES } from '../../src/pop3/reply.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { startServer } from '../helpers/start-server.js';
import { tempDir } from '../helpers/temp-dir.js';

const MESSAGE_COUNT = 100_000;

/** A client on a Unix socket served by `server`, which keeps what it received as text. */
async function unixClient(
  t: TestContext,
  server: Pop3Server,
): Promise<{ socket: Socket; text: () => string; waitFor: (s: string) => Promise<void> }> {
  const path = join(await tempDir(t), 'pop3.sock');
  const listener = createNetServer({ allowHalfOpen: true }, (socket) => {
    server.handleConnection(socket);
  });
  listener.listen(path);
  await once(listener, 'listening');
  t.after(() => {
    listener.close();
  });
  const socket = connect(path);
  t.after(() => {
    socket.destroy();
  });
  let received = '';
  let wake: (() => void) | undefined;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    received += chunk;
    wake?.();
  });
  socket.on('close', () => wake?.());
  const waitFor = async (expected: string): Promise<void> => {
    while (!received.includes(expected)) {
      if (socket.destroyed) throw new Error(`closed before ${expected}; got ${received.slice(-200)}`);
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  return { socket, text: () => received, waitFor };
}

for (const [verb, line, first] of [
  ['UIDL', (n: number) => `${n} m${n}`, '+OK unique-id listing follows'],
  ['LIST', (n: number) => `${n} 3`, `+OK ${MESSAGE_COUNT} messages (${3 * MESSAGE_COUNT} octets)`],
] as const) {
  test(`${verb} of ${MESSAGE_COUNT} messages to a client that stops reading: another session is served while it is written`, async (t) => {
    const { server, port } = await startServer(t, {
      allowCleartextLogin: true, // a Unix socket has no address, so it is not local
      mailboxes: { alice: Array.from({ length: MESSAGE_COUNT }, () => 'x\r\n'), bob: ['hi\r\n'] },
    });
    const expected = `${first}\r\n${Array.from({ length: MESSAGE_COUNT }, (_, i) => `${line(i + 1)}\r\n`).join('')}.\r\n`;

    const slow = await unixClient(t, server);
    slow.socket.write('USER alice\r\nPASS pw\r\n');
    await slow.waitFor('octets)\r\n');
    const before = slow.text().length;
    slow.socket.write(`${verb}\r\n`);
    await slow.waitFor(first);
    slow.socket.pause();

    // Another session logs in and is answered while the listing is still being written.
    const other = await Pop3TestClient.connect(port);
    t.after(() => {
      other.close();
    });
    assert.match(await other.login('bob', 'secret'), /^\+OK bob has 1 message/);
    assert.equal(await other.command('NOOP'), '+OK');
    const alice = server.sessions().find((s) => s.user === 'alice');
    assert.ok(alice !== undefined);
    const handedOver = alice.bytesOut - before;
    assert.ok(
      handedOver < expected.length / 2,
      `${handedOver} of ${expected.length} bytes of the listing were handed to a socket nobody reads`,
    );

    slow.socket.resume();
    await slow.waitFor('\r\n.\r\n');
    assert.equal(slow.text().slice(before), expected);
  });
}

test('a long UIDL to a client that reads at once still lets the event loop turn between batches', async (t) => {
  const { port } = await startServer(t, {
    mailboxes: { alice: Array.from({ length: MESSAGE_COUNT }, () => 'x\r\n') },
  });
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  assert.match(await client.login('alice', 'pw'), /^\+OK alice has 100000 messages/);
  // Counts the turns of the event loop while the listing is built, written and read.
  let turns = 0;
  let isCounting = true;
  const count = (): void => {
    turns += 1;
    if (isCounting) setImmediate(count);
  };
  setImmediate(count);
  const listing = await client.multi('UIDL');
  isCounting = false;
  assert.equal(listing.lines.length, MESSAGE_COUNT);
  assert.equal(listing.lines.at(-1), `${MESSAGE_COUNT} m${MESSAGE_COUNT}`);
  // One turn at least after every batch of lines: 100 batches here.
  assert.ok(turns >= MESSAGE_COUNT / LISTING_BATCH_LINES, `${turns} turns of the event loop`);
});
