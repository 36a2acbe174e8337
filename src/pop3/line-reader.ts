import { CR, LF } from '../message/octets.js';

/** Yielded in place of a line that was longer than the limit; the line itself was discarded. */
export const OVERLONG = Symbol('overlong line');
export type ReadLine = Buffer | typeof OVERLONG;

/**
 * Splits a byte stream into lines. Knows nothing of POP3.
 *
 * A line ends at LF; a CR just before it is removed, so CRLF and a lone LF both end a line.
 * At most {@link maxLineBytes} bytes (without the line end) are held for one line: the rest of a
 * longer line is read and thrown away up to its LF, and {@link OVERLONG} is yielded for it, so the
 * stream stays in step with the client. The start of a line that has not ended yet is copied into
 * one buffer of the reader's own, never kept as views of the chunks it came in: a client that sends
 * its line one byte per TCP segment would otherwise pin one chunk's memory per byte. So memory is
 * bounded by twice the limit plus the chunk in hand, however the line is cut.
 * A partial line at the end of the stream is dropped.
 *
 * The limit may be changed between lines (SASL exchanges allow longer lines than commands).
 */
export class LineReader {
  maxLineBytes: number;
  readonly #source: AsyncIterable<Buffer>;
  /** The chunk being split, and where its unread part starts (for {@link hasBufferedLine}). */
  #chunk: Buffer | undefined;
  #start = 0;

  constructor(source: AsyncIterable<Buffer>, maxLineBytes: number) {
    this.#source = source;
    this.maxLineBytes = maxLineBytes;
  }

  /**
   * True when a whole line has arrived and waits to be read: the client pipelined commands, so a
   * reply may wait to go out together with the next one.
   */
  hasBufferedLine(): boolean {
    return this.#chunk !== undefined && this.#chunk.indexOf(LF, this.#start) !== -1;
  }

  async *lines(): AsyncGenerator<ReadLine> {
    const partial = new PartialLine();
    let discarding = false;
    for await (const chunk of this.#source) {
      let start = 0;
      while (start < chunk.length) {
        const nl = chunk.indexOf(LF, start);
        if (nl === -1) {
          const rest = chunk.length - start;
          // +1: a CR that turns out to precede the LF does not count against the limit.
          if (!discarding && partial.length + rest > this.maxLineBytes + 1) {
            discarding = true;
            partial.clear();
          } else if (!discarding) {
            partial.append(chunk.subarray(start), this.maxLineBytes + 1);
          }
          break;
        }
        this.#chunk = chunk;
        this.#start = nl + 1;
        if (discarding) {
          discarding = false;
          yield OVERLONG;
        } else {
          let line = partial.takeWith(chunk.subarray(start, nl));
          if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
          yield line.length > this.maxLineBytes ? OVERLONG : line;
        }
        start = nl + 1;
      }
      this.#chunk = undefined;
    }
  }
}

/** The start of a line whose LF has not come yet, copied into one growing buffer. */
class PartialLine {
  #bytes: Buffer | undefined;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Copies `piece` in; the buffer grows by doubling, to at most `capacityBytes`. */
  append(piece: Buffer, capacityBytes: number): void {
    const needed = this.#length + piece.length;
    if (this.#bytes === undefined || this.#bytes.length < needed) {
      // Not from Buffer's shared pool: a small slice of it would keep a whole 8 KiB slab alive.
      const grown = Buffer.allocUnsafeSlow(
        Math.min(Math.max(needed, 2 * (this.#bytes?.length ?? 64)), capacityBytes),
      );
      this.#bytes?.copy(grown, 0, 0, this.#length);
      this.#bytes = grown;
    }
    piece.copy(this.#bytes, this.#length);
    this.#length = needed;
  }

  /** The held start followed by `tail`, as one new buffer (or `tail` itself when nothing is held); then empty. */
  takeWith(tail: Buffer): Buffer {
    if (this.#bytes === undefined) return tail;
    const line = Buffer.concat([this.#bytes.subarray(0, this.#length), tail]);
    this.clear();
    return line;
  }

  clear(): void {
    this.#bytes = undefined;
    this.#length = 0;
  }
}
