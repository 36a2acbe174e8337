import type { Socket } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { RespCode } from '../errors.js';
import { canReadInto } from '../mailstore/types.js';
import { DotStuffing } from './dot-stuffer.js';

/** The socket closed, or stopped reading for longer than the write-stall limit. Nothing more can be sent. */
export class ConnectionGoneError extends Error {
  override name = 'ConnectionGoneError';
}

/** The client stopped reading for longer than `writeStallTimeoutMs` and was dropped. */
export class ClientStalledError extends ConnectionGoneError {
  override name = 'ClientStalledError';
}

const TERMINATOR = Buffer.from('.\r\n');

/**
 * How much the replies to pipelined commands may pile up, held back, before they are sent and the
 * next command waits for the socket to drain: past the socket's own 16 KiB mark, so that a burst of
 * RETRs leaves in a few large writev calls instead of one every three messages.
 */
export const MAX_HELD_BYTES = 262_144;

/**
 * Lines of a long listing (LIST, UIDL) handed to the socket at once, with a turn of the event loop
 * between two batches: 100,000 lines built in one go kept every other session waiting 0.7 s.
 */
export const LISTING_BATCH_LINES = 1000;

/** Removes CR and LF so that no text can end a reply line early (user input is echoed in some replies). */
const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ');

/**
 * Writes replies to one socket, waiting for it to drain when its buffer is full, so a slow reader
 * holds back the producer. Each single-line reply and each short multi-line reply is one `write`.
 */
export class ReplyWriter {
  #socket: Socket;
  readonly #writeStallTimeoutMs: number;
  /** True while writes are held back (corked) because more pipelined commands wait. */
  #isHeld = false;
  /** True between the first line of a multi-line reply and its terminator: an error then cannot be reported in-band. */
  #inMultiline = false;

  readonly #onWrite: (bytes: number) => void;

  /** `onWrite` is told the size of everything handed to the socket (for the byte counters). */
  constructor(socket: Socket, writeStallTimeoutMs: number, onWrite: (bytes: number) => void = () => {}) {
    this.#socket = socket;
    this.#writeStallTimeoutMs = writeStallTimeoutMs;
    this.#onWrite = onWrite;
  }

  /** Writes to another socket from now on (the TLS socket after STLS). */
  retarget(socket: Socket): void {
    this.release();
    this.#socket = socket;
  }

  /**
   * Writes one line at once, without waiting for the socket to drain: for the reply that must be
   * on the wire before a TLS handshake starts (STLS), when nothing else is queued.
   */
  writeNow(line: string): void {
    this.release();
    this.#onWrite(Buffer.byteLength(line));
    this.#socket.write(line);
  }

  /** Resolves once everything written so far has been handed to the operating system. */
  async flushed(): Promise<void> {
    const socket = this.#socket;
    if (socket.writableLength === 0) return;
    // A write's callback runs once it is flushed, and writes flush in order.
    await new Promise<void>((resolve) =>
      socket.write(Buffer.alloc(0), () => {
        resolve();
      }),
    );
  }

  /**
   * Holds replies back (the socket is corked) so that the replies to pipelined commands leave in
   * one system call. A write that fills the socket's buffer releases them; so does {@link release}.
   */
  hold(): void {
    if (this.#isHeld) return;
    this.#isHeld = true;
    this.#socket.cork();
  }

  get isHeld(): boolean {
    return this.#isHeld;
  }

  /** Sends what {@link hold} kept back. */
  release(): void {
    if (!this.#isHeld) return;
    this.#isHeld = false;
    this.#socket.uncork();
  }

  get isInMultiline(): boolean {
    return this.#inMultiline;
  }

  ok(text = ''): Promise<void> {
    return this.write(text === '' ? '+OK\r\n' : `+OK ${oneLine(text)}\r\n`);
  }

  err(text: string, code?: RespCode): Promise<void> {
    return this.write(`-ERR ${code === undefined ? '' : `[${code}] `}${oneLine(text)}\r\n`);
  }

  /** A complete multi-line reply (CAPA, LIST, UIDL), byte-stuffed, in one write. */
  lines(first: string, lines: readonly string[]): Promise<void> {
    let out = `+OK ${oneLine(first)}\r\n`;
    for (const line of lines) out += `${line.startsWith('.') ? '.' : ''}${oneLine(line)}\r\n`;
    return this.write(`${out}.\r\n`);
  }

  /**
   * A multi-line reply of any length (LIST, UIDL), byte-stuffed: one write when it is short;
   * otherwise written {@link LISTING_BATCH_LINES} lines at a time, each batch waiting for the socket
   * to drain when it is full and then for a turn of the event loop, so that other sessions are
   * served meanwhile and memory holds one batch, not the whole listing.
   */
  async listing(first: string, lines: Iterable<string>): Promise<void> {
    let out = `+OK ${oneLine(first)}\r\n`;
    let count = 0;
    for (const line of lines) {
      out += `${line.startsWith('.') ? '.' : ''}${oneLine(line)}\r\n`;
      count += 1;
      if (count % LISTING_BATCH_LINES === 0) {
        this.#inMultiline = true;
        await this.write(out);
        out = '';
        await nextTurn();
      }
    }
    await this.write(`${out}.\r\n`);
    this.#inMultiline = false;
  }

  /**
   * Sends `+OK first`, then the message byte-stuffed, then the terminator. A message given whole,
   * as one buffer, leaves in one write. A stream is read one chunk at a time, the next only once
   * the previous one is handed to the socket, so memory stays bounded by one chunk plus the
   * socket's buffer; if it fails after the first line went out, the error propagates and the
   * connection must be closed, because the reply cannot be finished. A stream that is also a
   * `ChunkReader` is read into one reused buffer. `isVerbatim`: the store says the bytes need no
   * rewriting (see `MessageInfo.isVerbatim`).
   */
  async body(first: string, content: Buffer | AsyncIterable<Buffer>, isVerbatim = false): Promise<void> {
    const stuffing = new DotStuffing();
    const stuff = isVerbatim
      ? (chunk: Buffer) => stuffing.pushVerbatim(chunk)
      : (chunk: Buffer, into?: Buffer) => stuffing.push(chunk, into);
    const head = `+OK ${oneLine(first)}\r\n`;
    if (Buffer.isBuffer(content)) {
      const body = stuff(content);
      const tail = stuffing.end();
      return this.writeAll([head, body, tail.length === 0 ? TERMINATOR : Buffer.concat([tail, TERMINATOR])]);
    }
    await this.write(head);
    this.#inMultiline = true;
    // One input and one output buffer for the whole stream, reused while the socket has sent all
    // it was given: a long message then leaves no garbage per chunk for the GC to catch up with.
    let spare: Buffer | undefined;
    const send = async (chunk: Buffer): Promise<Buffer> => {
      const room = 2 * chunk.length + 1;
      if (spare === undefined || spare.length < room) spare = Buffer.allocUnsafe(room);
      const out = stuff(chunk, spare);
      await this.write(out);
      // Still queued in the socket: the next chunk needs a buffer of its own.
      if (out.buffer === spare.buffer && this.#socket.writableLength > 0) spare = undefined;
      return out;
    };
    if (canReadInto(content)) {
      let input: Buffer | undefined;
      for (;;) {
        input ??= Buffer.allocUnsafe(content.chunkBytes);
        const bytesRead = await content.readInto(input);
        if (bytesRead === 0) break;
        const out = await send(input.subarray(0, bytesRead));
        if (out.buffer === input.buffer && this.#socket.writableLength > 0) input = undefined;
      }
    } else {
      for await (const chunk of content) await send(chunk);
    }
    const tail = stuffing.end();
    await this.write(tail.length === 0 ? TERMINATOR : Buffer.concat([tail, TERMINATOR]));
    this.#inMultiline = false;
  }

  async write(data: string | Buffer): Promise<void> {
    if (this.#send(data)) return;
    await this.#drained();
  }

  /** Several parts as one reply: corked, so they leave in one writev without being copied together. */
  async writeAll(parts: readonly (string | Buffer)[]): Promise<void> {
    // Corks nest: within a hold, this adds nothing; otherwise the parts leave at the uncork.
    const socket = this.#socket;
    socket.cork();
    let isFlowing = true;
    try {
      for (const part of parts) isFlowing = this.#send(part);
    } finally {
      socket.uncork();
    }
    if (!isFlowing) await this.#drained();
  }

  /**
   * Hands data to the socket; false when its buffer is full (wait for {@link #drained} before
   * more). While replies are held, full means {@link MAX_HELD_BYTES}.
   */
  #send(data: string | Buffer): boolean {
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) throw new ConnectionGoneError('connection closed');
    this.#onWrite(typeof data === 'string' ? Buffer.byteLength(data) : data.length);
    const hasRoom = socket.write(data);
    return hasRoom || (this.#isHeld && socket.writableLength < MAX_HELD_BYTES);
  }

  /** Waits for the socket to drain; a client that reads nothing for the write-stall time is dropped. */
  async #drained(): Promise<void> {
    const socket = this.#socket;
    this.release();
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error): void => {
        clearTimeout(timer);
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onDrain = (): void => {
        done();
      };
      const onClose = (): void => {
        done(new ConnectionGoneError('connection closed'));
      };
      const timer = setTimeout(() => {
        done(new ClientStalledError('client stopped reading'));
        socket.destroy();
      }, this.#writeStallTimeoutMs);
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }
}
