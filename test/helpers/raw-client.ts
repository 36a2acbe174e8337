import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { Pop3Server, Pop3ServerEvents } from '../../src/pop3/server.js';

/**
 * A socket that records every byte the server sends, for tests that look at the raw stream
 * (pipelining, byte-by-byte sends, connections the server refuses or drops).
 */
export class RawClient {
  readonly socket: Socket;
  #chunks: Buffer[] = [];
  #waiters: (() => void)[] = [];
  #isClosed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#wake();
    });
    socket.on('close', () => {
      this.#isClosed = true;
      this.#wake();
    });
    // A reset from the server shows as 'close'; the error itself is not what the tests look at.
    socket.on('error', () => {});
  }

  /** Connects to the loopback server, optionally from another loopback address. */
  static async connect(
    port: number,
    options: { readonly host?: string; readonly localAddress?: string } = {},
  ): Promise<RawClient> {
    const socket = connect({
      port,
      host: options.host ?? '127.0.0.1',
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    return new RawClient(socket);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Everything received so far. */
  get received(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  /** Everything received so far, as latin1 text (one character per byte). */
  get text(): string {
    return this.received.toString('latin1');
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Resolves once the received text contains `expected`; rejects if the connection closes first. */
  async waitFor(expected: string): Promise<string> {
    for (;;) {
      const text = this.text;
      if (text.includes(expected)) return text;
      if (this.#isClosed)
        throw new Error(`closed before ${JSON.stringify(expected)} arrived; got ${JSON.stringify(text)}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Resolves when the socket is closed, with everything the server sent. */
  async closed(): Promise<string> {
    while (!this.#isClosed) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    return this.text;
  }

  /** Writes the bytes all at once. */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Writes the bytes one per `write` call, each one handed to the kernel before the next. */
  async writeByteByByte(data: string | Buffer): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    for (let i = 0; i < bytes.length; i++) {
      await new Promise<void>((resolve, reject) => {
        this.socket.write(bytes.subarray(i, i + 1), (error) => {
          if (error) reject(error);
          else resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The next event of one kind from the server, registered before `trigger` runs. */
export async function nextServerEvent<K extends keyof Pop3ServerEvents>(
  server: Pop3Server,
  event: K,
  trigger: () => unknown = () => undefined,
): Promise<Pop3ServerEvents[K][0]> {
  const pending = once(server, event) as Promise<Pop3ServerEvents[K]>;
  await trigger();
  const [info] = await pending;
  return info;
}
