// Every way a connection ends gives its slot back: a server that counts its own connections, and
// one whose counts are kept elsewhere and answer later (as a daemon worker's, kept by the primary).
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import {
  LocalConnectionSlots,
  type ConnectionLimits,
  type ConnectionRefusal,
  type ConnectionSlots,
} from '../../src/pop3/connection-slots.js';
import type { Pop3Server } from '../../src/pop3/server.js';
import { LoginThrottle } from '../../src/pop3/throttle.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { RawClient } from '../helpers/raw-client.js';
import { embed, startServer } from '../helpers/start-server.js';

const KEY = '127.0.0.1';
const bounded = { timeout: 60_000 };

/** Resolves once the server has emitted `event` `count` times from now on. */
function events(server: Pop3Server, event: 'close' | 'refuse', count: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const on = (): void => {
      seen += 1;
      if (seen < count) return;
      server.off(event, on);
      resolve();
    };
    server.on(event, on);
  });
}

test(
  'every way a connection ends gives its slot back: 30 rounds of quit, reset, failed login, kick and refusal',
  bounded,
  async (t) => {
    const slots = new LocalConnectionSlots();
    const counters = { connections: slots, loginThrottle: new LoginThrottle() };
    const { server, port } = await startServer(t, {
      counters,
      limits: { maxConnectionsPerIp: 4, maxAuthFailures: 1 },
    });
    for (let round = 0; round < 30; round++) {
      const closed = events(server, 'close', 4);
      const quits = await Pop3TestClient.connect(port);
      const resets = await RawClient.connect(port);
      const fails = await Pop3TestClient.connect(port);
      const kicked = await Pop3TestClient.connect(port);
      await resets.waitFor('\r\n');
      assert.equal(slots.count(KEY), 4);
      const refused = await RawClient.connect(port);
      assert.equal(await refused.closed(), '-ERR [SYS/TEMP] too many connections from your address\r\n');
      assert.match(await quits.command('QUIT'), /^\+OK/);
      resets.socket.resetAndDestroy();
      assert.equal(await fails.command('USER alice'), '+OK send PASS');
      assert.match(await fails.command('PASS wrong'), /^-ERR \[AUTH\].*too many failures/);
      assert.match(await kicked.login('bob', 'secret'), /^\+OK/);
      assert.equal(server.endSessionsOf('bob'), 1);
      await closed;
      for (const c of [quits, fails, kicked]) c.close();
      assert.deepEqual([slots.total, slots.count(KEY)], [0, 0], `round ${round}`);
    }
  },
);

/** Counts kept elsewhere: each take is answered only when the test says so. */
class DeferredSlots implements ConnectionSlots {
  readonly counts = new LocalConnectionSlots();
  readonly #asks: (() => void)[] = [];
  #onAsk: (() => void) | undefined;

  take(key: string, limits: ConnectionLimits): Promise<ConnectionRefusal | undefined> {
    return new Promise((resolve) => {
      this.#asks.push(() => {
        resolve(this.counts.take(key, limits));
      });
      this.#onAsk?.();
    });
  }

  release(key: string): void {
    this.counts.release(key);
  }

  /** Resolves once `count` takes wait for their answer. */
  async asked(count: number): Promise<void> {
    while (this.#asks.length < count) {
      await new Promise<void>((resolve) => {
        this.#onAsk = resolve;
      });
    }
  }

  /** Answers every waiting take. */
  answer(): void {
    for (const ask of this.#asks.splice(0)) ask();
  }
}

test(
  'with counts kept elsewhere, a client gone while its slot was asked for and a server closed meanwhile give it back',
  bounded,
  async (t) => {
    const slots = new DeferredSlots();
    const counters = { connections: slots, loginThrottle: new LoginThrottle() };
    const { server } = await startServer(t, { counters });
    const { port, sockets } = await embed(t, server);
    for (let round = 0; round < 20; round++) {
      // Served once the answer comes: its slot comes back when it quits.
      const served = Pop3TestClient.connect(port);
      await slots.asked(1);
      slots.answer();
      const client = await served;
      assert.match(client.greeting, /^\+OK/);
      assert.equal(slots.counts.count(KEY), 1);
      const closed = events(server, 'close', 1);
      assert.match(await client.command('QUIT'), /^\+OK/);
      await closed;
      client.close();
      // Reset by the client before the answer: the slot granted is given back, nothing is served.
      const gone = await RawClient.connect(port);
      await slots.asked(1);
      const serverSide = sockets.at(-1) as Socket;
      // (`once` would reject on the reset's 'error': the server handles that.)
      const serverSideClosed = new Promise((resolve) => serverSide.once('close', resolve));
      gone.socket.resetAndDestroy();
      await serverSideClosed;
      slots.answer();
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.deepEqual([slots.counts.total, server.connectionCount], [0, 0], `round ${round}`);
    }
    // The server closes while a socket waits: the socket is closed, and its slot given back.
    const waiting = await RawClient.connect(port);
    await slots.asked(1);
    const stopped = server.close({ graceMs: 0 });
    assert.equal(await waiting.closed(), '');
    await stopped;
    slots.answer();
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(slots.counts.total, 0);
  },
);
