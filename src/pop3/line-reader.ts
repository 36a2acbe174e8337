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
 * stream stays in step with the client. Memory is bounded by the limit plus one incoming chunk.
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
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let discarding = false;
    for await (const chunk of this.#source) {
      let start = 0;
      while (start < chunk.length) {
        const nl = chunk.indexOf(LF, start);
        if (nl === -1) {
          const rest = chunk.length - start;
          // +1: a CR that turns out to precede the LF does not count against the limit.
          if (!discarding && pendingBytes + rest > this.maxLineBytes + 1) {
            discarding = true;
            pending = [];
            pendingBytes = 0;
          } else if (!discarding) {
            pending.push(chunk.subarray(start));
            pendingBytes += rest;
          }
          break;
        }
        this.#chunk = chunk;
        this.#start = nl + 1;
        if (discarding) {
          discarding = false;
          yield OVERLONG;
        } else {
          const tail = chunk.subarray(start, nl);
          let line = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
          pending = [];
          pendingBytes = 0;
          if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
          yield line.length > this.maxLineBytes ? OVERLONG : line;
        }
        start = nl + 1;
      }
      this.#chunk = undefined;
    }
  }
}
