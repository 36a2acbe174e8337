import { Transform, type TransformCallback } from 'node:stream';
import { CR, DOT, LF } from '../message/octets.js';

const CR_BUF = Buffer.from([CR]);
const DOT_BUF = Buffer.from([DOT]);
const CRLF_BUF = Buffer.from([CR, LF]);
const LF_BUF = Buffer.from([LF]);

/**
 * Byte-stuffing for multi-line responses (RFC 1939 section 3), as a pure state machine so the
 * hot path needs no stream machinery: every bare LF becomes CRLF, a line that starts with `.`
 * gets a second `.` (the first line too), and {@link end} adds a final CRLF when the message
 * lacks one. The terminating `.` CRLF is the caller's. Chunks with nothing to change are
 * returned as they are, without a copy.
 */
export class DotStuffing {
  #atLineStart = true;
  #prevCR = false;
  #empty = true;

  push(chunk: Buffer): Buffer {
    const len = chunk.length;
    if (len === 0) return chunk;
    this.#empty = false;
    let parts: Buffer[] | undefined;
    let copied = 0;
    const insert = (at: number, bytes: Buffer): void => {
      parts ??= [];
      parts.push(chunk.subarray(copied, at), bytes);
      copied = at;
    };
    if (this.#atLineStart && chunk[0] === DOT) insert(0, DOT_BUF);
    let nl = chunk.indexOf(LF);
    while (nl !== -1) {
      const prevIsCR = nl > 0 ? chunk[nl - 1] === CR : this.#prevCR;
      if (!prevIsCR) insert(nl, CR_BUF);
      if (nl + 1 < len && chunk[nl + 1] === DOT) insert(nl + 1, DOT_BUF);
      nl = chunk.indexOf(LF, nl + 1);
    }
    const last = chunk[len - 1];
    this.#prevCR = last === CR;
    this.#atLineStart = last === LF;
    if (parts === undefined) return chunk;
    parts.push(chunk.subarray(copied));
    return Buffer.concat(parts);
  }

  /** What must follow the last chunk so that the body ends with CRLF (empty when it does). */
  end(): Buffer {
    if (this.#empty || this.#atLineStart) return Buffer.alloc(0);
    return this.#prevCR ? LF_BUF : CRLF_BUF;
  }
}

/** {@link DotStuffing} as a Transform stream, for callers that compose streams. */
export class DotStuffer extends Transform {
  readonly #stuffing = new DotStuffing();

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(null, this.#stuffing.push(chunk));
  }

  override _flush(callback: TransformCallback): void {
    const tail = this.#stuffing.end();
    if (tail.length > 0) this.push(tail);
    callback();
  }
}
