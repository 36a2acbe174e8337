// Clients for the abuse tests, connecting from a chosen loopback address: Linux routes all of
// 127.0.0.0/8 to the loopback interface, so 127.0.0.2, 127.0.0.3... look like other hosts.
import { Pop3TestClient } from '../helpers/pop3-client.js';

/** A Pop3TestClient whose socket is bound to `localAddress`; the greeting is read. */
export async function connectFrom(port: number, localAddress: string): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(port, '127.0.0.1', { localAddress });
  client.socket.setNoDelay(true);
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
    return await client.tryLogin(user, password);
  } finally {
    client.close();
  }
}
