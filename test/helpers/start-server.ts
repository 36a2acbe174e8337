import { once } from 'node:events';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { StaticAuthenticator } from '../../src/auth/static.js';
import { MemoryStore } from '../../src/mailstore/memory.js';
import { createServer, type Pop3Server, type Pop3ServerOptions } from '../../src/pop3/server.js';

export interface StartedServer {
  readonly server: Pop3Server;
  readonly port: number;
  readonly store: MemoryStore;
}

/**
 * A real server on an ephemeral loopback port with an in-memory store, closed after the test.
 * Users: alice/pw and bob/secret; failed logins are answered at once unless the test says otherwise.
 */
export async function startServer(
  t: TestContext,
  options: Partial<Pop3ServerOptions> & { readonly mailboxes?: Record<string, (string | Uint8Array)[]> } = {},
): Promise<StartedServer> {
  const { mailboxes, ...rest } = options;
  const store = new MemoryStore(mailboxes ?? {});
  const server = createServer({
    store,
    authenticator: new StaticAuthenticator({ alice: 'pw', bob: 'secret' }),
    ...rest,
    limits: { authFailureDelayMs: 0, ...rest.limits },
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close({ graceMs: 0 }));
  return { server, port, store: rest.store instanceof MemoryStore ? rest.store : store };
}

/**
 * Serves `server` through a listener the test owns on a loopback port (the embedding API's
 * `handleConnection`), so the test can look at the server side of each socket.
 */
export async function embed(
  t: TestContext,
  server: Pop3Server,
): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const listener = createNetServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    server.handleConnection(socket);
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.after(() => {
    listener.close();
  });
  const address = listener.address();
  if (address === null || typeof address !== 'object') throw new Error('listener has no port');
  return { port: address.port, sockets };
}
