// The implicit-TLS port (POP3S) before the handshake: every connection counts against the limits
// from the moment it is accepted, and one that never finishes its handshake is closed and freed.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { connect as connectTcp, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import type { Pop3TlsOptions } from '../../src/pop3/tls.js';
import { startServer } from '../helpers/start-server.js';
import { pair, usePki } from './certs.js';
import { LineClient } from './tls-client.js';

const pki = await usePki();
const tls: Pop3TlsOptions = pair(pki.localhost);
const trust = { ca: pki.ca };

/** A planted bug leaves a connection open for ever: fail instead of hanging the run. */
const bounded = { timeout: 30_000 };

/** Open file descriptors of this process (the server runs in it). */
const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;

/** A TCP connection to `port` that sends nothing; what it receives is kept in `received`. */
async function silent(t: TestContext, port: number): Promise<{ socket: Socket; received: Buffer[] }> {
  const socket = connectTcp({ port, host: '127.0.0.1' });
  t.after(() => socket.destroy());
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => {});
  await once(socket, 'connect');
  return { socket, received };
}

/** Resolves once the server has emitted `event` `count` times from now on. */
function events(
  server: { on(e: string, f: () => void): unknown },
  event: string,
  count: number,
): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    server.on(event, () => {
      seen += 1;
      if (seen === count) resolve();
    });
  });
}

test(
  '200 connect-and-close on the TLS port leave the descriptors, the stats and the connection count as they were',
  bounded,
  async (t) => {
    const { server } = await startServer(t, { tls });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0, tls: true });
    const before = await openFds();
    const total = server.stats.connectionsTotal;
    const closed = events(server, 'close', 200);
    for (let i = 0; i < 200; i += 1) {
      const socket = connectTcp({ port, host: '127.0.0.1' });
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.destroy();
    }
    await closed;
    assert.equal(await openFds(), before);
    assert.equal(server.connectionCount, 0);
    assert.equal(server.stats.connectionsOpen, 0);
    assert.equal(server.stats.connectionsTotal, total + 200, 'each was counted from accept');
    // The port still serves.
    const client = await LineClient.tls(port, trust);
    t.after(() => {
      client.close();
    });
    assert.match(client.greeting, /^\+OK Poplar POP3 server ready/);
  },
);

test(
  'clients that never send a ClientHello are closed by the server after the login time',
  bounded,
  async (t) => {
    const { server } = await startServer(t, { tls, limits: { loginTimeoutMs: 300 } });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0, tls: true });
    const connected = events(server, 'connect', 3);
    const clients = await Promise.all([silent(t, port), silent(t, port), silent(t, port)]);
    await connected;
    assert.equal(server.stats.connectionsOpen, 3, 'counted before any handshake');
    // The clients keep their side open: only the server can end these connections.
    await Promise.all(clients.map(({ socket }) => once(socket, 'close')));
    for (const { received } of clients) assert.equal(Buffer.concat(received).toString('latin1'), '');
    if (server.connectionCount > 0) await events(server, 'close', server.connectionCount);
    assert.equal(server.stats.connectionsOpen, 0);
  },
);

test(
  'connections waiting for their handshake count against maxConnectionsPerIp; one more is closed without a word',
  bounded,
  async (t) => {
    const { server } = await startServer(t, { tls, limits: { maxConnectionsPerIp: 3 } });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0, tls: true });
    const connected = events(server, 'connect', 3);
    const held = await Promise.all([silent(t, port), silent(t, port), silent(t, port)]);
    await connected;
    const refused = once(server, 'refuse') as Promise<[{ reason: string }]>;
    const fourth = await silent(t, port);
    const [info] = await refused;
    assert.equal(info.reason, 'too many connections from your address');
    await once(fourth.socket, 'close');
    // No cleartext -ERR on a TLS port: the client would read it as a broken TLS record.
    assert.equal(Buffer.concat(fourth.received).length, 0);
    assert.equal(server.stats.connectionsRefused, 1);
    // One of the three goes away; its place is free again for a real client.
    const freed = once(server, 'close');
    held[0].socket.destroy();
    await freed;
    const client = await LineClient.tls(port, trust);
    t.after(() => {
      client.close();
    });
    assert.match(client.greeting, /^\+OK Poplar POP3 server ready/);
  },
);

test(
  'close() ends connections still in their handshake at once, without waiting for the grace time',
  bounded,
  async (t) => {
    const { server } = await startServer(t, { tls });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0, tls: true });
    const connected = events(server, 'connect', 1);
    const { socket, received } = await silent(t, port);
    await connected;
    const clientClosed = once(socket, 'close');
    await server.close({ graceMs: 600_000 });
    await clientClosed;
    assert.equal(Buffer.concat(received).length, 0);
    assert.equal(server.connectionCount, 0);
  },
);
