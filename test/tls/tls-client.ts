import { connect as connectTcp } from 'node:net';
import { connect as connectTls, TLSSocket, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { isMultilineCommand, Pop3TestClient } from '../helpers/pop3-client.js';

/**
 * A line-oriented POP3 test client over a plain or a TLS socket. `startTls()` does what an
 * RFC 2595 client does: sends STLS (and, for the injection tests, whatever else it is given in
 * the same write), reads the `+OK`, and starts the handshake on the same TCP connection.
 */
export class LineClient extends Pop3TestClient {
  /** A plain TCP connection to the loopback server; the greeting is read. */
  static async plain(port: number, host = '127.0.0.1'): Promise<LineClient> {
    const socket = connectTcp({ port, host });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new LineClient(socket);
    client.greeting = await client.readLine();
    return client;
  }

  /** Implicit TLS (POP3S): the handshake first, then the greeting. */
  static async tls(port: number, options: ConnectionOptions = {}): Promise<LineClient> {
    const socket = connectTls({ port, host: '127.0.0.1', ...options });
    await secured(socket);
    const client = new LineClient(socket);
    client.greeting = await client.readLine();
    return client;
  }

  /**
   * Writes `payload` in one write (by default just the STLS line), expects `+OK` as the next line,
   * and returns a client on the TLS socket once the handshake is done. `leftover` is whatever the
   * server sent in cleartext after the `+OK` line (there should be nothing).
   */
  async startTls(
    options: ConnectionOptions = {},
    payload = 'STLS\r\n',
  ): Promise<{ client: LineClient; reply: string; leftover: string }> {
    this.socket.write(payload);
    const reply = await this.readLine();
    if (!reply.startsWith('+OK')) throw new Error(`STLS refused: ${reply}`);
    const leftover = this.detach().toString('latin1');
    const socket = connectTls({ socket: this.socket, ...options });
    await secured(socket);
    return { client: new LineClient(socket), reply, leftover };
  }

  get tlsSocket(): TLSSocket {
    if (!(this.socket instanceof TLSSocket)) throw new Error('not a TLS connection');
    return this.socket;
  }

  /** The server's certificate on a TLS connection. */
  get peerCertificate(): PeerCertificate {
    return this.tlsSocket.getPeerCertificate();
  }

  /** The reply to one command: its status line, or for a multi-line +OK every line joined with `\n`. */
  async reply(line: string): Promise<string> {
    if (!isMultilineCommand(line)) return this.command(line);
    const { status, lines } = await this.multi(line);
    return [status, ...lines].join('\n');
  }

  /** CAPA's capability lines. */
  async capa(): Promise<string[]> {
    const { status, lines } = await this.multi('CAPA');
    if (status !== '+OK Capability list follows') throw new Error(`CAPA failed: ${status}`);
    return lines;
  }
}

/** Resolves when the TLS handshake is done; rejects with the handshake's error. */
export function secured(socket: TLSSocket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      socket.off('secureConnect', onSecure);
      reject(error);
    };
    const onSecure = (): void => {
      socket.off('error', onError);
      resolve();
    };
    socket.once('secureConnect', onSecure);
    socket.once('error', onError);
  });
}

/** The mechanisms of CAPA's SASL line (empty when there is none). */
export function saslOf(caps: readonly string[]): string[] {
  const line = caps.find((c) => c.startsWith('SASL '));
  return line === undefined ? [] : line.slice(5).split(' ');
}

/**
 * Which of the cleartext mechanisms PLAIN and LOGIN CAPA's SASL line offers, in that order (other
 * mechanisms, such as SCRAM or CRAM-MD5, are not the TLS policy's business and are ignored).
 */
export function cleartextSaslOf(caps: readonly string[]): string[] {
  const offered = saslOf(caps);
  return ['PLAIN', 'LOGIN'].filter((m) => offered.includes(m));
}

/** CAPA without its SASL line (which lists whatever mechanisms the build has), for exact comparisons. */
export function withoutSasl(caps: readonly string[]): string[] {
  return caps.filter((c) => !c.startsWith('SASL '));
}
