import { connect, type Socket } from 'node:net';

const MULTILINE = new Set(['CAPA', 'RETR', 'TOP']);

/** Whether the reply to `line` is multi-line when it starts with +OK (RFC 1939: LIST and UIDL without argument). */
export function isMultilineCommand(line: string): boolean {
  const [verb = '', ...args] = line.trim().split(/\s+/);
  const upper = verb.toUpperCase();
  if (MULTILINE.has(upper)) return true;
  return (upper === 'LIST' || upper === 'UIDL') && args.length === 0;
}

/**
 * A deliberately simple POP3 client for tests: raw lines in, raw lines out, so that tests see
 * exactly what the server sent.
 */
export class Pop3TestClient {
  readonly socket: Socket;
  greeting = '';
  #buffer: Buffer = Buffer.alloc(0);
  #waiter: (() => void) | undefined;
  #isEnded = false;
  #error: Error | undefined;

  readonly #onData = (chunk: Buffer): void => {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#wake();
  };
  readonly #onEnd = (): void => {
    this.#isEnded = true;
    this.#wake();
  };
  readonly #onError = (error: Error): void => {
    this.#error = error;
    this.#wake();
  };

  /** Reads from a connected socket (the greeting is not read). */
  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  /**
   * Stops reading the socket (before handing it to a TLS handshake, say); returns what had arrived
   * and was not read yet.
   */
  detach(): Buffer {
    this.socket.off('data', this.#onData);
    this.socket.off('end', this.#onEnd);
    this.socket.off('close', this.#onEnd);
    const rest = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    return rest;
  }

  /** Connects and reads the greeting. */
  static async connect(
    port: number,
    host = '127.0.0.1',
    options: { readGreeting?: boolean; localAddress?: string } = {},
  ): Promise<Pop3TestClient> {
    const socket = connect({
      port,
      host,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new Pop3TestClient(socket);
    if (options.readGreeting !== false) client.greeting = await client.readLine();
    return client;
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  async #waitForData(): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    if (this.#isEnded)
      throw new Error(
        `connection closed by server; unread: ${JSON.stringify(this.#buffer.toString('latin1'))}`,
      );
    await new Promise<void>((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** Writes raw bytes. */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends one command line with CRLF. */
  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Reads one line, without its CRLF, decoded as latin1 (bytes kept one for one). */
  async readLine(): Promise<string> {
    for (;;) {
      const nl = this.#buffer.indexOf('\r\n');
      if (nl !== -1) {
        const line = this.#buffer.subarray(0, nl).toString('latin1');
        this.#buffer = this.#buffer.subarray(nl + 2);
        return line;
      }
      await this.#waitForData();
    }
  }

  /** Reads a multi-line body after its status line: the bytes up to `CRLF.CRLF`, un-stuffed, CRLF kept. */
  async readBody(): Promise<Buffer> {
    for (;;) {
      const start = this.#buffer.subarray(0, 3).equals(Buffer.from('.\r\n'));
      if (start) {
        this.#buffer = this.#buffer.subarray(3);
        return Buffer.alloc(0);
      }
      const end = this.#buffer.indexOf('\r\n.\r\n');
      if (end !== -1) {
        const raw = this.#buffer.subarray(0, end + 2);
        this.#buffer = this.#buffer.subarray(end + 5);
        return unstuff(raw);
      }
      await this.#waitForData();
    }
  }

  /** Reads the lines of a multi-line body (un-stuffed). */
  async readLines(): Promise<string[]> {
    const body = (await this.readBody()).toString('latin1');
    if (body === '') return [];
    return body.slice(0, -2).split('\r\n');
  }

  /** Sends a command and reads its status line. */
  async command(line: string): Promise<string> {
    this.send(line);
    return this.readLine();
  }

  /** Sends a multi-line command: the status line, and the body lines when it is +OK. */
  async multi(line: string): Promise<{ status: string; lines: string[] }> {
    const status = await this.command(line);
    return { status, lines: status.startsWith('+OK') ? await this.readLines() : [] };
  }

  /** Logs in with USER/PASS; throws unless both succeed. */
  /** USER then PASS; resolves to the first reply that is not `+OK` or to PASS's, quitting after a success. */
  async tryLogin(user: string, password: string): Promise<string> {
    const u = await this.command(`USER ${user}`);
    if (!u.startsWith('+OK')) return u;
    const reply = await this.command(`PASS ${password}`);
    if (reply.startsWith('+OK')) await this.command('QUIT');
    return reply;
  }

  async login(user: string, password: string): Promise<string> {
    const u = await this.command(`USER ${user}`);
    if (!u.startsWith('+OK')) throw new Error(`USER failed: ${u}`);
    const p = await this.command(`PASS ${password}`);
    if (!p.startsWith('+OK')) throw new Error(`PASS failed: ${p}`);
    return p;
  }

  /** Resolves when the server has closed the connection; returns what it sent that was not read. */
  async closed(): Promise<string> {
    while (!this.#isEnded && this.#error === undefined) {
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
      });
    }
    const rest = this.#buffer.toString('latin1');
    this.#buffer = Buffer.alloc(0);
    return rest;
  }

  get isEnded(): boolean {
    return this.#isEnded;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Removes byte-stuffing: a line starting with `..` loses its first dot. */
export function unstuff(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let lineStart = 0;
  let copied = 0;
  while (lineStart < raw.length) {
    if (raw[lineStart] === 0x2e) {
      parts.push(raw.subarray(copied, lineStart));
      copied = lineStart + 1;
    }
    const nl = raw.indexOf(0x0a, lineStart);
    if (nl === -1) break;
    lineStart = nl + 1;
  }
  parts.push(raw.subarray(copied));
  return Buffer.concat(parts);
}

/**
 * Runs a scripted session: connects, then sends each line and reads its full reply. Returns the
 * greeting followed by one entry per command (multi-line replies joined with `\n`).
 */
export async function dialog(port: number, lines: readonly string[], host = '127.0.0.1'): Promise<string[]> {
  const client = await Pop3TestClient.connect(port, host);
  try {
    const out = [client.greeting];
    for (const line of lines) {
      if (isMultilineCommand(line)) {
        const { status, lines: body } = await client.multi(line);
        out.push([status, ...body].join('\n'));
      } else {
        out.push(await client.command(line));
      }
    }
    return out;
  } finally {
    client.close();
  }
}
