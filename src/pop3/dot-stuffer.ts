import { Transform, type TransformCallback } from 'node:stream';
import { CR, DOT, LF } from '../message/octets.js';
import { hasWasmStuffing, stuffPiece, WASM_PIECE_BYTES } from './wasm/stuffing.js';

const CRLF_BUF = Buffer.from([CR, LF]);
const LF_BUF = Buffer.from([LF]);
const LF_DOT = Buffer.from([LF, DOT]);
const EMPTY: Buffer = Buffer.alloc(0);
/** Segments up to this long are copied byte by byte: cheaper than a native copy's set-up. */
const SHORT_SEGMENT = 32;
/** Chunks from this size on go through the WebAssembly loop; smaller ones are not worth the copies. */
const WASM_MIN_BYTES = 64;

/** A copy of `buf`'s first `used` bytes in a buffer of at least `size` bytes (twice as big, at least). */
function grown(buf: Buffer, used: number, size: number): Buffer {
  const bigger = Buffer.allocUnsafe(Math.max(size, buf.length * 2));
  buf.copy(bigger, 0, 0, used);
  return bigger;
}

/**
 * Byte-stuffing for multi-line responses (RFC 1939 section 3), as a pure state machine so the
 * hot path needs no stream machinery: every bare LF becomes CRLF, a line that starts with `.`
 * gets a second `.` (the first line too), and {@link end} adds a final CRLF when the message
 * lacks one. The terminating `.` CRLF is the caller's.
 *
 * Works on bytes only, and a chunk with nothing to change is returned as it is. A chunk of
 * {@link WASM_MIN_BYTES} or more goes through the WebAssembly loop of `wasm/stuffing.wat` (16 bytes
 * at a time); a smaller one, or any where WebAssembly is missing, through the JavaScript path:
 * line ends found with `indexOf` (native memchr), the chunk copied once into one output buffer
 * from the first change on.
 */
export class DotStuffing {
  #atLineStart = true;
  #prevCR = false;
  #empty = true;

  /**
   * Stuffs the next chunk; returns it as it is when nothing changes. `into`: a buffer the result
   * may be written to instead of a new one (used when big enough, 2 * length + 1 always is), for a
   * caller that recycles its output once the socket is done with it.
   */
  push(chunk: Buffer, into?: Buffer): Buffer {
    const len = chunk.length;
    if (len === 0) return chunk;
    if (len >= WASM_MIN_BYTES && hasWasmStuffing()) return this.#pushWasm(chunk, into);
    let out: Buffer = EMPTY;
    let o = 0; // next write position in out
    let from = 0; // first byte of chunk not yet in out
    if (this.#atLineStart && chunk[0] === DOT) {
      out = Buffer.allocUnsafe(len + (len >> 3) + 16);
      out[o++] = DOT;
    }
    let nl = chunk.indexOf(LF);
    while (nl !== -1) {
      const bare = nl > 0 ? chunk[nl - 1] !== CR : !this.#prevCR;
      const dotNext = nl + 1 < len && chunk[nl + 1] === DOT;
      if (bare || dotNext) {
        const n = nl - from;
        if (o + n + 3 > out.length) out = grown(out, o, Math.max(o + n + 3, len + (len >> 3) + 16));
        if (n > SHORT_SEGMENT) chunk.copy(out, o, from, nl);
        else for (let k = from; k < nl; k++) out[o + k - from] = chunk[k] as number;
        o += n;
        if (bare) out[o++] = CR;
        out[o++] = LF;
        if (dotNext) out[o++] = DOT;
        from = nl + 1;
      }
      nl = chunk.indexOf(LF, nl + 1);
    }
    this.#passed(chunk);
    if (out === EMPTY) return chunk;
    if (o + len - from > out.length) out = grown(out, o, o + len - from);
    chunk.copy(out, o, from, len);
    return out.subarray(0, o + len - from);
  }

  #pushWasm(chunk: Buffer, into?: Buffer): Buffer {
    if (chunk.length > WASM_PIECE_BYTES) {
      const pieces: Buffer[] = [];
      for (let at = 0; at < chunk.length; at += WASM_PIECE_BYTES) {
        pieces.push(this.#pushWasm(chunk.subarray(at, at + WASM_PIECE_BYTES)));
      }
      return Buffer.concat(pieces);
    }
    const out = stuffPiece(chunk, this.#atLineStart, this.#prevCR, into);
    this.#passed(chunk);
    return out;
  }

  /** The state after a non-empty chunk, which only its last byte decides. */
  #passed(chunk: Buffer): void {
    const last = chunk[chunk.length - 1];
    this.#empty = false;
    this.#prevCR = last === CR;
    this.#atLineStart = last === LF;
  }

  /**
   * For a message the store says is already in wire form (CRLF line ends, no line starting with
   * `.`): checks only for dot-led lines, with one native search, and returns the chunk as it is
   * when there are none. Should the file have changed meanwhile, the chunk is stuffed in full, so
   * a stray `.` line can never end the reply early.
   */
  pushVerbatim(chunk: Buffer): Buffer {
    const len = chunk.length;
    if (len === 0) return chunk;
    if ((this.#atLineStart && chunk[0] === DOT) || chunk.indexOf(LF_DOT) !== -1) return this.push(chunk);
    // A bare LF at the very end would leave the terminator without its CRLF before it.
    if (chunk[len - 1] === LF && (len > 1 ? chunk[len - 2] !== CR : !this.#prevCR)) return this.push(chunk);
    this.#passed(chunk);
    return chunk;
  }

  /** What must follow the last chunk so that the body ends with CRLF (empty when it does). */
  end(): Buffer {
    if (this.#empty || this.#atLineStart) return EMPTY;
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
