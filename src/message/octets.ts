/**
 * How Poplar turns stored bytes into what a POP3 client receives, without the dot-stuffing.
 *
 * RFC 1939 sends messages with CRLF line ends. Stored messages may use bare LF (Maildir usually
 * does), so every LF that is not preceded by CR counts as CRLF, and a message that does not end
 * with a line end gets a final CRLF. A lone CR is data. The size reported by LIST and STAT is the
 * number of octets after this normalisation and before byte-stuffing (RFC 1939 section 11).
 *
 * {@link MessageMeter} measures that size from the stored bytes in one pass, chunk by chunk, and
 * records whether the file could be sent as it is (already CRLF, ends with CRLF, no line starting
 * with a dot), so a store can cache both.
 */

export const CR = 0x0d;
export const LF = 0x0a;
export const DOT = 0x2e;

export interface MessageMeasure {
  /** Octets as sent by RETR, before dot-stuffing. */
  readonly size: number;
  /** Bytes stored. */
  readonly storedBytes: number;
  /** True when the stored bytes are exactly what RETR sends before the final `.` line. */
  readonly isVerbatim: boolean;
}

export class MessageMeter {
  #stored = 0;
  #added = 0;
  #prevCR = false;
  #atLineStart = true;
  #hasDotLine = false;

  push(chunk: Uint8Array): void {
    const len = chunk.length;
    if (len === 0) return;
    if (this.#atLineStart && chunk[0] === DOT) this.#hasDotLine = true;
    let nl = chunk.indexOf(LF);
    while (nl !== -1) {
      const prevIsCR = nl > 0 ? chunk[nl - 1] === CR : this.#prevCR;
      if (!prevIsCR) this.#added += 1;
      if (nl + 1 < len && chunk[nl + 1] === DOT) this.#hasDotLine = true;
      nl = chunk.indexOf(LF, nl + 1);
    }
    this.#stored += len;
    const last = chunk[len - 1];
    this.#prevCR = last === CR;
    this.#atLineStart = last === LF;
  }

  finish(): MessageMeasure {
    let tail = 0;
    if (this.#stored > 0 && !this.#atLineStart) tail = this.#prevCR ? 1 : 2;
    const size = this.#stored + this.#added + tail;
    return {
      size,
      storedBytes: this.#stored,
      isVerbatim: this.#added === 0 && tail === 0 && !this.#hasDotLine,
    };
  }
}

/** Measures a whole message held in memory. */
export function measureMessage(bytes: Uint8Array): MessageMeasure {
  const meter = new MessageMeter();
  meter.push(bytes);
  return meter.finish();
}
