// Clients for the abuse tests, connecting from a chosen loopback address: Linux routes all of
// 127.0.0.0/8 to the loopback interface, so 127.0.0.2, 127.0.0.3... look like other hosts.
import { connect } from 'node:net';
import { Pop3TestClient } from '../helpers/pop3-client.js';

/** A Pop3TestClient whose socket is bound to `localAddress`; the greeting is read. */
export async function connectFrom(port: number, localAddress: string): Promise<Pop3TestClient> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.setNoDelay(true);
  const client = new Pop3TestClient(socket);
  client.greeting = await client.readLine();
  return client;
}

/** USER + PASS from `localAddress` on a new connection; the PASS reply (the session is then quit or dropped). */
export async function tryLoginFrom(
  port: number,
  localAddress: string,
  user: string,
  password: string,
): Promise<string> {
  const client = await connectFrom(port, localAddress);
  try {
    const u = await client.command(`USER ${user}`);
    if (!u.startsWith('+OK')) return u;
    const reply = await client.command(`PASS ${password}`);
    if (reply.startsWith('+OK')) await client.command('QUIT');
    return reply;
  } finally {
    client.close();
  }
}
