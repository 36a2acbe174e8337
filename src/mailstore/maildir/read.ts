import { Readable } from 'node:stream';
import { asError, isErrno, MessageGoneError } from '../../errors.js';
import { MessageMeter, type MessageMeasure } from '../../message/octets.js';
import type { ChunkReader, MessageContent } from '../types.js';
import type { MaildirFs } from './fs.js';

/** Size of the buffer a scan measures files with. */
export const MEASURE_BUFFER_BYTES = 65_536;

/** Opens a message file; a symbolic link in its place means the message is gone. */
async function openMessage(fs: MaildirFs, path: string): Promise<number> {
  try {
    return await fs.openForReading(path);
  } catch (error) {
    if (isErrno(error, 'ELOOP')) throw new MessageGoneError();
    throw error;
  }
}

/**
 * Reads a whole message file, measuring it as it goes (its POP3 size, and whether it can be sent
 * verbatim). `buffer` is the caller's: a scan measures one file at a time per buffer.
 */
export async function measureMessageFile(
  fs: MaildirFs,
  path: string,
  buffer: Buffer,
): Promise<MessageMeasure> {
  const fd = await openMessage(fs, path);
  try {
    const meter = new MessageMeter();
    for (let position = 0; ;) {
      const bytesRead = await fs.readAt(fd, buffer, position);
      if (bytesRead === 0) break;
      meter.push(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
    return meter.finish();
  } finally {
    await fs.close(fd);
  }
}

/**
 * A message no bigger than this many chunks comes whole. Streaming one holds a chunk and an output
 * buffer of twice its size anyway, so a message of two chunks read whole needs about the same
 * memory; as a stream it costs a Readable, two more reads and three more writes (the first line,
 * each chunk and the terminator go apart): in sessions of 4-100 KB messages, 36 fewer system
 * calls a session.
 */
export const WHOLE_MESSAGE_CHUNKS = 2;

/**
 * A message's stored bytes. One that the scan found no bigger than {@link WHOLE_MESSAGE_CHUNKS}
 * chunks comes whole, in one read: its stored bytes are at most its size (LF ends count as CRLF),
 * so a read of one byte more shows whether the file is all there. A bigger one, or one that grew
 * since the scan (changed by another program, sent as it is now), comes as a
 * {@link MessageFileStream} of `chunkBytes` chunks.
 */
export async function readMessageFile(
  fs: MaildirFs,
  path: string,
  size: number,
  chunkBytes: number,
  signal: AbortSignal | undefined,
): Promise<MessageContent> {
  const fd = await openMessage(fs, path);
  if (size <= WHOLE_MESSAGE_CHUNKS * chunkBytes) {
    let isWhole = false;
    try {
      const buffer = Buffer.allocUnsafe(size + 1);
      const bytesRead = await fs.readAt(fd, buffer, 0);
      isWhole = bytesRead <= size;
      if (isWhole) return buffer.subarray(0, bytesRead);
    } finally {
      if (isWhole) await fs.close(fd);
    }
  }
  return new MessageFileStream(fs, fd, chunkBytes, signal);
}

/**
 * A message file as a stream of pread(2) calls through {@link MaildirFs}, one chunk each time the
 * consumer asks for more: never more than one chunk read ahead of the socket, and with blocking
 * calls no thread-pool trip per chunk. Also a {@link ChunkReader}: the same reads into the
 * consumer's buffer. The descriptor is closed at the end, on error and on destroy (after a read
 * under way has finished, so that it is never closed under that read).
 */
export class MessageFileStream extends Readable implements ChunkReader {
  readonly #fs: MaildirFs;
  readonly chunkBytes: number;
  #fd: number | undefined;
  #position = 0;
  #reading: Promise<void> | undefined;

  constructor(fs: MaildirFs, fd: number, chunkBytes: number, signal: AbortSignal | undefined) {
    super({ highWaterMark: chunkBytes, ...(signal === undefined ? {} : { signal }) });
    this.#fs = fs;
    this.#fd = fd;
    this.chunkBytes = chunkBytes;
  }

  override _read(): void {
    const fd = this.#fd;
    if (fd === undefined || this.#reading !== undefined) return;
    const buffer = Buffer.allocUnsafe(this.chunkBytes);
    this.#reading = this.#fs.readAt(fd, buffer, this.#position).then(
      async (bytesRead) => {
        this.#reading = undefined;
        if (this.destroyed) return;
        this.#position += bytesRead;
        if (bytesRead > 0) {
          this.push(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
          return;
        }
        // The end: the file is closed before the stream ends, so a reader that saw the end holds no descriptor.
        try {
          await this.#closeFile();
          this.push(null);
        } catch (error) {
          this.destroy(asError(error));
        }
      },
      (error: unknown) => {
        this.#reading = undefined;
        this.destroy(asError(error));
      },
    );
  }

  async readInto(buffer: Buffer): Promise<number> {
    this.#throwIfDestroyed();
    if (this.#reading !== undefined) throw new Error('message stream read twice at once');
    const fd = this.#fd;
    if (fd === undefined) return 0; // the end, already reached
    const reading = this.#fs.readAt(fd, buffer, this.#position);
    this.#reading = reading.then(
      () => undefined,
      () => undefined,
    );
    let bytesRead: number;
    try {
      bytesRead = await reading;
    } finally {
      this.#reading = undefined;
    }
    // Destroyed meanwhile (the session aborted): the bytes read are not wanted.
    this.#throwIfDestroyed();
    this.#position += bytesRead;
    if (bytesRead === 0) await this.#closeFile();
    return bytesRead;
  }

  #throwIfDestroyed(): void {
    if (this.destroyed) throw this.errored ?? new Error('message stream destroyed');
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Never closed under a read under way: that read finishes first.
    const closing =
      this.#reading === undefined ? this.#closeFile() : this.#reading.then(() => this.#closeFile());
    closing.then(
      () => {
        callback(error);
      },
      (closeError: unknown) => {
        callback(error ?? asError(closeError));
      },
    );
  }

  /** Closes the descriptor, once. */
  async #closeFile(): Promise<void> {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) await this.#fs.close(fd);
  }
}
